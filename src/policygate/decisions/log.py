"""Append-only, hash-chained decision log on SQLAlchemy (SQLite by default, PostgreSQL at scale).

Each record's hash covers its canonical JSON body and the previous record's
hash; appends are serialised (SQLite ``BEGIN IMMEDIATE``, PostgreSQL advisory
lock) so concurrent writers still build one unbroken chain. A record is
committed before its decision is answered. The schema is owned by the Alembic
migrations in ``policygate/decisions/migrations`` (run on open, under a lock).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator, Sequence
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
        self._append_lock = threading.Lock()

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
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
        """Append one record to the chain and commit it; returns its sequence number."""
        try:
            with self._append_lock, self.engine.connect() as conn:
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    if self.backend == "postgresql":
                        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
                    last = conn.execute(
                        select(Record.seq, Record.record_hash).order_by(Record.seq.desc()).limit(1)
                    ).first()
                    seq = (last.seq + 1) if last else 1
                    prev = last.record_hash if last else GENESIS
                    now = datetime.now(UTC)  # taken under the lock: recorded_at follows seq
                    body = canonical_json(
                        {
                            "seq": seq,
                            "kind": kind,
                            "id": record_id,
                            "recorded_at": now.isoformat(),
                            **payload,
                        }
                    ).decode()
                    conn.execute(
                        insert(Record).values(
                            seq=seq,
                            kind=kind,
                            decision_id=record_id,
                            recorded_at=now,
                            model_ref=model_ref,
                            target_stage=target_stage,
                            outcome=outcome,
                            policy_revision=policy_revision,
                            body=body,
                            prev_hash=prev,
                            record_hash=chain_hash(prev, body),
                        )
                    )
            return seq
        except SQLAlchemyError as exc:
            raise LogError(f"could not write to decision log {self.safe_url}: {type(exc).__name__}") from exc

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
    ) -> list[dict[str, Any]]:
        """Records newest first, filtered; keyset pagination on ``seq`` (pass the last seq seen).

        ``model`` may be several spellings of one model reference (as typed, canonical).
        """
        stmt = select(Record.body).order_by(Record.seq.desc()).limit(limit)
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

    def latest_per_target(self, *, model: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The newest decision for each target stage of one model (one index probe per stage)."""
        newest = (
            select(Record.target_stage, func.max(Record.seq).label("seq"))
            .where(Record.model_ref.in_(list(model)), Record.kind == "decision")
            .group_by(Record.target_stage)
            .subquery()
        )
        stmt = select(Record.target_stage, Record.body).join(newest, Record.seq == newest.c.seq)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return {row.target_stage or "unknown": json.loads(row.body) for row in rows}

    def records(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kind: str | None = None,
        batch_size: int = 1000,
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
            try:
                with self.engine.connect() as conn:
                    rows = conn.execute(stmt).all()
            except SQLAlchemyError as exc:
                raise LogError(f"could not read decision log {self.safe_url}: {type(exc).__name__}") from exc
            for row in rows:
                yield StoredRecord(
                    row.seq, row.kind, row.decision_id, json.loads(row.body), row.prev_hash, row.record_hash
                )
            if len(rows) < batch_size:
                return
            after = rows[-1].seq

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
    """Indexed columns are copies of the hashed body; an edit to one shows here."""
    body = json.loads(row.body)
    if body.get("seq") != row.seq:
        return "sequence number differs from the hashed body"
    if body.get("kind") != row.kind or body.get("id") != row.decision_id:
        return "kind or id differs from the hashed body"
    decision = body.get("decision") or {}
    if row.kind == "decision":
        subject = decision.get("subject") or {}
        target = decision.get("target") or {}
        if decision.get("outcome") != row.outcome or subject.get("ref") != row.model_ref:
            return "outcome or model column differs from the hashed body"
        if target.get("stage") != row.target_stage or decision.get("policy_revision") != row.policy_revision:
            return "target or policy revision column differs from the hashed body"
    return None
