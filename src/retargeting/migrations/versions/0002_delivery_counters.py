"""delivery counters

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:37:12.456382
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_counters",
        sa.Column("event_name", sa.String(length=100), nullable=False),
        sa.Column("delivered", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("failed", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("expired", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_delivered_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("event_name", name=op.f("pk_delivery_counters")),
    )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_events_errors",
            ["last_attempt_at"],
            unique=False,
            postgresql_where=sa.text("last_error IS NOT NULL"),
            sqlite_where=sa.text("last_error IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outbox_events_errors",
            postgresql_where=sa.text("last_error IS NOT NULL"),
            sqlite_where=sa.text("last_error IS NOT NULL"),
        )

    op.drop_table("delivery_counters")
