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
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    func,
    inspect,
    or_,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from policygate.decisions.chain import GENESIS, VerifyResult, walk
from policygate.decisions.decision import is_release_decision
from policygate.decisions.group_commit import (
    COMMIT_DELAY_S,
    LOCK_TIMEOUT_S,
    MAX_BATCH,
    _ChainWriter,
    _Pending,
    _wake,
    lock_timed_out,
    pg_lock_key,
    stale_sqlite,
)
from policygate.decisions.schema import Record
from policygate.timeutil import as_utc

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
FIRST_REVISION = "0001"  # the schema Base.metadata.create_all made before migrations existed

_log = logging.getLogger(__name__)
FINDINGS = ("reasons", "warnings", "dryrun")
_LATEST_PAGE = 20


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


WRITABLE_CHECK_S = 1.0
PROBE_LOCK_WAIT_S = 1.0  # /readyz: longest wait for the append lock before it names the wait


def db_problem(exc: BaseException) -> str:
    """The database's own first line (e.g. 'attempt to write a readonly database'), no SQL, no URL."""
    orig = getattr(exc, "orig", None) or exc
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return f"{type(orig).__name__}: {first[:200]}" if first else type(orig).__name__


class LogError(Exception):
    """The decision log could not be read or written."""


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

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        # After a failed write to a read-only or full disk, SQLite keeps the connection read-only:
        # drop the pool, so the first write after the disk recovers gets a fresh connection.
        if stale_sqlite(context.original_exception):
            context.is_disconnect = True

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


# The newest migration's revision, so that opening a current log needs no Alembic (0.15 s of every
# CLI run); a test checks it against the migrations directory.
HEAD_REVISION = "0005"


def head_revision() -> str:
    """The newest migration shipped with this package (as Alembic reads the directory)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _stamped(engine: Engine) -> str | None:
    """The revision recorded in ``alembic_version``, read with plain SQL (None: none yet)."""
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        return None


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (``alembic upgrade head``), once, under a lock.

    Several processes may open one log at the same moment (replicas starting, a CLI
    beside a server): PostgreSQL serialises them with an advisory lock, SQLite with
    ``BEGIN IMMEDIATE``; whoever comes second finds the schema current and does nothing.
    A log made before migrations existed (by ``create_all``) is stamped as revision 0001.
    """
    if _stamped(engine) == HEAD_REVISION:  # the usual case: current, and no Alembic import
        return
    from alembic import command

    head = head_revision()
    with engine.connect() as conn:
        if current_revision(conn) == head:
            return
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _pg_key(conn, "migrate")})
            cfg = _alembic_config(conn)
            before = current_revision(conn)
            if before is None and inspect(conn).has_table(Record.__tablename__):
                command.stamp(cfg, FIRST_REVISION)
                before = FIRST_REVISION
            if before != head:
                command.upgrade(cfg, "head")
                _log.info("decision log schema migrated from %s to %s", before or "empty", head)


def _pg_key(conn: Connection, purpose: str) -> int:
    """This log's advisory lock key for ``purpose`` (its database and schema: group_commit.pg_lock_key)."""
    database, schema = conn.execute(text("SELECT current_database(), current_schema()")).one()
    return pg_lock_key(str(database), str(schema), purpose)


@dataclass(frozen=True)
class StoredRecord:
    """One row of the log as stored: the hashed body plus its place in the chain."""

    seq: int
    kind: str
    decision_id: str
    body: dict[str, Any]
    prev_hash: str
    record_hash: str


class DecisionLog:
    def __init__(self, url: str, *, create: bool = True, lock_timeout_s: float = LOCK_TIMEOUT_S) -> None:
        """Open (``create``: and create or migrate) the log at ``url``. ``lock_timeout_s``: longest
        wait for the chain's PostgreSQL lock before an append fails (LogError: HTTP 503).

        ``create=False`` is for readers such as ``log verify``: they must not make an
        empty log where none was, nor change the schema of the log they audit.
        """
        self.url = url
        self.lock_timeout_s = lock_timeout_s
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
        self._writable: tuple[float, str | None] = (-WRITABLE_CHECK_S, None)

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
        key = _pg_key(conn, "append")
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
        release: bool = False,
    ) -> list[dict[str, Any]]:
        """Records newest first, filtered; keyset pagination on ``seq`` (pass the last seq seen).

        ``model`` may be several spellings of one model reference (as typed, canonical). ``rule``:
        only decisions with a finding of that rule id (a deny reason, warning or dry-run finding).
        ``release``: only release decisions (no what-if on supplied evidence takes a place in ``limit``).
        """
        if rule is None:
            return self._query(model, outcome, target, since, until, before_seq, limit, kind, None, release)
        found: list[dict[str, Any]] = []
        while len(found) < limit:  # the text pre-filter may match elsewhere; the exact test decides
            page = self._query(model, outcome, target, since, until, before_seq, limit, kind, rule, release)
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
        release: bool = False,
    ) -> list[dict[str, Any]]:
        stmt = select(Record.body).order_by(Record.seq.desc()).limit(limit)
        if release:
            stmt = stmt.where(or_(Record.evidence_origin.is_(None), Record.evidence_origin != "supplied"))
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

    def latest_release(
        self, *, model: Sequence[str], target: str | None, outcome: str | None = None
    ) -> dict[str, Any] | None:
        """The newest release decision (collected evidence, never a what-if) of one version for one
        target, optionally of one outcome: one seek per origin on the (model, target, evidence origin,
        outcome, seq) index, so no number of what-ifs can hide it. LogError if the column and the hashed
        body disagree (a changed row: ``log verify`` names it)."""
        base = select(Record.seq, Record.body).where(
            Record.kind == "decision",
            Record.model_ref.in_(list(model)),
            Record.target_stage.is_(None) if target is None else Record.target_stage == target,
        )
        if outcome is not None:
            base = base.where(Record.outcome == outcome)
        newest: Any = None
        with self.engine.connect() as conn:
            for origin in (Record.evidence_origin == "collected", Record.evidence_origin.is_(None)):
                row = conn.execute(base.where(origin).order_by(Record.seq.desc()).limit(1)).first()
                if row is not None and (newest is None or row.seq > newest.seq):
                    newest = row
        if newest is None:
            return None
        body: dict[str, Any] = json.loads(newest.body)
        if not is_release_decision(body):
            raise LogError(f"record {newest.seq}: its evidence origin column differs from its hashed body")
        return body

    def records(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kind: str | None = None,
        batch_size: int = 1000,
        rule: str | None = None,
        model: Sequence[str] | None = None,
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
            if model:  # the spellings of one model reference
                stmt = stmt.where(Record.model_ref.in_(list(model)))
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
