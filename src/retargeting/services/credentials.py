"""Creating users, personal access tokens and ingest API keys (the CLI's bootstrap use cases).

Bearer secrets are generated here, returned once to the caller and stored only as hashes, so a
database dump never yields a usable credential. A new or revoked API key bumps the settings
revision so every process's snapshot (which the ingest hot path checks) picks it up within a poll.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from retargeting import security
from retargeting.db import auth, settings_store
from retargeting.db.engine import READ_ONLY
from retargeting.settings import random_token

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1000  # argon2 copes, but a megabyte "password" is a mistake
MAX_EMAIL_LENGTH = 320  # the column's size (RFC 5321 limits)
MAX_NAME_LENGTH = 200  # the token and key name columns' size
SECONDS_PER_DAY = 86_400


class CredentialError(ValueError):
    """A request the caller can fix: the message says how, and never contains a secret."""


class UserExists(CredentialError):
    pass


class UserNotFound(CredentialError):
    pass


class ApiKeyNotFound(CredentialError):
    pass


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    """A freshly generated bearer secret: shown once, never stored in the clear."""

    id: int
    secret: str

    def __repr__(self) -> str:  # keeps the secret out of tracebacks and debug logs
        return f"IssuedSecret(id={self.id}, secret='…')"


def normalise_email(email: str) -> str:
    """Emails are compared lower-cased and trimmed, so sign-in does not depend on typing case."""
    value = email.strip().lower()
    local, _, domain = value.partition("@")
    if not local or not domain or any(c.isspace() for c in value) or len(value) > MAX_EMAIL_LENGTH:
        raise CredentialError(f"not an email address: {email.strip()!r}")
    return value


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise CredentialError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise CredentialError(f"the password must be at most {MAX_PASSWORD_LENGTH} characters")


def _check_name(name: str, what: str) -> str:
    value = name.strip()
    if not value or len(value) > MAX_NAME_LENGTH:
        raise CredentialError(f"the {what} name must be 1 to {MAX_NAME_LENGTH} characters")
    return value


def create_user(
    engine: Engine, *, email: str, password: str, is_superadmin: bool, now: float
) -> auth.User:
    address = normalise_email(email)
    check_password(password)
    password_hash = security.hash_password(password)  # slow on purpose: outside the transaction
    try:
        with engine.begin() as conn:
            if auth.user_by_email(conn, address) is not None:
                raise UserExists(f"a user with the email {address} already exists")
            user = auth.create_user(
                conn,
                email=address,
                password_hash=password_hash,
                is_superadmin=is_superadmin,
                now=now,
            )
    except IntegrityError as exc:  # created concurrently between the check and the insert
        raise UserExists(f"a user with the email {address} already exists") from exc
    log.info(
        "user created",
        extra={"action": "user_create", "user_id": user.id, "superadmin": is_superadmin},
    )
    return user


def create_token(
    engine: Engine,
    *,
    email: str,
    name: str,
    expires_days: int | None,
    now: float,
) -> IssuedSecret:
    """A personal access token for the API; `expires_days=None` never expires."""
    address = normalise_email(email)
    token_name = _check_name(name, "token")
    if expires_days is not None and expires_days < 1:
        raise CredentialError("--expires-days must be at least 1")
    token = random_token(security.PERSONAL_TOKEN_PREFIX)
    with engine.begin() as conn:
        found = auth.user_by_email(conn, address)
        if found is None:
            raise UserNotFound(f"no user with the email {address}; create it with `users create`")
        user, _password_hash = found
        token_id = auth.create_token(
            conn,
            user_id=user.id,
            token_hash=security.hash_bearer(token),
            name=token_name,
            expires_at=None if expires_days is None else now + expires_days * SECONDS_PER_DAY,
            now=now,
        )
    log.info(
        "access token created",
        extra={"action": "token_create", "token_id": token_id, "user_id": user.id},
    )
    return IssuedSecret(id=token_id, secret=token)


def create_api_key(engine: Engine, *, name: str, now: float) -> IssuedSecret:
    """An ingest key for the platform's servers; live in every process after one poll."""
    key_name = _check_name(name, "API key")
    key = random_token(security.API_KEY_PREFIX)
    with engine.begin() as conn:
        key_id = auth.create_api_key(
            conn, name=key_name, key_hash=security.hash_bearer(key), now=now
        )
        settings_store.bump_revision(conn)
    log.info("api key created", extra={"action": "api_key_create", "api_key_id": key_id})
    return IssuedSecret(id=key_id, secret=key)


def list_api_keys(engine: Engine) -> list[auth.ApiKey]:
    with engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        return auth.list_api_keys(conn)


def revoke_api_key(engine: Engine, *, key_id: int, now: float) -> None:
    with engine.begin() as conn:
        if not auth.revoke_api_key(conn, key_id, now):
            raise ApiKeyNotFound(f"no active API key with id {key_id}")
    log.info("api key revoked", extra={"action": "api_key_revoke", "api_key_id": key_id})
