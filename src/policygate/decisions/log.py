"""Append-only, hash-chained decision log on SQLAlchemy (SQLite by default, PostgreSQL at scale).

Each record's hash covers its canonical JSON body and the previous record's
hash; appends are serialised (SQLite ``BEGIN IMMEDIATE``, PostgreSQL advisory
lock) so concurrent writers still build one unbroken chain. A record is
committed before its decision is answered; concurrent appends in one process
share a transaction (group commit), each caller woken only after it committed.
The schema is owned by the Alembic migrations (:mod:`policygate.decisions.database`,
run on open, under a lock); the reads are :mod:`policygate.decisions.queries`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypedDict, Unpack

from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from policygate.decisions.chain import GENESIS, VerifyResult, walk
from policygate.decisions.database import LogError, make_engine, migrate, pg_key
from policygate.decisions.group_commit import (
    COMMIT_DELAY_S,
    LOCK_TIMEOUT_S,
    MAX_BATCH,
    _ChainWriter,
    _Pending,
    _wake,
    lock_timed_out,
    stale_sqlite,
)
from policygate.decisions.queries import LogQueries
from policygate.decisions.schema import Record, decision_log

WRITABLE_CHECK_S = 1.0
PROBE_LOCK_WAIT_S = 1.0  # /readyz: longest wait for the append lock before it names the wait


def db_problem(exc: BaseException) -> str:
    """The database's own first line (e.g. 'attempt to write a readonly database'), no SQL, no URL."""
    orig = getattr(exc, "orig", None) or exc
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return f"{type(orig).__name__}: {first[:200]}" if first else type(orig).__name__


class Columns(TypedDict, total=False):
    """A record's indexed columns besides its kind and id (what the log's queries filter on)."""

    model_ref: str | None
    target_stage: str | None
    outcome: str | None
    policy_revision: str | None


def _pending(
    kind: str,
    record_id: str,
    payload: dict[str, Any],
    columns: Columns,
    wake: Callable[[], None] | None,
    future: asyncio.Future[None] | None = None,
) -> _Pending:
    return _Pending(
        kind,
        record_id,
        payload,
        columns.get("model_ref"),
        columns.get("target_stage"),
        columns.get("outcome"),
        columns.get("policy_revision"),
        wake,
        future=future,
    )


class DecisionLog(LogQueries):
    def __init__(self, url: str, *, create: bool = True, lock_timeout_s: float = LOCK_TIMEOUT_S) -> None:
        """Open (``create``: and create or migrate) the log at ``url``. ``lock_timeout_s``: longest
        wait for the chain's PostgreSQL lock before an append fails (LogError: HTTP 503).

        ``create=False`` is for readers such as ``log verify``: they must not make an
        empty log where none was, nor change the schema of the log they audit.
        """
        self.url = url
        self.lock_timeout_s = lock_timeout_s
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError) as exc:  # not echoed: it may still hold a password
            raise LogError(
                "the decision log URL does not parse: expected e.g. sqlite:///decisions.db"
            ) from exc
        if not create and parsed.get_backend_name() == "sqlite":
            path = parsed.database
            if not path or path == ":memory:" or not Path(path).is_file():
                raise LogError(f"no decision log at {self.safe_url}")
        try:
            self.engine = make_engine(url)
            self.backend = self.engine.dialect.name
            if create:
                migrate(self.engine)
            else:
                with self.engine.connect() as conn:
                    exists = inspect(conn).has_table(decision_log.name)
                if not exists:
                    self.engine.dispose()
                    raise LogError(f"no decision log at {self.safe_url} (table decision_log is missing)")
        except SQLAlchemyError as exc:
            raise LogError(f"decision log {self.safe_url} unavailable: {type(exc).__name__}") from exc
        self._group = threading.Condition()
        self._queue: list[_Pending] = []
        self._writer: threading.Thread | None = None
        self._closing = False
        self._pid = os.getpid()
        self._coming = 0
        self.commit_delay_s = COMMIT_DELAY_S
        self._writable: tuple[float, str | None] = (-WRITABLE_CHECK_S, None)

    def close(self) -> None:
        """Write what is queued, stop the writer thread, release the connections."""
        with self._group:
            self._closing = True
            self._group.notify_all()
            writer = self._writer
        if writer is not None and writer is not threading.current_thread():
            writer.join()
        with self._group:
            self._closing = False
        self.engine.dispose()

    def writable(self) -> str | None:
        """None when a record could be committed now, else what stops it (for /readyz).

        A read is not enough: a read-only file or a full disk still answers SELECT. So this commits
        a write that changes nothing (the schema version row, set to itself), at most once a second
        however often it is asked.
        """
        now = time.monotonic()
        checked_at, problem = self._writable
        if now - checked_at < WRITABLE_CHECK_S:
            return problem
        problem = self._probe_write()
        if problem is not None and stale_sqlite(Exception(problem)):
            self.engine.dispose()  # connections opened while the disk refused writes stay read-only
            problem = self._probe_write()
        self._writable = (time.monotonic(), problem)
        return problem

    def _probe_write(self) -> str | None:
        try:
            with self.engine.begin() as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
                if self.backend == "postgresql":
                    return self._probe_lock(conn)
            return None
        except SQLAlchemyError as exc:
            return f"cannot write to {self.safe_url}: {db_problem(exc)}"

    def _probe_lock(self, conn: Connection) -> str | None:
        """PostgreSQL: whether the append lock can be taken now (waiting at most a second for it)."""
        key = pg_key(conn, "append")
        wait_ms = max(1, int(min(self.lock_timeout_s, PROBE_LOCK_WAIT_S) * 1000))
        conn.execute(text(f"SET LOCAL lock_timeout = '{wait_ms}ms'"))  # an int: nothing to quote
        try:
            with conn.begin_nested():
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            return None
        except SQLAlchemyError as exc:
            if not lock_timed_out(exc):
                raise
        held = conn.execute(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid = :hi AND objid = :lo AND objsubid = 1"
            ),
            {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF},
        ).scalar()
        return (
            f"decisions wait for the log's append lock (PostgreSQL advisory lock {key}): another session"
            f"{f' (pid {held})' if held is not None else ''} holds it longer than {wait_ms} ms; appends "
            f"fail with 503 after {self.lock_timeout_s:g} s (docs/operations.md)"
        )

    def append(self, kind: str, record_id: str, payload: dict[str, Any], **columns: Unpack[Columns]) -> int:
        """Append one record to the chain and commit it; returns its sequence number.

        Group commit: concurrent callers queue their records; the log's writer thread
        writes every record queued so far in one transaction, in queue order, and wakes
        each caller only after that transaction committed. A caller returns its own seq
        once its record is durable, or gets a LogError and its record is not in the log.
        """
        committed = threading.Event()
        item = _pending(kind, record_id, payload, columns, committed.set)
        self._submit(item)
        committed.wait()
        return item.result()

    async def append_async(
        self, kind: str, record_id: str, payload: dict[str, Any], **columns: Unpack[Columns]
    ) -> int:
        """:meth:`append` for the event loop: waits for the commit without holding a thread."""
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        item = _pending(kind, record_id, payload, columns, None, committed)
        self._submit(item)
        await committed
        return item.result()

    def queue_depth(self) -> int:
        """Records waiting for the writer (metrics: a growing queue is a log that cannot keep up)."""
        return len(self._queue)

    @contextlib.contextmanager
    def coming(self) -> Iterator[None]:
        """Announce a record that will be appended when the block ends (a decision being made):
        while some are announced, the writer waits up to ``commit_delay_s`` to commit them together."""
        with self._group:
            self._coming += 1
        try:
            yield
        finally:
            with self._group:
                self._coming -= 1

    def _submit(self, item: _Pending) -> None:
        if self._pid != os.getpid():  # a forked child: the parent's writer thread is not here
            self._group, self._queue, self._writer, self._pid = threading.Condition(), [], None, os.getpid()
            self._coming = 0
        with self._group:
            self._queue.append(item)
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_loop, name="decision-log-writer", daemon=True
                )
                self._writer.start()
            self._group.notify()

    def _write_loop(self) -> None:
        """The writer: take what is queued (at most MAX_BATCH), write it in one transaction, wake
        its callers; on close, drain the queue, then stop."""
        writer = _ChainWriter(self.engine, self.lock_timeout_s)
        try:
            while True:
                with self._group:
                    while not self._queue and not self._closing:
                        self._group.wait()
                    if not self._queue:
                        self._writer = None
                        return
                    # Decisions announced as on their way (coming()) append in a moment: give them
                    # that moment, so that one commit serves them all.
                    linger = self._coming > 0 and len(self._queue) < MAX_BATCH and not self._closing
                if linger:
                    time.sleep(self.commit_delay_s)
                with self._group:
                    batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                try:
                    self._write_batch(writer, batch)
                except BaseException as exc:  # noqa: BLE001 - fail closed: never leave a caller waiting, whatever happened
                    for item in batch:
                        if item.seq is None and item.error is None:
                            item.error = LogError(f"could not write to decision log {self.safe_url}: {exc!r}")
                _wake(batch)
        finally:
            writer.close()

    def _write_batch(self, writer: _ChainWriter, batch: list[_Pending]) -> None:
        """Write ``batch`` in one transaction; if that fails, each record in its own (so one
        bad record, e.g. a duplicate id, fails alone). Sets ``seq`` or ``error`` on every item."""
        try:
            seqs = writer.write(batch)
        except writer.errors as exc:
            if len(batch) == 1 or lock_timed_out(exc):  # one by one, each would wait as long again
                for item in batch:
                    item.error = self._write_error(exc)
                return
            seqs = []
        if not seqs:
            for item in batch:
                try:
                    (item.seq,) = writer.write([item])
                except writer.errors as one:
                    item.error = self._write_error(one)
            return
        for item, seq in zip(batch, seqs, strict=True):
            item.seq = seq

    def _write_error(self, exc: BaseException) -> LogError:
        if lock_timed_out(exc):
            error = LogError(
                f"could not write to decision log {self.safe_url}: its append lock (a PostgreSQL advisory "
                f"lock) was not free within {self.lock_timeout_s:g} s: another session holds it"
            )
        else:
            error = LogError(f"could not write to decision log {self.safe_url}: {type(exc).__name__}")
        error.__cause__ = exc
        return error

    def head(self) -> tuple[int, str]:
        """Sequence number and hash of the newest record (0 and the genesis hash when empty).

        Kept outside the database (a ticket, a CI log), it lets ``verify`` users notice
        records removed from the end, which a hash chain alone cannot show.
        """
        with self.engine.connect() as conn:
            last = conn.execute(
                select(Record.seq, Record.record_hash).order_by(Record.seq.desc()).limit(1)
            ).first()
        return (last.seq, last.record_hash) if last else (0, GENESIS)

    def verify(self, upto: int | None = None, after: tuple[int, str] | None = None) -> VerifyResult:
        """Walk the chain; name the first record that was changed, removed or reordered. ``upto``:
        stop at that sequence number; ``after``: (seq, record hash) of a record verified before, to
        walk on from it instead of from the genesis (the console checks a decision that way)."""
        stmt = select(
            Record.seq,
            Record.kind,
            Record.decision_id,
            Record.recorded_at,
            Record.model_ref,
            Record.target_stage,
            Record.outcome,
            Record.policy_revision,
            Record.evidence_origin,
            Record.body,
            Record.prev_hash,
            Record.record_hash,
        ).order_by(Record.seq)
        if upto is not None:
            stmt = stmt.where(Record.seq <= upto)
        if after is not None:
            stmt = stmt.where(Record.seq > after[0])
        try:
            return self._verify(stmt, after)
        except SQLAlchemyError as exc:
            raise LogError(f"could not read decision log {self.safe_url}: {type(exc).__name__}") from exc

    def _verify(self, stmt: Any, after: tuple[int, str] | None = None) -> VerifyResult:
        with self.engine.connect() as conn:
            rows = conn.execution_options(yield_per=1000).execute(stmt)
            if after is None:
                return walk(rows)
            return walk(rows, prev=after[1], expected_seq=after[0] + 1)


__all__ = ["DecisionLog", "LogError", "db_problem"]
