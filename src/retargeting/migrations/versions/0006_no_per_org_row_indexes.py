"""pageview and call rows carry no organization index

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 12:50:00

Nothing reads these rows by organization (the admin's counts are the counters on
`organizations`), yet every recorded interaction added an entry to one of these indexes at one
of as many insert points as there are organizations: a dirtied leaf page per organization per
commit, about a third of what a batch event cost inside the writer lock.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("widget_pageviews", schema=None) as batch_op:
        batch_op.drop_index("ix_widget_pageviews_organization_id")
    with op.batch_alter_table("call_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_call_logs_organization_id")


def downgrade() -> None:
    with op.batch_alter_table("call_logs", schema=None) as batch_op:
        batch_op.create_index("ix_call_logs_organization_id", ["organization_id"], unique=False)
    with op.batch_alter_table("widget_pageviews", schema=None) as batch_op:
        batch_op.create_index(
            "ix_widget_pageviews_organization_id", ["organization_id"], unique=False
        )
