"""Append-only, hash-chained decision log on SQLAlchemy (SQLite by default, PostgreSQL at scale).

Each record's hash covers its canonical JSON body and the previous record's
hash; appends are serialised (SQLite ``BEGIN IMMEDIATE``, PostgreSQL advisory
lock) so concurrent writers still build one unbroken chain. A record is
committed before its decision is answered.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from policygate.evidence import canonical_json

GENESIS = "0" * 64
_PG_LOCK_KEY = 0x706F6C6761746531  # "polgate1": one advisory lock per database


class LogError(Exception):
    """The decision log could not be read or written."""


class Base(DeclarativeBase):
    pass


class Record(Base):
    __tablename__ = "decision_log"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
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


class DecisionLog:
    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = _make_engine(url)
            self.backend = self.engine.dialect.name
            Base.metadata.create_all(self.engine)
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
        now = datetime.now(UTC)
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
        model: str | None = None,
        outcome: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_seq: int | None = None,
        limit: int = 50,
        kind: str | None = "decision",
    ) -> list[dict[str, Any]]:
        """Records newest first, filtered; keyset pagination on ``seq``."""
        stmt = select(Record.body).order_by(Record.seq.desc()).limit(limit)
        if kind:
            stmt = stmt.where(Record.kind == kind)
        if model:
            stmt = stmt.where(Record.model_ref == model)
        if outcome:
            stmt = stmt.where(Record.outcome == outcome)
        if target:
            stmt = stmt.where(Record.target_stage == target)
        if since:
            stmt = stmt.where(Record.recorded_at >= since)
        if until:
            stmt = stmt.where(Record.recorded_at < until)
        if before_seq is not None:
            stmt = stmt.where(Record.seq < before_seq)
        with self.engine.connect() as conn:
            return [json.loads(b) for b in conn.execute(stmt).scalars()]

    def verify(self) -> VerifyResult:
        """Walk the chain; name the first record that was changed, removed or reordered."""
        prev, expected_seq, n = GENESIS, 1, 0
        stmt = select(
            Record.seq,
            Record.kind,
            Record.decision_id,
            Record.model_ref,
            Record.outcome,
            Record.body,
            Record.prev_hash,
            Record.record_hash,
        ).order_by(Record.seq)
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=1000).execute(stmt):
                n += 1
                if row.seq != expected_seq:
                    return VerifyResult(
                        False, n, f"record {expected_seq} is missing (next is {row.seq})", row.seq
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
        if decision.get("outcome") != row.outcome or subject.get("ref") != row.model_ref:
            return "outcome or model column differs from the hashed body"
    return None
