"""the due index holds pending rows only

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 14:00:00

It was (status, next_attempt_at) over every row: delivering an event moved its entry from the
pending part to the delivered part, and the index grew with every event ever sent though only
claims read it, and only its pending part. Partial, a delivered row's entry is only removed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_events_due")
        batch_op.create_index(
            "ix_outbox_events_due",
            ["next_attempt_at"],
            unique=False,
            postgresql_where=_PENDING,
            sqlite_where=_PENDING,
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outbox_events_due", postgresql_where=_PENDING, sqlite_where=_PENDING
        )
        batch_op.create_index("ix_outbox_events_due", ["status", "next_attempt_at"], unique=False)
