"""Users, personal access tokens and ingest API keys. Only hashes of bearer secrets are stored."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from retargeting.db import settings_store
from retargeting.db.tables import access_tokens, api_keys, users


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    is_superadmin: bool
    session_epoch: int = 0


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    created_at: float
    revoked_at: float | None


def create_user(
    conn: Connection, *, email: str, password_hash: str, is_superadmin: bool, now: float
) -> User:
    result = conn.execute(
        insert(users)
        .values(
            email=email, password_hash=password_hash, is_superadmin=is_superadmin, created_at=now
        )
        .returning(users.c.id)
    )
    return User(id=int(result.scalar_one()), email=email, is_superadmin=is_superadmin)


def user_by_email(conn: Connection, email: str) -> tuple[User, str] | None:
    """The user and their password hash, for sign-in."""
    row = conn.execute(
        select(
            users.c.id,
            users.c.email,
            users.c.is_superadmin,
            users.c.session_epoch,
            users.c.password_hash,
        ).where(users.c.email == email)
    ).first()
    if row is None:
        return None
    return User(int(row[0]), row[1], bool(row[2]), int(row[3])), row[4]


def user_by_id(conn: Connection, user_id: int) -> User | None:
    row = conn.execute(
        select(users.c.id, users.c.email, users.c.is_superadmin, users.c.session_epoch).where(
            users.c.id == user_id
        )
    ).first()
    return None if row is None else User(int(row[0]), row[1], bool(row[2]), int(row[3]))


def end_sessions(conn: Connection, user_id: int) -> None:
    """Invalidate every browser session of the user (sign-out, or a password change)."""
    conn.execute(
        update(users).where(users.c.id == user_id).values(session_epoch=users.c.session_epoch + 1)
    )


def superadmin_exists(conn: Connection) -> bool:
    row = conn.execute(select(users.c.id).where(users.c.is_superadmin.is_(True)).limit(1)).first()
    return row is not None


def create_token(
    conn: Connection,
    *,
    user_id: int,
    token_hash: str,
    name: str,
    expires_at: float | None,
    now: float,
) -> int:
    result = conn.execute(
        insert(access_tokens)
        .values(
            user_id=user_id,
            token_hash=token_hash,
            name=name,
            expires_at=expires_at,
            created_at=now,
        )
        .returning(access_tokens.c.id)
    )
    return int(result.scalar_one())


def user_by_token(conn: Connection, token_hash: str, now: float) -> User | None:
    """The owner of a live token: not revoked, not expired."""
    row = conn.execute(
        select(users.c.id, users.c.email, users.c.is_superadmin)
        .join(access_tokens, access_tokens.c.user_id == users.c.id)
        .where(
            access_tokens.c.token_hash == token_hash,
            access_tokens.c.revoked_at.is_(None),
            (access_tokens.c.expires_at.is_(None)) | (access_tokens.c.expires_at > now),
        )
    ).first()
    return None if row is None else User(int(row[0]), row[1], bool(row[2]))


def revoke_token(conn: Connection, token_id: int, now: float) -> bool:
    result = conn.execute(
        update(access_tokens)
        .where(access_tokens.c.id == token_id, access_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(result.rowcount)


def create_api_key(conn: Connection, *, name: str, key_hash: str, now: float) -> int:
    result = conn.execute(
        insert(api_keys)
        .values(name=name, key_hash=key_hash, created_at=now)
        .returning(api_keys.c.id)
    )
    return int(result.scalar_one())


def live_api_key_hashes(conn: Connection) -> frozenset[str]:
    rows = conn.execute(select(api_keys.c.key_hash).where(api_keys.c.revoked_at.is_(None)))
    return frozenset(row[0] for row in rows)


def list_api_keys(conn: Connection) -> list[ApiKey]:
    rows = conn.execute(
        select(
            api_keys.c.id, api_keys.c.name, api_keys.c.created_at, api_keys.c.revoked_at
        ).order_by(api_keys.c.id)
    ).all()
    return [ApiKey(int(r[0]), r[1], r[2], r[3]) for r in rows]


def revoke_api_key(conn: Connection, key_id: int, now: float) -> bool:
    result = conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    settings_store.bump_revision(conn)
    return bool(result.rowcount)
