"""A decision's evidence origin as a column, indexed with (model, target, outcome, seq): the audit and
the attestation route find a version's latest *collected* decision by one seek, never through a
window of newest decisions that what-ifs (supplied evidence) can fill. Existing decisions are filled
in from their hashed bodies (``log verify`` checks the column against the body from now on).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BATCH = 5000


def upgrade() -> None:
    op.add_column("decision_log", sa.Column("evidence_origin", sa.String(16), nullable=True))
    conn = op.get_bind()
    table = sa.table(
        "decision_log",
        sa.column("seq", sa.BigInteger),
        sa.column("kind", sa.String),
        sa.column("body", sa.Text),
        sa.column("evidence_origin", sa.String),
    )
    after = 0
    while True:  # keyset batches: a large log is filled in without holding every body in memory
        rows = conn.execute(
            sa.select(table.c.seq, table.c.body)
            .where(table.c.kind == "decision", table.c.seq > after)
            .order_by(table.c.seq)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        updates = []
        for seq, body in rows:
            origin = (json.loads(body).get("decision") or {}).get("evidence_origin")
            if isinstance(origin, str):
                updates.append({"s": seq, "o": origin})
        if updates:
            conn.execute(
                table.update()
                .where(table.c.seq == sa.bindparam("s"))
                .values(evidence_origin=sa.bindparam("o")),
                updates,
            )
        after = rows[-1].seq
    op.create_index(
        "ix_decision_log_release",
        "decision_log",
        ["model_ref", "target_stage", "evidence_origin", "outcome", "seq"],
    )


def downgrade() -> None:
    op.drop_index("ix_decision_log_release", table_name="decision_log")
    op.drop_column("decision_log", "evidence_origin")
