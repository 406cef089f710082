"""Group commit: queued records written in one transaction per batch, each caller woken only after
its record is committed (an answered decision is never lost)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert
from sqlalchemy.exc import SQLAlchemyError

from policygate.decisions.chain import GENESIS, chain_hash, evidence_origin
from policygate.decisions.schema import decision_log
from policygate.evidence import canonical_json

LOCK_TIMEOUT_S = 5.0  # longest wait for the chain's PostgreSQL advisory lock (POLICYGATE_DB_LOCK_TIMEOUT_S)
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock_timeout that expired


def pg_lock_key(database: str, schema: str, purpose: str = "append") -> int:
    """The advisory lock key of one log (a database and schema) and purpose (append | migrate): two
    logs in one database never share a lock, and no fixed, well-known key stalls every log."""
    digest = hashlib.sha256(f"policygate-log\0{purpose}\0{database}\0{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_timed_out(exc: BaseException) -> bool:
    """Whether a write failed because the chain's lock was not free within the lock_timeout."""
    orig = getattr(exc, "orig", None) or exc
    return getattr(orig, "sqlstate", None) == LOCK_NOT_AVAILABLE


MAX_BATCH = 256  # records per group-commit transaction
COMMIT_DELAY_S = 0.001  # longest wait for announced records before a commit (DecisionLog.coming)


@dataclass(slots=True, eq=False)
class _Pending:
    """A record waiting for the group commit, and then its outcome (``seq`` or ``error``)."""

    kind: str
    record_id: str
    payload: dict[str, Any]
    model_ref: str | None
    target_stage: str | None
    outcome: str | None
    policy_revision: str | None
    wake: Callable[[], None] | None  # a thread's caller; None for an event loop's (``future``)
    seq: int | None = None
    error: BaseException | None = None
    future: asyncio.Future[None] | None = None

    def result(self) -> int:
        if self.error is not None:
            raise self.error
        assert self.seq is not None
        return self.seq


def _settle(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():  # the caller may have gone (request cancelled); its record stays
            future.set_result(None)


def _wake(batch: list[_Pending]) -> None:
    """Wake a batch's callers: threads one by one, each event loop once for all its callers."""
    loops: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for item in batch:
        if item.future is not None:
            loops.setdefault(item.future.get_loop(), []).append(item.future)
        elif item.wake is not None:
            item.wake()
    for loop, futures in loops.items():
        with contextlib.suppress(RuntimeError):  # an event loop already closed
            loop.call_soon_threadsafe(_settle, futures)


# SQLite's words for a write refused by the disk (read-only file, full disk, I/O error).
_SQLITE_STALE = ("readonly database", "disk i/o error", "disk is full", "unable to open database")


def stale_sqlite(exc: BaseException) -> bool:
    """A connection that saw this error may stay read-only after the disk recovers: drop it."""
    message = str(getattr(exc, "orig", None) or exc).lower()
    return any(sign in message for sign in _SQLITE_STALE)


class _ChainWriter:
    """The writer thread's own database connection and statements compiled once.

    One transaction per batch: lock the chain (SQLite ``BEGIN IMMEDIATE``, PostgreSQL
    ``pg_advisory_xact_lock``), read the head, link each record to the one before, insert,
    commit. It speaks DB-API directly because SQLAlchemy's per-statement work cost about
    0.6 ms of CPU per transaction (bench/run_all.py, docs/benchmarks.md); values are bound
    through the column types' own SQLAlchemy bind processors, so rows are stored exactly
    as before. A connection that failed is discarded (its transaction rolls back).
    """

    def __init__(self, engine: Engine, lock_timeout_s: float = LOCK_TIMEOUT_S) -> None:
        self.engine = engine
        self.lock_timeout_ms = max(1, int(lock_timeout_s * 1000))
        self.lock_key: int | None = None
        dialect = engine.dialect
        self.postgres = dialect.name == "postgresql"
        compiled = insert(decision_log).compile(dialect=dialect)
        self.insert_sql = str(compiled)
        self.positions = list(compiled.positiontup or []) if dialect.positional else None
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for column in decision_log.columns:
            processor = column.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.processors[column.name] = processor
        self.head_sql = f"SELECT seq, record_hash FROM {decision_log.name} ORDER BY seq DESC LIMIT 1"
        self.lock_sql = "SELECT pg_advisory_xact_lock(%s)" if self.postgres else "BEGIN IMMEDIATE"
        dbapi_error: type[Exception] = dialect.loaded_dbapi.Error
        self.errors: tuple[type[Exception], ...] = (dbapi_error, SQLAlchemyError)
        self.conn: Any = None

    def write(self, batch: list[_Pending]) -> list[int]:
        try:
            return self._write(batch)
        except self.errors as exc:
            if self.postgres or not stale_sqlite(exc):
                raise
            # SQLite opened read-only while the disk refused writes and stays so: once more, with
            # connections opened now (the first decision after the disk recovers is recorded)
            self.engine.dispose()
            return self._write(batch)

    def _write(self, batch: list[_Pending]) -> list[int]:
        if self.conn is None:
            self.conn = self.engine.raw_connection()
            if self.postgres:
                self._prepare_pg()
        cursor = self.conn.cursor()
        try:
            if self.postgres:
                cursor.execute(self.lock_sql, (self.lock_key,))  # the driver has begun the transaction
            else:
                cursor.execute(self.lock_sql)
            cursor.execute(self.head_sql)
            last = cursor.fetchone()
            seq, prev = (int(last[0]), str(last[1])) if last else (0, GENESIS)
            rows: list[Any] = []
            seqs: list[int] = []
            for item in batch:
                seq += 1
                now = datetime.now(UTC)  # taken under the lock: recorded_at follows seq
                body = canonical_json(
                    {
                        "seq": seq,
                        "kind": item.kind,
                        "id": item.record_id,
                        "recorded_at": now.isoformat(),
                        **item.payload,
                    }
                ).decode()
                record_hash = chain_hash(prev, body)
                rows.append(
                    self._bind(
                        {
                            "seq": seq,
                            "kind": item.kind,
                            "decision_id": item.record_id,
                            "recorded_at": now,
                            "model_ref": item.model_ref,
                            "target_stage": item.target_stage,
                            "outcome": item.outcome,
                            "policy_revision": item.policy_revision,
                            "evidence_origin": evidence_origin(item.kind, item.payload),
                            "body": body,
                            "prev_hash": prev,
                            "record_hash": record_hash,
                        }
                    )
                )
                prev = record_hash
                seqs.append(seq)
            cursor.executemany(self.insert_sql, rows)
            if self.postgres:
                self.conn.commit()
            else:
                cursor.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):  # release the lock now, not when the connection goes
                if self.postgres:
                    self.conn.rollback()
                else:
                    cursor.execute("ROLLBACK")
            with contextlib.suppress(Exception):
                cursor.close()
            self.discard()
            raise
        with contextlib.suppress(Exception):
            cursor.close()
        return seqs

    def _prepare_pg(self) -> None:
        """This log's lock key, and a lock_timeout on the writer's session: a lock held elsewhere
        fails the batch within it (HTTP 503), never stalls every decision."""
        cursor = self.conn.cursor()
        try:
            cursor.execute("SELECT current_database(), current_schema()")
            database, schema = cursor.fetchone()
            self.lock_key = pg_lock_key(str(database), str(schema))
            cursor.execute(f"SET lock_timeout = '{self.lock_timeout_ms}ms'")  # an int: nothing to quote
            self.conn.commit()
        except BaseException:
            self.discard()
            raise
        finally:
            with contextlib.suppress(Exception):
                cursor.close()

    def _bind(self, row: dict[str, Any]) -> Any:
        for name, processor in self.processors.items():
            row[name] = processor(row[name])
        return tuple(row[name] for name in self.positions) if self.positions is not None else row

    def discard(self) -> None:
        """Drop the connection (closing it rolls back whatever transaction it had open)."""
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                if self.postgres:  # back to the pool as it came
                    conn.cursor().execute("RESET lock_timeout")
                    conn.commit()
                conn.close()
