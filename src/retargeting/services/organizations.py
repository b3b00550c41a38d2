"""The platform's servers keep organizations in sync: name and status, never the retargeting flag.

The flag is the superadmin's decision (see `org_retargeting`), so a sync can never switch the B2B
audience on or off behind their back; it is not audited for the same reason.
"""

from __future__ import annotations

from sqlalchemy import Engine

from retargeting.db import orgs


def upsert(
    engine: Engine, *, org_id: str, name: str, status: str, now: float
) -> tuple[orgs.Organization, bool]:
    """(the organization as stored, whether it was created)."""
    with engine.begin() as conn:
        created = orgs.upsert(conn, org_id, name, status, now)
        org = orgs.get(conn, org_id)
    assert org is not None
    return org, created
