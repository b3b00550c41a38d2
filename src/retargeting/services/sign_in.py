"""Password sign-in with growing delays after repeated failures, and the first-run setup link.

Delays are kept in the database, so every web process enforces them. They are keyed by the pair
(email, client address) and by the address alone: one attacker cannot lock a real admin out from
elsewhere, and one address cannot try many emails quickly.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from retargeting import security
from retargeting.db import auth, login_failures, settings_store
from retargeting.services import credentials

FREE_ATTEMPTS = 3  # failures allowed before any delay
MAX_DELAY_SECONDS = 900.0
SETUP_KEY = "first_run_setup"
SETUP_LINK_TTL_SECONDS = 24 * 3600


@functools.cache
def _dummy_hash() -> str:
    """Verified when the email is unknown, so both answers take as long as a real check."""
    return security.hash_password(secrets.token_urlsafe(16))


class SignInRefused(Exception):
    """Wrong email or password; deliberately does not say which."""


class TooManyAttempts(Exception):
    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many failed attempts; try again in {int(retry_after) + 1} s")


def delay_after(failures: int) -> float:
    """0 for the first attempts, then 2, 4, 8, ... seconds, capped at 15 minutes."""
    if failures < FREE_ATTEMPTS:
        return 0.0
    return float(min(MAX_DELAY_SECONDS, 2.0 ** (failures - FREE_ATTEMPTS + 1)))


def _keys(email: str, address: str) -> list[str]:
    digest = hashlib.sha256(email.encode()).hexdigest()[:32]
    return [f"pair:{digest}:{address}", f"addr:{address}"]


def authenticate(
    engine: Engine, *, email: str, password: str, address: str, now: float
) -> auth.User:
    email = email.strip().lower()
    keys = _keys(email, address)
    with engine.connect() as conn:
        history = login_failures.read(conn, keys)
        found = auth.user_by_email(conn, email)
    wait = max((last + delay_after(failures) - now for failures, last in history), default=0.0)
    if wait > 0:
        raise TooManyAttempts(wait)
    # The password check (argon2, tens of ms) runs outside any transaction.
    ok = security.verify_password(found[1] if found else _dummy_hash(), password) and found
    with engine.begin() as conn:
        if ok and found:
            login_failures.clear(conn, keys[:1])
            return found[0]
        login_failures.add_failure(conn, keys, now)
    raise SignInRefused("wrong email or password")


@dataclass(frozen=True, slots=True)
class SetupLink:
    token: str
    expires_at: float


class SetupLinkInvalid(Exception):
    """Used, expired, replaced, or a superadmin exists already."""


def issue_setup_link(engine: Engine, now: float) -> SetupLink | None:
    """A one-time link to create the first superadmin, or None when one exists already.

    Each call replaces the previous link, so only the newest printed link works.
    """
    with engine.begin() as conn:
        if auth.superadmin_exists(conn):
            settings_store.write_value(conn, SETUP_KEY, None, now)
            return None
        token = secrets.token_urlsafe(24)
        expires_at = now + SETUP_LINK_TTL_SECONDS
        value = {"token_hash": security.hash_bearer(token), "expires_at": expires_at}
        settings_store.write_value(conn, SETUP_KEY, value, now)
    return SetupLink(token, expires_at)


def _link_valid(conn: Connection, token: str, now: float) -> bool:
    stored = settings_store.read_value(conn, SETUP_KEY)
    if stored is None or auth.superadmin_exists(conn):
        return False
    same = secrets.compare_digest(str(stored["token_hash"]), security.hash_bearer(token))
    return same and float(stored["expires_at"]) > now


def setup_link_valid(engine: Engine, token: str, now: float) -> bool:
    with engine.connect() as conn:
        return _link_valid(conn, token, now)


def complete_setup(
    engine: Engine, *, token: str, email: str, password: str, now: float
) -> auth.User:
    """Create the first superadmin through the link, which stops working in the same commit.

    Raises `credentials.CredentialError` for a bad email or password (the message says why).
    """
    address = credentials.normalise_email(email)
    credentials.check_password(password)
    password_hash = security.hash_password(password)
    with engine.begin() as conn:
        if not _link_valid(conn, token, now):
            raise SetupLinkInvalid("this setup link is no longer valid")
        user = auth.create_user(
            conn,
            email=address,
            password_hash=password_hash,
            is_superadmin=True,
            now=now,
        )
        settings_store.write_value(conn, SETUP_KEY, None, now)
    return user
