"""The decision log's tables, on one MetaData (the migrations' target): the chain of records and the
API tokens, so Alembic sees the whole schema and autogenerate proposes no drop."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, Table, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


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
    # a decision's evidence_origin (collected, supplied; None before it was kept): release decisions
    # are found by an index seek, never by a walk that what-ifs can lengthen (migration 0005)
    evidence_origin: Mapped[str | None] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    record_hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_decision_log_model_seq", "model_ref", "seq"),
        Index("ix_decision_log_outcome_seq", "outcome", "seq"),
        Index("ix_decision_log_target_seq", "target_stage", "seq"),
        Index("ix_decision_log_recorded_at", "recorded_at"),
        Index("ix_decision_log_model_target_seq", "model_ref", "target_stage", "seq"),
        Index("ix_decision_log_kind_seq", "kind", "seq"),
        Index("ix_decision_log_release", "model_ref", "target_stage", "evidence_origin", "outcome", "seq"),
    )


# API tokens: only a hash of each token's secret; every row is backed by a record in the chain
# (policygate.auth.tokens checks it at every authentication, `log verify` for all of them).
api_tokens = Table(
    "api_tokens",
    Base.metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("scopes", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(320)),
    Column("revoked_at", DateTime(timezone=True)),
)
