from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from retargeting.settings import ConfigurationError, Settings


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    settings = Settings(environment="production", var_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="RETARGETING_SECRET_KEY is required"):
        settings.resolve_secret_key()
    assert not (tmp_path / "secret.key").exists()


def test_invalid_secret_key_is_refused_with_a_fix(tmp_path: Path) -> None:
    settings = Settings(secret_key="not-a-fernet-key", var_dir=tmp_path)
    with pytest.raises(ConfigurationError, match=r"Fernet\.generate_key"):
        settings.resolve_secret_key()


def test_embedded_default_generates_one_key_and_keeps_it(tmp_path: Path) -> None:
    first = Settings(var_dir=tmp_path / "var").resolve_secret_key()
    again = Settings(var_dir=tmp_path / "var").resolve_secret_key()
    assert first == again
    Fernet(first.encode())
    assert (tmp_path / "var" / "secret.key").stat().st_mode & 0o777 == 0o600


def test_explicit_key_wins(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    assert (
        Settings(environment="production", secret_key=key, var_dir=tmp_path).resolve_secret_key()
        == key
    )


def test_defaults_follow_design(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    assert settings.graph_api_version == "v25.0"
    assert settings.graph_api_url == "https://graph.facebook.com"
    assert settings.batch_size == 1000
    assert settings.database_url == f"sqlite:///{tmp_path.as_posix()}/retargeting.sqlite3"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("graph_api_version", "25.0"),
        ("graph_api_url", "graph.facebook.com"),
        ("batch_size", 1001),
        ("graph_timeout_seconds", 0),
    ],
)
def test_unsafe_values_fail_at_start(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})  # type: ignore[arg-type]


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETARGETING_GRAPH_API_VERSION", "v26.0")
    monkeypatch.setenv("RETARGETING_MAX_IN_FLIGHT", "3")
    settings = Settings()
    assert settings.graph_api_version == "v26.0"
    assert settings.max_in_flight == 3
