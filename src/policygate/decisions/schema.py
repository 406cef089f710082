"""The decision log's tables, on one MetaData (the migrations' target): the chain of records and the
API tokens, so Alembic sees the whole schema and autogenerate proposes no drop.

SQLAlchemy Core tables, not ORM classes: nothing maps rows to objects, and the ORM's import was a
tenth of a second of every CLI run (docs/benchmarks.md, "CLI start-up")."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

decision_log = Table(
    "decision_log",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),
    Column("decision_id", String(64), nullable=False, unique=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("model_ref", String(512)),
    Column("target_stage", String(32)),
    Column("outcome", String(8)),
    Column("policy_revision", String(80)),
    # a decision's evidence_origin (collected, supplied; None before it was kept): release decisions
    # are found by an index seek, never by a walk that what-ifs can lengthen (migration 0005)
    Column("evidence_origin", String(16)),
    Column("body", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("record_hash", String(64), nullable=False),
    Index("ix_decision_log_model_seq", "model_ref", "seq"),
    Index("ix_decision_log_outcome_seq", "outcome", "seq"),
    Index("ix_decision_log_target_seq", "target_stage", "seq"),
    Index("ix_decision_log_recorded_at", "recorded_at"),
    Index("ix_decision_log_model_target_seq", "model_ref", "target_stage", "seq"),
    Index("ix_decision_log_kind_seq", "kind", "seq"),
    Index("ix_decision_log_release", "model_ref", "target_stage", "evidence_origin", "outcome", "seq"),
)

# The log's columns by name, as the queries spell them (``Record.seq``, ``Record.body``).
Record = decision_log.c

# API tokens: only a hash of each token's secret; every row is backed by a record in the chain
# (policygate.auth.tokens checks it at every authentication, `log verify` for all of them).
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("scopes", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(320)),
    Column("revoked_at", DateTime(timezone=True)),
)
