"""An index on (kind, seq): the newest audit run, the waivers and the other non-decision records are
found without a walk through every decision (the console reads them on every page).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_decision_log_kind_seq", "decision_log", ["kind", "seq"])


def downgrade() -> None:
    op.drop_index("ix_decision_log_kind_seq", table_name="decision_log")
