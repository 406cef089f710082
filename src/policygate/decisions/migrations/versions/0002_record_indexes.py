"""Indexes for the governed record: latest decision per (model, target) without scanning a model's history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_decision_log_model_target_seq", "decision_log", ["model_ref", "target_stage", "seq"])


def downgrade() -> None:
    op.drop_index("ix_decision_log_model_target_seq", table_name="decision_log")
