"""Secrets at rest: the access token is encrypted (Fernet), bearer secrets and passwords hashed.

Bearer tokens and API keys are 256-bit random strings, so a plain SHA-256 is a sound, fast index
(the ingest hot path checks one per request); passwords are low-entropy and get argon2.
"""

from __future__ import annotations

import hashlib
import hmac

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

PERSONAL_TOKEN_PREFIX = "rtp"  # noqa: S105 (a prefix, not a secret)
API_KEY_PREFIX = "rtk"

_password_hasher = PasswordHasher()


class UndecryptableSecret(RuntimeError):
    """The stored token was encrypted with another key: RETARGETING_SECRET_KEY changed."""


class TokenCipher:
    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode())

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise UndecryptableSecret(
                "the stored access token cannot be decrypted with RETARGETING_SECRET_KEY; "
                "restore the previous key or save the access token again"
            ) from exc


def derive_key(secret_key: str, purpose: str) -> bytes:
    """A key for one purpose (session signing, ...), so no two uses share the Fernet key."""
    return hmac.new(secret_key.encode(), purpose.encode(), hashlib.sha256).digest()


def hash_bearer(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _password_hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _password_hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
