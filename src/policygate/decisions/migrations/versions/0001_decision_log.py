"""The decision log table as the first release created it (Base.metadata.create_all).

A log created before migrations existed has exactly this schema; ``migrate`` stamps
it with this revision instead of creating the table again.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decision_log",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("decision_id", sa.String(64), nullable=False, unique=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_ref", sa.String(512), nullable=True),
        sa.Column("target_stage", sa.String(32), nullable=True),
        sa.Column("outcome", sa.String(8), nullable=True),
        sa.Column("policy_revision", sa.String(80), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_decision_log_model_seq", "decision_log", ["model_ref", "seq"])
    op.create_index("ix_decision_log_outcome_seq", "decision_log", ["outcome", "seq"])
    op.create_index("ix_decision_log_target_seq", "decision_log", ["target_stage", "seq"])
    op.create_index("ix_decision_log_recorded_at", "decision_log", ["recorded_at"])


def downgrade() -> None:
    op.drop_table("decision_log")
