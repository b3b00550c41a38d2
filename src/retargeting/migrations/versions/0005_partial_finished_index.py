"""finished-rows index holds finished rows only

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:10:00

Every enqueued (pending) row used to add an entry (status, NULL) to this index, which only the
purge reads, and only for finished rows: a quarter of an event's insert cost on the ingest path.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_FINISHED = sa.text("finished_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_events_finished")
        batch_op.create_index(
            "ix_outbox_events_finished_at",
            ["finished_at"],
            unique=False,
            postgresql_where=_FINISHED,
            sqlite_where=_FINISHED,
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outbox_events_finished_at", postgresql_where=_FINISHED, sqlite_where=_FINISHED
        )
        batch_op.create_index("ix_outbox_events_finished", ["status", "finished_at"], unique=False)
