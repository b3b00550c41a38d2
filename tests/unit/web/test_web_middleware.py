"""The body size limit and the last-resort error handler, around tiny stand-alone apps."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy.exc import IntegrityError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from retargeting.web.middleware import BodyLimits, BodySizeLimit, CatchAll, describe
from tests.support.testclient import TestClient

LIMIT = 100
BIG_LIMIT = 1000


async def echo_length(request: Request) -> JSONResponse:
    return JSONResponse({"length": len(await request.body())})


async def explode(request: Request) -> JSONResponse:
    raise RuntimeError("a bug")


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = Starlette(
        routes=[
            Route("/small", echo_length, methods=["POST"]),
            Route("/big", echo_length, methods=["POST"]),
            Route("/explode", explode, methods=["POST"]),
        ]
    )
    app.add_middleware(BodySizeLimit, limits=BodyLimits(LIMIT, {"/big": BIG_LIMIT}))
    app.add_middleware(CatchAll)
    with TestClient(app) as test_client:
        yield test_client


def chunks(total: int, size: int = 10) -> Iterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


def test_a_body_within_the_limit_passes(client: TestClient) -> None:
    response = client.post("/small", content=b"x" * LIMIT)
    assert response.json() == {"length": LIMIT}


def test_a_declared_length_over_the_limit_is_refused_before_reading(client: TestClient) -> None:
    response = client.post("/small", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_limits_are_per_path(client: TestClient) -> None:
    assert client.post("/big", content=b"x" * BIG_LIMIT).status_code == 200
    assert client.post("/big", content=b"x" * (BIG_LIMIT + 1)).status_code == 413


def test_a_chunked_body_is_counted_as_it_arrives(client: TestClient) -> None:
    assert client.post("/small", content=chunks(LIMIT)).json() == {"length": LIMIT}
    response = client.post("/small", content=chunks(LIMIT * 5))
    assert response.status_code == 413  # raised as HTTPException: the app's handler renders it


def test_a_bug_becomes_a_generic_500_and_one_log_record(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="retargeting.web.middleware"):
        response = client.post("/explode", content=b"secret-body-EAAtoken")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    [record] = caplog.records
    assert getattr(record, "action", None) == "http_unhandled_error"
    assert "RuntimeError: a bug" in record.getMessage()
    assert "secret-body" not in caplog.text


def test_describe_leaves_out_sql_parameters() -> None:
    error = IntegrityError(
        "INSERT INTO t (ip) VALUES (?)", {"ip": "203.0.113.7"}, Exception("UNIQUE failed")
    )
    assert "203.0.113.7" in str(error)  # what SQLAlchemy itself would log
    text = describe(error)
    assert "203.0.113.7" not in text
    assert "UNIQUE failed" in text
