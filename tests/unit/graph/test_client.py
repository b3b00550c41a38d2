"""GraphClient over `httpx.MockTransport`: every answer maps to a value `classify()` can judge."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

import httpx
import orjson
import pytest

from retargeting.domain.delivery import Disposition, GraphError, classify
from retargeting.domain.events import request_body
from retargeting.graph import errors
from retargeting.graph.client import Accepted, GraphClient, GraphTimeouts, parse_answer

TOKEN = "EAAunitTestToken0123456789abcdefXYZ"
PIXEL = "1234567890"
BODY = request_body([b'{"event_name":"Lead"}'], TOKEN, "TEST123")

Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler, timeouts: GraphTimeouts | None = None) -> GraphClient:
    return GraphClient(
        "https://graph.example.test",
        "v25.0",
        timeouts or GraphTimeouts.from_total(),
        transport=httpx.MockTransport(handler),
    )


def answering(status: int, payload: object = None, content: bytes = b"") -> Handler:
    body = orjson.dumps(payload) if payload is not None else content
    return lambda request: httpx.Response(status, content=body)


def meta_error(
    code: int,
    subcode: int | None = None,
    *,
    transient: bool = False,
    message: str = "Invalid parameter",
) -> dict[str, object]:
    return {
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "error_subcode": subcode,
            "is_transient": transient,
            "error_user_msg": "Something about the event",
            "fbtrace_id": "AbCdEf123",
        }
    }


async def test_success_maps_to_accepted() -> None:
    answer = {"events_received": 3, "messages": ["note"], "fbtrace_id": "Trace1"}
    async with client_for(answering(200, answer)) as client:
        result = await client.send(PIXEL, BODY)
    assert result == Accepted(events_received=3, fbtrace_id="Trace1", messages=("note",))


async def test_request_posts_the_body_to_the_events_edge_with_the_token_only_in_the_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"events_received": 1, "fbtrace_id": "T"})

    caplog.set_level(logging.DEBUG)
    async with client_for(handler) as client:
        await client.send(PIXEL, BODY)
        client_repr = repr(client)
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == f"https://graph.example.test/v25.0/{PIXEL}/events"
    assert request.headers["content-type"] == "application/json"
    assert request.content == BODY
    assert TOKEN not in str(request.url)
    assert all(TOKEN not in value for value in request.headers.values())
    assert TOKEN not in client_repr
    assert all(TOKEN not in record.getMessage() for record in caplog.records)
    assert all(TOKEN not in str(record.__dict__) for record in caplog.records)


async def test_meta_error_object_keeps_every_field() -> None:
    async with client_for(answering(400, meta_error(100, 2804003))) as client:
        result = await client.send(PIXEL, BODY)
    assert result == GraphError(
        message="Invalid parameter",
        code=100,
        error_subcode=2804003,
        type="OAuthException",
        is_transient=False,
        error_user_msg="Something about the event",
        fbtrace_id="AbCdEf123",
        http_status=400,
    )


@pytest.mark.parametrize(
    ("status", "payload", "expected"),
    [
        pytest.param(400, meta_error(100, 2804003), Disposition.INVALID, id="bad-event"),
        pytest.param(400, meta_error(100, 33), Disposition.PAUSE, id="unknown-pixel"),
        pytest.param(400, meta_error(190), Disposition.PAUSE, id="token"),
        pytest.param(403, meta_error(200), Disposition.PAUSE, id="permission"),
        pytest.param(400, meta_error(17), Disposition.RATE_LIMITED, id="rate-limit-17"),
        pytest.param(400, meta_error(80004), Disposition.RATE_LIMITED, id="rate-limit-80004"),
        pytest.param(500, meta_error(2, transient=True), Disposition.RETRY, id="transient"),
        pytest.param(400, meta_error(1), Disposition.RETRY, id="unknown-error"),
    ],
)
async def test_meta_errors_classify_as_documented(
    status: int, payload: dict[str, object], expected: Disposition
) -> None:
    async with client_for(answering(status, payload)) as client:
        result = await client.send(PIXEL, BODY)
    assert isinstance(result, GraphError)
    assert result.http_status == status
    assert classify(result) is expected


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_non_json_server_error_is_retried(status: int) -> None:
    page = b"<html><body>Bad gateway</body></html>"
    async with client_for(answering(status, content=page)) as client:
        result = await client.send(PIXEL, BODY)
    assert isinstance(result, GraphError)
    assert result.http_status == status
    assert result.code is None
    assert str(status) in result.message
    assert classify(result) is Disposition.RETRY


@pytest.mark.parametrize(
    ("status", "payload"),
    [(200, {}), (200, {"events_received": "many"}), (200, [1, 2]), (400, {"error": "nope"})],
)
async def test_unexpected_json_becomes_an_error_with_the_status(
    status: int, payload: object
) -> None:
    async with client_for(answering(status, payload)) as client:
        result = await client.send(PIXEL, BODY)
    assert isinstance(result, GraphError)
    assert result.http_status == status
    assert "unexpected" in result.message


@pytest.mark.parametrize(
    ("exception", "phrase"),
    [
        (httpx.ReadTimeout, "reading the answer"),
        (httpx.ConnectTimeout, "connecting"),
        (httpx.WriteTimeout, "writing the request"),
        (httpx.PoolTimeout, "waiting for a pooled connection"),
    ],
)
async def test_timeouts_become_retryable_errors(
    exception: type[httpx.TimeoutException], phrase: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exception("timed out", request=request)

    async with client_for(handler) as client:
        result = await client.send(PIXEL, BODY)
    assert isinstance(result, GraphError)
    assert result.message == f"timed out after 1.5s {phrase}"
    assert result.http_status is None
    assert classify(result) is Disposition.RETRY


async def test_the_overall_deadline_cuts_a_slow_answer() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json={"events_received": 1})

    timeouts = GraphTimeouts(connect=5, read=5, write=5, pool=5, total=0.05)
    async with GraphClient(
        "https://graph.example.test", "v25.0", timeouts, transport=httpx.MockTransport(handler)
    ) as client:
        result = await client.send(PIXEL, BODY)
    assert result == GraphError(message="timed out after 0.05s", http_status=None)


async def test_connection_errors_from_the_transport_become_values() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    async with client_for(handler) as client:
        result = await client.send(PIXEL, BODY)
    assert isinstance(result, GraphError)
    assert result.message == "ConnectError: [Errno 111] Connection refused"
    assert result.http_status is None
    assert classify(result) is Disposition.RETRY


async def test_a_real_refused_connection_is_a_value_not_an_exception() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with GraphClient(
        f"http://127.0.0.1:{port}", "v25.0", GraphTimeouts.from_total()
    ) as client:
        result = await client.send(PIXEL, BODY)
    assert isinstance(result, GraphError)
    assert result.message.startswith("ConnectError")
    assert classify(result) is Disposition.RETRY


async def test_a_token_quoted_back_by_meta_is_scrubbed() -> None:
    payload = meta_error(190, message=f"Malformed access token {TOKEN}")
    async with client_for(answering(400, payload)) as client:
        result = await client.send(PIXEL, BODY)
    assert isinstance(result, GraphError)
    assert TOKEN not in result.message
    assert result.message == "Malformed access token [redacted]"


@pytest.mark.parametrize("pixel_id", ["", "12a", "../me", "123/events?x=1", " 123", "١٢٣"])
async def test_pixel_ids_that_are_not_digits_are_refused(pixel_id: str) -> None:
    async with client_for(answering(200, {"events_received": 1})) as client:
        with pytest.raises(ValueError, match="digits only") as caught:
            await client.send(pixel_id, BODY)
    assert isinstance(caught.value, errors.InvalidPixelId)


@pytest.mark.parametrize(
    ("base_url", "version"),
    [
        ("ftp://graph.facebook.com", "v25.0"),
        ("https://user:secret@graph.facebook.com", "v25.0"),
        ("https://graph.facebook.com?access_token=x", "v25.0"),
        ("https://graph.facebook.com", "25.0"),
        ("https://graph.facebook.com", "v25"),
        ("https://graph.facebook.com", "v25.0/../x"),
    ],
)
def test_unsafe_configuration_fails_at_construction(base_url: str, version: str) -> None:
    with pytest.raises(errors.GraphConfigurationError):
        GraphClient(base_url, version, GraphTimeouts.from_total())


def test_timeouts_from_one_total_follow_meta_advice() -> None:
    timeouts = GraphTimeouts.from_total()
    assert timeouts == GraphTimeouts(connect=1.5, read=1.5, write=1.5, pool=1.5, total=1.5)
    assert timeouts.to_httpx() == httpx.Timeout(1.5)
    with pytest.raises(ValueError, match="positive"):
        GraphTimeouts.from_total(0)


async def test_a_closed_client_refuses_to_send() -> None:
    client = client_for(answering(200, {"events_received": 1}))
    await client.aclose()
    with pytest.raises(RuntimeError):
        await client.send(PIXEL, BODY)


def test_parse_answer_is_pure_and_total() -> None:
    assert parse_answer(200, b'{"events_received": 2}') == Accepted(2, None, ())
    assert parse_answer(204, b"") == GraphError(
        message="HTTP 204: answer is not JSON (0 bytes)", http_status=204
    )


async def test_a_transport_error_without_detail_still_says_what_failed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("", request=request)

    async with client_for(handler) as client:
        result = await client.send(PIXEL, BODY)
    assert result == GraphError(message="RemoteProtocolError: no detail", http_status=None)
