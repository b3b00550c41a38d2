"""Switching retargeting (the B2B audience) on or off for one organization, with its audit entry."""

from __future__ import annotations

from sqlalchemy import Engine

from retargeting.db import audit, orgs, settings_store
from retargeting.domain.pixel import check_org_toggle
from retargeting.security import TokenCipher


class OrganizationNotFound(LookupError):
    pass


def set_retargeting(
    engine: Engine, cipher: TokenCipher, *, actor: str, org_id: str, enabled: bool, now: float
) -> orgs.Organization:
    """Raises OrgToggleRefused when switching on while the pixel is not active (spec row 6).

    The pixel state is read in the same transaction, not from a snapshot, so the rule holds
    even right after the pixel was disabled in another process.
    """
    with engine.begin() as conn:
        org = orgs.get(conn, org_id)
        if org is None:
            raise OrganizationNotFound(org_id)
        if org.retargeting_enabled == enabled:
            return org
        check_org_toggle(settings_store.read_pixel(conn, cipher).state, enabled)
        orgs.set_retargeting(conn, org_id, enabled, now)
        audit.record(
            conn,
            actor=actor,
            action="organization.retargeting",
            target=f"organization:{org_id}",
            old_value={"retargeting_enabled": org.retargeting_enabled, "name": org.name},
            new_value={"retargeting_enabled": enabled, "name": org.name},
            now=now,
        )
        updated = orgs.get(conn, org_id)
    assert updated is not None
    return updated
