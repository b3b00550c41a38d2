"""session epoch and folded names

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 13:58:43.044763
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("name_folded", sa.String(length=300), server_default="", nullable=False)
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False)
        )

    # Fold the existing names in Python, exactly as the application does for new ones.
    organizations = sa.table(
        "organizations", sa.column("id"), sa.column("name"), sa.column("name_folded")
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(organizations.c.id, organizations.c.name)).all()
    if rows:
        connection.execute(
            organizations.update()
            .where(organizations.c.id == sa.bindparam("org_id"))
            .values(name_folded=sa.bindparam("folded")),
            [{"org_id": row.id, "folded": row.name.casefold()} for row in rows],
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_epoch")

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("name_folded")
