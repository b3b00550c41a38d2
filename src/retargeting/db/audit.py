"""The audit log: who changed which setting, when, from what to what (secrets already masked)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select

from retargeting.db.tables import audit_log


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    action: str
    target: str
    old_value: Any
    new_value: Any


def record(
    conn: Connection,
    *,
    actor: str,
    action: str,
    target: str,
    old_value: Any,
    new_value: Any,
    now: float,
) -> None:
    conn.execute(
        insert(audit_log).values(
            at=now,
            actor=actor,
            action=action,
            target=target,
            old_value=orjson.dumps(old_value).decode(),
            new_value=orjson.dumps(new_value).decode(),
        )
    )


def recent(conn: Connection, limit: int = 20) -> list[AuditEntry]:
    rows = conn.execute(
        select(audit_log).order_by(audit_log.c.at.desc(), audit_log.c.id.desc()).limit(limit)
    ).all()
    return [
        AuditEntry(
            id=row.id,
            at=row.at,
            actor=row.actor,
            action=row.action,
            target=row.target,
            old_value=orjson.loads(row.old_value) if row.old_value else None,
            new_value=orjson.loads(row.new_value) if row.new_value else None,
        )
        for row in rows
    ]
