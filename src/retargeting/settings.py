"""Process configuration, read from `RETARGETING_*` variables and validated before anything starts.

Unsafe combinations fail at start-up with a message that says how to fix them, so a misconfigured
production process never serves a single request.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from cryptography.fernet import Fernet
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_VAR_DIR = Path("var")
SECRET_KEY_FILE = "secret.key"  # noqa: S105 (a file name, not a secret)


class ConfigurationError(RuntimeError):
    """Raised at start-up when the configuration is unsafe or incomplete."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RETARGETING_", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    var_dir: Path = DEFAULT_VAR_DIR
    database_url: str = ""
    secret_key: str = ""

    graph_api_url: str = "https://graph.facebook.com"
    graph_api_version: str = "v25.0"
    graph_timeout_seconds: float = Field(default=1.5, gt=0)  # Meta advises 1,500 ms

    # Delivery tunables; the defaults follow DESIGN.md.
    batch_size: int = Field(default=1000, ge=1, le=1000)  # Graph API limit per request
    max_in_flight: int = Field(default=8, ge=1, le=64)
    linger_seconds: float = Field(default=0.2, ge=0)
    lease_seconds: float = Field(default=30.0, gt=0)
    settings_poll_seconds: float = Field(default=0.5, gt=0)
    retention_days: int = Field(default=30, ge=1)

    embedded_worker: bool = True

    @field_validator("graph_api_version")
    @classmethod
    def _version_shape(cls, value: str) -> str:
        if not value.startswith("v") or not value[1:].replace(".", "").isdigit():
            raise ValueError("must look like v25.0")
        return value

    @field_validator("graph_api_url")
    @classmethod
    def _url_shape(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _defaults_from_var_dir(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.var_dir / 'retargeting.sqlite3').as_posix()}"
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def resolve_secret_key(self) -> str:
        """Return the Fernet key, generating one into `var/` outside production.

        Production refuses to start without an explicit key: a generated key on an ephemeral disk
        would make every stored access token unreadable after a redeploy.
        """
        if self.secret_key:
            try:
                Fernet(self.secret_key.encode())
            except (ValueError, TypeError) as exc:
                raise ConfigurationError(
                    "RETARGETING_SECRET_KEY is not a valid Fernet key; generate one with "
                    "`python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'`"
                ) from exc
            return self.secret_key
        if self.environment == "production":
            raise ConfigurationError(
                "RETARGETING_SECRET_KEY is required in production (it encrypts the stored access "
                "token); generate one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`"
            )
        key_path = self.var_dir / SECRET_KEY_FILE
        if key_path.exists():
            return key_path.read_text().strip()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key().decode()
        key_path.write_text(key + "\n")
        key_path.chmod(0o600)
        return key


def random_token(prefix: str) -> str:
    """A high-entropy bearer secret with a recognisable prefix (for secret scanners)."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"
