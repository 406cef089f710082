"""Append-only, hash-chained decision log on SQLAlchemy (SQLite by default, PostgreSQL at scale).

Each record's hash covers its canonical JSON body and the previous record's
hash; appends are serialised (SQLite ``BEGIN IMMEDIATE``, PostgreSQL advisory
lock) so concurrent writers still build one unbroken chain. A record is
committed before its decision is answered; concurrent appends in one process
share a transaction (group commit), each caller woken only after it committed.
The schema is owned by the Alembic migrations in ``policygate/decisions/migrations``
(run on open, under a lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from policygate.evidence import canonical_json

GENESIS = "0" * 64
_PG_LOCK_KEY = 0x706F6C6761746531  # "polgate1": one advisory lock per database
_PG_MIGRATE_KEY = 0x706F6C676D696731  # "polgmig1": serialises concurrent start-ups' migrations
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
FIRST_REVISION = "0001"  # the schema Base.metadata.create_all made before migrations existed

_log = logging.getLogger(__name__)
FINDINGS = ("reasons", "warnings", "dryrun")
_LATEST_PAGE = 20
_UNCHECKED: Any = object()  # a decision's findings: deny, warn, dry-run


def has_finding(body: dict[str, Any], rule: str) -> bool:
    """Whether a recorded decision has a finding (deny reason, warning, dry-run) of rule ``rule``."""
    decision = body.get("decision") or {}
    return any(
        isinstance(r, dict) and r.get("id") == rule for key in FINDINGS for r in decision.get(key) or []
    )


def mentions(rule: str) -> Any:
    """A cheap SQL pre-filter for :func:`has_finding`: the body's text has the id as a JSON string.
    (Rule ids hold no LIKE wildcards: they match ^[A-Z]{2,5}-[0-9]{3}$, checked by every caller.)"""
    return Record.body.like(f'%"{rule}"%')


class LogError(Exception):
    """The decision log could not be read or written."""


class Base(DeclarativeBase):
    pass


class Record(Base):
    __tablename__ = "decision_log"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    kind: Mapped[str] = mapped_column(String(16))
    decision_id: Mapped[str] = mapped_column(String(64), unique=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    model_ref: Mapped[str | None] = mapped_column(String(512))
    target_stage: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(8))
    policy_revision: Mapped[str | None] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    record_hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_decision_log_model_seq", "model_ref", "seq"),
        Index("ix_decision_log_outcome_seq", "outcome", "seq"),
        Index("ix_decision_log_target_seq", "target_stage", "seq"),
        Index("ix_decision_log_recorded_at", "recorded_at"),
        Index("ix_decision_log_model_target_seq", "model_ref", "target_stage", "seq"),
    )


def chain_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + body.encode()).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    problem: str | None = None
    seq: int | None = None


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get('sqlite_begin', 'DEFERRED')}")

    return engine


def _alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest migration shipped with this package."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (``alembic upgrade head``), once, under a lock.

    Several processes may open one log at the same moment (replicas starting, a CLI
    beside a server): PostgreSQL serialises them with an advisory lock, SQLite with
    ``BEGIN IMMEDIATE``; whoever comes second finds the schema current and does nothing.
    A log made before migrations existed (by ``create_all``) is stamped as revision 0001.
    """
    from alembic import command

    head = head_revision()
    with engine.connect() as conn:
        if current_revision(conn) == head:
            return
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATE_KEY})
            cfg = _alembic_config(conn)
            before = current_revision(conn)
            if before is None and inspect(conn).has_table(Record.__tablename__):
                command.stamp(cfg, FIRST_REVISION)
                before = FIRST_REVISION
            if before != head:
                command.upgrade(cfg, "head")
                _log.info("decision log schema migrated from %s to %s", before or "empty", head)


def as_utc(value: datetime | None) -> datetime | None:
    """Compare instants, not wall clocks: naive times are UTC, aware ones are converted to UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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


@dataclass(frozen=True)
class StoredRecord:
    """One row of the log as stored: the hashed body plus its place in the chain."""

    seq: int
    kind: str
    decision_id: str
    body: dict[str, Any]
    prev_hash: str
    record_hash: str


class _ChainWriter:
    """The writer thread's own database connection and statements compiled once.

    One transaction per batch: lock the chain (SQLite ``BEGIN IMMEDIATE``, PostgreSQL
    ``pg_advisory_xact_lock``), read the head, link each record to the one before, insert,
    commit. It speaks DB-API directly because SQLAlchemy's per-statement work cost about
    0.6 ms of CPU per transaction (bench/run_all.py, docs/benchmarks.md); values are bound
    through the column types' own SQLAlchemy bind processors, so rows are stored exactly
    as before. A connection that failed is discarded (its transaction rolls back).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect
        self.postgres = dialect.name == "postgresql"
        compiled = insert(Record).compile(dialect=dialect)
        self.insert_sql = str(compiled)
        self.positions = list(compiled.positiontup or []) if dialect.positional else None
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for column in Record.__table__.columns:
            processor = column.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.processors[column.name] = processor
        self.head_sql = f"SELECT seq, record_hash FROM {Record.__tablename__} ORDER BY seq DESC LIMIT 1"
        self.lock_sql = "SELECT pg_advisory_xact_lock(%s)" if self.postgres else "BEGIN IMMEDIATE"
        dbapi_error: type[Exception] = dialect.loaded_dbapi.Error
        self.errors: tuple[type[Exception], ...] = (dbapi_error, SQLAlchemyError)
        self.conn: Any = None

    def write(self, batch: list[_Pending]) -> list[int]:
        if self.conn is None:
            self.conn = self.engine.raw_connection()
        cursor = self.conn.cursor()
        try:
            if self.postgres:
                cursor.execute(self.lock_sql, (_PG_LOCK_KEY,))  # the driver has begun the transaction
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
                conn.close()


class DecisionLog:
    def __init__(self, url: str, *, create: bool = True) -> None:
        """Open (``create``: and create or migrate) the log at ``url``.

        ``create=False`` is for readers such as ``log verify``: they must not make an
        empty log where none was, nor change the schema of the log they audit.
        """
        self.url = url
        parsed = make_url(url)
        if not create and parsed.get_backend_name() == "sqlite":
            path = parsed.database
            if not path or path == ":memory:" or not Path(path).is_file():
                raise LogError(f"no decision log at {self.safe_url}")
        try:
            self.engine = _make_engine(url)
            self.backend = self.engine.dialect.name
            if create:
                migrate(self.engine)
            else:
                with self.engine.connect() as conn:
                    exists = inspect(conn).has_table(Record.__tablename__)
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

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

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

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def append(
        self,
        kind: str,
        record_id: str,
        payload: dict[str, Any],
        *,
        model_ref: str | None = None,
        target_stage: str | None = None,
        outcome: str | None = None,
        policy_revision: str | None = None,
    ) -> int:
        """Append one record to the chain and commit it; returns its sequence number.

        Group commit: concurrent callers queue their records; the log's writer thread
        writes every record queued so far in one transaction, in queue order, and wakes
        each caller only after that transaction committed. A caller returns its own seq
        once its record is durable, or gets a LogError and its record is not in the log.
        """
        committed = threading.Event()
        item = _Pending(
            kind, record_id, payload, model_ref, target_stage, outcome, policy_revision, committed.set
        )
        self._submit(item)
        committed.wait()
        return item.result()

    async def append_async(
        self,
        kind: str,
        record_id: str,
        payload: dict[str, Any],
        *,
        model_ref: str | None = None,
        target_stage: str | None = None,
        outcome: str | None = None,
        policy_revision: str | None = None,
    ) -> int:
        """:meth:`append` for the event loop: waits for the commit without holding a thread."""
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        item = _Pending(
            kind,
            record_id,
            payload,
            model_ref,
            target_stage,
            outcome,
            policy_revision,
            None,
            future=committed,
        )
        self._submit(item)
        await committed
        return item.result()

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
        writer = _ChainWriter(self.engine)
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
                except BaseException as exc:  # never leave a caller waiting, whatever happened
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
            if len(batch) == 1:
                batch[0].error = self._write_error(exc)
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
        error = LogError(f"could not write to decision log {self.safe_url}: {type(exc).__name__}")
        error.__cause__ = exc
        return error

    def get(self, record_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            body = conn.execute(select(Record.body).where(Record.decision_id == record_id)).scalar()
        return json.loads(body) if body else None

    def query(
        self,
        *,
        model: str | Sequence[str] | None = None,
        outcome: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_seq: int | None = None,
        limit: int = 50,
        kind: str | None = "decision",
        rule: str | None = None,
    ) -> list[dict[str, Any]]:
        """Records newest first, filtered; keyset pagination on ``seq`` (pass the last seq seen).

        ``model`` may be several spellings of one model reference (as typed, canonical). ``rule``:
        only decisions with a finding of that rule id (a deny reason, warning or dry-run finding).
        """
        if rule is None:
            return self._query(model, outcome, target, since, until, before_seq, limit, kind, None)
        found: list[dict[str, Any]] = []
        while len(found) < limit:  # the text pre-filter may match elsewhere; the exact test decides
            page = self._query(model, outcome, target, since, until, before_seq, limit, kind, rule)
            found += [r for r in page if has_finding(r, rule)]
            if len(page) < limit:
                break
            before_seq = int(page[-1]["seq"])
        return found[:limit]

    def _query(
        self,
        model: str | Sequence[str] | None,
        outcome: str | None,
        target: str | None,
        since: datetime | None,
        until: datetime | None,
        before_seq: int | None,
        limit: int,
        kind: str | None,
        rule: str | None,
    ) -> list[dict[str, Any]]:
        stmt = select(Record.body).order_by(Record.seq.desc()).limit(limit)
        if rule:
            stmt = stmt.where(mentions(rule))
        if kind:
            stmt = stmt.where(Record.kind == kind)
        if isinstance(model, str):
            stmt = stmt.where(Record.model_ref == model)
        elif model is not None:
            stmt = stmt.where(Record.model_ref.in_(list(model)))
        if outcome:
            stmt = stmt.where(Record.outcome == outcome)
        if target:
            stmt = stmt.where(Record.target_stage == target)
        if since:
            stmt = stmt.where(Record.recorded_at >= as_utc(since))
        if until:
            stmt = stmt.where(Record.recorded_at < as_utc(until))
        if before_seq is not None:
            stmt = stmt.where(Record.seq < before_seq)
        with self.engine.connect() as conn:
            return [json.loads(b) for b in conn.execute(stmt).scalars()]

    def outcome_counts(self, *, model: Sequence[str]) -> dict[str, int]:
        """How many decisions one model has, per outcome."""
        stmt = (
            select(Record.outcome, func.count())
            .where(Record.model_ref.in_(list(model)), Record.kind == "decision")
            .group_by(Record.outcome)
        )
        with self.engine.connect() as conn:
            return {str(outcome): int(n) for outcome, n in conn.execute(stmt).all()}

    def latest_per_target(
        self, *, model: Sequence[str], accept: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, dict[str, Any]]:
        """The newest decision for each target stage of one model that ``accept`` takes (all, when
        None); newest first along the (model, target, seq) index, usually one probe per stage."""
        models = list(model)
        with self.engine.connect() as conn:
            stages = (
                conn.execute(
                    select(Record.target_stage)
                    .where(Record.model_ref.in_(models), Record.kind == "decision")
                    .distinct()
                )
                .scalars()
                .all()
            )
            found: dict[str, dict[str, Any]] = {}
            for stage in stages:
                before: int | None = None
                while True:
                    stmt = (
                        select(Record.seq, Record.body)
                        .where(Record.model_ref.in_(models), Record.kind == "decision")
                        .where(
                            Record.target_stage.is_(None) if stage is None else Record.target_stage == stage
                        )
                        .order_by(Record.seq.desc())
                        .limit(_LATEST_PAGE)
                    )
                    if before is not None:
                        stmt = stmt.where(Record.seq < before)
                    rows = conn.execute(stmt).all()
                    body = next(
                        (b for b in (json.loads(r.body) for r in rows) if accept is None or accept(b)), None
                    )
                    if body is not None:
                        found[stage or "unknown"] = body
                        break
                    if len(rows) < _LATEST_PAGE:
                        break
                    before = rows[-1].seq
        return found

    def records(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kind: str | None = None,
        batch_size: int = 1000,
        rule: str | None = None,
    ) -> Iterator[StoredRecord]:
        """Every record in chain order, streamed in keyset batches (constant memory at any size).

        Each batch is its own short query, so an export never holds a long transaction
        open against writers.
        """
        after = 0
        while True:
            stmt = (
                select(
                    Record.seq,
                    Record.kind,
                    Record.decision_id,
                    Record.body,
                    Record.prev_hash,
                    Record.record_hash,
                )
                .where(Record.seq > after)
                .order_by(Record.seq)
                .limit(batch_size)
            )
            if kind:
                stmt = stmt.where(Record.kind == kind)
            if since:
                stmt = stmt.where(Record.recorded_at >= as_utc(since))
            if until:
                stmt = stmt.where(Record.recorded_at < as_utc(until))
            if rule:
                stmt = stmt.where(mentions(rule))
            try:
                with self.engine.connect() as conn:
                    rows = conn.execute(stmt).all()
            except SQLAlchemyError as exc:
                raise LogError(f"could not read decision log {self.safe_url}: {type(exc).__name__}") from exc
            for row in rows:
                body = json.loads(row.body)
                if rule and not has_finding(body, rule):
                    continue
                yield StoredRecord(row.seq, row.kind, row.decision_id, body, row.prev_hash, row.record_hash)
            if len(rows) < batch_size:
                return
            after = rows[-1].seq

    def has_id_prefix(self, prefix: str) -> bool:
        """Whether some record's id starts with ``prefix``."""
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self.engine.connect() as conn:
            found = conn.execute(
                select(Record.seq).where(Record.decision_id.like(pattern, escape="\\")).limit(1)
            ).first()
        return found is not None

    def first_hash(self) -> str | None:
        """The hash of the first record (the log's identity in a checkpoint); None when empty."""
        with self.engine.connect() as conn:
            first = conn.execute(select(Record.record_hash).order_by(Record.seq).limit(1)).scalar()
        return str(first) if first is not None else None

    def hash_at(self, seq: int) -> str | None:
        """The hash of record ``seq``; None when there is no such record."""
        with self.engine.connect() as conn:
            found = conn.execute(select(Record.record_hash).where(Record.seq == seq)).scalar()
        return str(found) if found is not None else None

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

    def verify(self) -> VerifyResult:
        """Walk the chain; name the first record that was changed, removed or reordered."""
        stmt = select(
            Record.seq,
            Record.kind,
            Record.decision_id,
            Record.recorded_at,
            Record.model_ref,
            Record.target_stage,
            Record.outcome,
            Record.policy_revision,
            Record.body,
            Record.prev_hash,
            Record.record_hash,
        ).order_by(Record.seq)
        try:
            return self._verify(stmt)
        except SQLAlchemyError as exc:
            raise LogError(f"could not read decision log {self.safe_url}: {type(exc).__name__}") from exc

    def _verify(self, stmt: Any) -> VerifyResult:
        prev, expected_seq, n = GENESIS, 1, 0
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=1000).execute(stmt):
                n += 1
                if row.seq != expected_seq:
                    return VerifyResult(
                        False, n, f"record {expected_seq} is missing (next is {row.seq})", expected_seq
                    )
                if row.prev_hash != prev:
                    return VerifyResult(
                        False, n, f"record {row.seq} does not link to record {row.seq - 1}", row.seq
                    )
                if chain_hash(prev, row.body) != row.record_hash:
                    return VerifyResult(False, n, f"record {row.seq} was changed (hash mismatch)", row.seq)
                problem = _columns_disagree(row)
                if problem:
                    return VerifyResult(False, n, f"record {row.seq} was changed ({problem})", row.seq)
                prev, expected_seq = row.record_hash, row.seq + 1
        return VerifyResult(True, n)


def _columns_disagree(row: Any) -> str | None:
    """Every column a query or export filters on is a copy of the hashed body; an edit to one shows
    here (``recorded_at`` included: ``log export --since`` reads it)."""
    body = json.loads(row.body)
    if body.get("seq") != row.seq:
        return "sequence number differs from the hashed body"
    if body.get("kind") != row.kind or body.get("id") != row.decision_id:
        return "kind or id differs from the hashed body"
    try:
        recorded = as_utc(datetime.fromisoformat(str(body.get("recorded_at"))))
    except ValueError:
        return "the hashed body has no valid recorded_at"
    if row.recorded_at is None or as_utc(row.recorded_at) != recorded:
        return "recorded_at column differs from the hashed body"
    expected = _columns_of(body)
    columns = (
        _UNCHECKED if expected[0] is _UNCHECKED else row.model_ref,
        row.target_stage,
        row.outcome,
        row.policy_revision,
    )
    if columns != expected:
        return "model, target, outcome or policy revision column differs from the hashed body"
    return None


def _columns_of(body: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """(model_ref, target_stage, outcome, policy_revision) as append derives them from a record."""
    if body.get("kind") == "decision":
        decision = body.get("decision") or {}
        return (
            (decision.get("subject") or {}).get("ref"),
            (decision.get("target") or {}).get("stage"),
            decision.get("outcome"),
            decision.get("policy_revision"),
        )
    if body.get("kind") == "approval":
        return ((body.get("approval") or {}).get("model"), None, None, None)
    if body.get("kind") == "delivery":
        return ((body.get("delivery") or {}).get("ref"), None, None, None)
    if body.get("kind") == "enforcement":  # the model is in the id's decision; the column is not checked
        return (_UNCHECKED, None, None, None)
    return (None, None, None, None)
