"""GraphClient against the real Graph stand-in: Meta's rules, faults and recordings, over HTTP."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from retargeting.domain.delivery import Disposition, GraphError, classify
from retargeting.domain.events import (
    Interaction,
    InteractionKind,
    build_payload,
    events_for,
    request_body,
)
from retargeting.domain.pixel import PixelState
from retargeting.graph.client import Accepted, GraphClient, GraphTimeouts
from tests.fakes.graph_faults import chaos_faults
from tests.fakes.graph_stand_in import Fault, GraphStandIn, ReceivedEvent, random_faults

TOKEN = "EAAintegrationToken0123456789abcdef"
PIXEL = "1234567890"
VERSION = "v25.0"
CLIENT_TIMEOUT = 0.5
ROOT = Path(__file__).resolve().parents[3]

Event = dict[str, Any]


def interaction(**overrides: Any) -> Interaction:
    values: dict[str, Any] = {
        "kind": InteractionKind.CALL_STARTED,
        "organization_id": "org-1",
        "visitor_id": "visitor-1",
        "page_url": "https://shop.example/pricing",
        "client_ip_address": "203.0.113.7",
        "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        "event_time": int(time.time()) - 5,
        "fbp": "fb.1.1596403881668.1116446470",
        "fbc": "fb.1.1554763741205.AbCdEfGhIjKlMnOp",
        "call_id": "call-1",
    }
    return Interaction(**{**values, **overrides})


def event(event_id: str = "evt-1", **overrides: Any) -> Event:
    """A valid website event as `domain.events` builds it; `None` overrides delete the key."""
    payload = build_payload(interaction(), "Lead", event_id)
    user_data = overrides.pop("user_data", {})
    if user_data is not None:
        overrides["user_data"] = without_nones({**payload["user_data"], **user_data})
    return without_nones({**payload, **overrides, "user_data": overrides.get("user_data")})


def without_nones(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def body(*events: Event, token: str = TOKEN, test_event_code: str = "") -> bytes:
    return request_body([orjson.dumps(e) for e in events], token, test_event_code)


@pytest.fixture(scope="module")
def stand_in() -> Iterator[GraphStandIn]:
    with GraphStandIn(valid_tokens={TOKEN}, known_pixels={PIXEL}) as graph:
        yield graph


@pytest.fixture
def graph(stand_in: GraphStandIn) -> Iterator[GraphStandIn]:
    stand_in.reset()
    stand_in.set_valid_tokens({TOKEN})
    yield stand_in
    assert stand_in.violations == []
    assert all(TOKEN not in request.url for request in stand_in.requests)


@pytest.fixture
async def client(graph: GraphStandIn) -> AsyncIterator[GraphClient]:
    timeouts = GraphTimeouts.from_total(CLIENT_TIMEOUT)
    async with GraphClient(graph.url, VERSION, timeouts) as client:
        yield client


async def test_valid_batch_is_accepted_and_recorded(
    graph: GraphStandIn, client: GraphClient
) -> None:
    queued = events_for(interaction(), PixelState.ACTIVE, org_enabled=True)
    payload = request_body([q.payload for q in queued], TOKEN, "TEST42")
    result = await client.send(PIXEL, payload)
    assert isinstance(result, Accepted)
    assert result.events_received == 3
    assert result.fbtrace_id
    assert graph.wait_for(3, timeout=1)
    assert graph.received == [
        ReceivedEvent(PIXEL, "TEST42", orjson.loads(q.payload)) for q in queued
    ]
    assert graph.received_ids() == {(q.event_name, "gn_call_call-1"): 1 for q in queued}
    (request,) = graph.requests
    assert (request.pixel_id, request.events, request.status) == (PIXEL, 3, 200)
    assert request.url == f"/{VERSION}/{PIXEL}/events"


async def test_a_full_batch_of_a_thousand_events_is_accepted(
    graph: GraphStandIn, client: GraphClient
) -> None:
    events = [event(f"evt-{i}") for i in range(1000)]
    result = await client.send(PIXEL, body(*events))
    assert isinstance(result, Accepted)
    assert result.events_received == 1000
    assert len(graph.received_ids()) == 1000


Mutation = Callable[[], list[Event]]
OLD = int(time.time()) - 8 * 24 * 3600


@pytest.mark.parametrize(
    ("events", "subcode", "fragment"),
    [
        pytest.param(lambda: [], None, "data", id="no-events"),
        pytest.param(lambda: [event(f"e{i}") for i in range(1001)], None, "1000", id="too-many"),
        pytest.param(
            lambda: [event(), event(event_time=OLD)], 2804003, "data[1]: event_time", id="too-old"
        ),
        pytest.param(
            lambda: [event(event_time=int(time.time()) + 600)], 2804019, "future", id="future"
        ),
        pytest.param(
            lambda: [event(event_time="1700000000")], 2804019, "event_time", id="str-time"
        ),
        pytest.param(lambda: [event(event_name="")], 2804019, "event_name", id="no-name"),
        pytest.param(lambda: [event(action_source="web")], 2804019, "action_source", id="source"),
        pytest.param(lambda: [event(action_source=None)], 2804019, "action_source", id="no-source"),
        pytest.param(
            lambda: [event(event_source_url=None)], 2804019, "event_source_url", id="no-url"
        ),
        pytest.param(
            lambda: [event(event_source_url="/pricing")], 2804019, "event_source_url", id="rel-url"
        ),
        pytest.param(
            lambda: [event(user_data={"client_user_agent": None})],
            2804019,
            "client_user_agent",
            id="no-user-agent",
        ),
        pytest.param(lambda: [event(user_data=None)], 2804019, "user_data", id="no-user-data"),
        pytest.param(
            lambda: [
                {
                    **event(action_source="system_generated"),
                    "user_data": {"client_ip_address": "203.0.113.7"},
                }
            ],
            2804050,
            "customer information",
            id="no-customer-info",
        ),
        pytest.param(
            lambda: [event(user_data={"external_id": "visitor-1"})],
            2804019,
            "external_id",
            id="unhashed-external-id",
        ),
        pytest.param(
            lambda: [event(user_data={"external_id": ["A" * 64]})],
            2804019,
            "external_id",
            id="uppercase-hash",
        ),
        pytest.param(
            lambda: [event(user_data={"client_ip_address": "300.1.1.1"})],
            2804019,
            "client_ip_address",
            id="bad-ip",
        ),
        pytest.param(
            lambda: [event(user_data={"fbp": "1596403881668.1116446470"})],
            2804019,
            "fbp",
            id="bad-fbp",
        ),
        pytest.param(
            lambda: [event(user_data={"fbc": "fb.x.1.abc"})], 2804019, "fbc", id="bad-fbc"
        ),
        pytest.param(lambda: [event(event_id=42)], 2804019, "event_id", id="numeric-event-id"),
        pytest.param(lambda: [event(custom_data=[1])], 2804019, "custom_data", id="custom-data"),
    ],
)
async def test_an_invalid_event_rejects_the_whole_request(
    graph: GraphStandIn,
    client: GraphClient,
    events: Mutation,
    subcode: int | None,
    fragment: str,
) -> None:
    result = await client.send(PIXEL, body(*events()))
    assert isinstance(result, GraphError)
    assert (result.code, result.error_subcode, result.http_status) == (100, subcode, 400)
    assert fragment in (result.error_user_msg or result.message)
    assert classify(result) is Disposition.INVALID
    assert graph.received == []


async def test_valid_variants_are_accepted(graph: GraphStandIn, client: GraphClient) -> None:
    variants = [
        event("a", user_data={"external_id": ["a" * 64, "b" * 64], "client_ip_address": "::1"}),
        event("b", user_data={"fbp": None, "fbc": None}, custom_data=None),
        {**event("c", action_source="phone_call", event_source_url=None), "user_data": {"ph": "x"}},
    ]
    result = await client.send(PIXEL, body(*variants))
    assert isinstance(result, Accepted)
    assert result.events_received == 3


async def test_unknown_pixel_pauses_delivery(graph: GraphStandIn, client: GraphClient) -> None:
    result = await client.send("999", body(event()))
    assert isinstance(result, GraphError)
    assert (result.code, result.error_subcode, result.type) == (100, 33, "GraphMethodException")
    assert classify(result) is Disposition.PAUSE


@pytest.mark.parametrize("token", ["EAAwrongToken", ""])
async def test_a_bad_or_missing_token_pauses_delivery(client: GraphClient, token: str) -> None:
    result = await client.send(PIXEL, body(event(), token=token))
    assert isinstance(result, GraphError)
    assert (result.code, result.type) == (190, "OAuthException")
    assert classify(result) is Disposition.PAUSE


async def test_tokens_can_change_at_runtime(graph: GraphStandIn, client: GraphClient) -> None:
    graph.set_valid_tokens({"EAAnewToken"})
    old = await client.send(PIXEL, body(event()))
    new = await client.send(PIXEL, body(event(), token="EAAnewToken"))
    assert isinstance(old, GraphError)
    assert old.code == 190
    assert isinstance(new, Accepted)


async def test_a_form_encoded_body_is_accepted_like_meta_does(graph: GraphStandIn) -> None:
    form = {"data": orjson.dumps([event()]).decode(), "access_token": TOKEN}
    async with httpx.AsyncClient(base_url=graph.url) as http:
        answer = await http.post(f"/{VERSION}/{PIXEL}/events", data=form)
    assert answer.status_code == 200
    assert answer.json()["events_received"] == 1


async def test_a_token_in_the_url_is_recorded_as_a_violation(stand_in: GraphStandIn) -> None:
    stand_in.reset()
    async with httpx.AsyncClient(base_url=stand_in.url) as http:
        answer = await http.post(
            f"/{VERSION}/{PIXEL}/events",
            params={"access_token": TOKEN},
            content=body(event()),
            headers={"Content-Type": "application/json"},
        )
    assert answer.status_code == 200  # Meta tolerates it; our client must never do it
    assert stand_in.violations == [f"access_token in the URL query of /{VERSION}/{PIXEL}/events"]
    stand_in.reset()


async def test_the_official_sdks_request_shape_is_accepted(stand_in: GraphStandIn) -> None:
    """The SDK sends the token in the query and each event as a JSON string; Meta takes both."""
    stand_in.reset()
    form = {"data": orjson.dumps([orjson.dumps(event()).decode()]).decode()}
    async with httpx.AsyncClient(base_url=stand_in.url) as http:
        answer = await http.post(
            f"/{VERSION}/{PIXEL}/events", params={"access_token": TOKEN}, data=form
        )
        refused = await http.post(f"/{VERSION}/{PIXEL}/events", data=form)
    assert answer.status_code == 200, answer.text
    assert answer.json()["events_received"] == 1
    assert refused.status_code == 400  # no token anywhere
    assert stand_in.violations[0].startswith("access_token in the URL query")
    stand_in.reset()


@pytest.mark.parametrize("path", ["/v25/1234567890/events", "/v25.0/me/adaccounts"])
async def test_unknown_paths_answer_like_meta(graph: GraphStandIn, path: str) -> None:
    async with httpx.AsyncClient(base_url=graph.url) as http:
        answer = await http.post(path, json={"access_token": TOKEN, "data": [event()]})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == 2500


async def test_poisoned_events_reject_their_request(
    graph: GraphStandIn, client: GraphClient
) -> None:
    graph.reject_events_where(lambda e: e.get("event_id") == "poison", "bad luck")
    clean = await client.send(PIXEL, body(event("ok-1")))
    poisoned = await client.send(PIXEL, body(event("ok-2"), event("poison")))
    assert isinstance(clean, Accepted)
    assert isinstance(poisoned, GraphError)
    assert (poisoned.code, poisoned.error_subcode) == (100, 2804019)
    assert poisoned.error_user_msg == "data[1]: bad luck"
    assert classify(poisoned) is Disposition.INVALID
    assert set(graph.received_ids()) == {("Lead", "ok-1")}


@pytest.mark.parametrize(
    ("fault", "code", "status", "disposition"),
    [
        pytest.param(Fault.server_error(), None, 500, Disposition.RETRY, id="500-html"),
        pytest.param(Fault.server_error(503, json_body=True), 2, 503, Disposition.RETRY, id="503"),
        pytest.param(Fault.rate_limit(), 17, 400, Disposition.RATE_LIMITED, id="rate-17"),
        pytest.param(Fault.rate_limit(4), 4, 400, Disposition.RATE_LIMITED, id="rate-4"),
        pytest.param(Fault.rate_limit(613), 613, 400, Disposition.RATE_LIMITED, id="rate-613"),
        pytest.param(Fault.rate_limit(80000), 80000, 400, Disposition.RATE_LIMITED, id="rate-8e4"),
        pytest.param(Fault.error(190), 190, 400, Disposition.PAUSE, id="token"),
        pytest.param(Fault.error(10, status=403), 10, 403, Disposition.PAUSE, id="permission"),
        pytest.param(Fault.timeout(2.0), None, None, Disposition.RETRY, id="timeout"),
    ],
)
async def test_each_fault_becomes_the_expected_error(
    graph: GraphStandIn,
    client: GraphClient,
    fault: Fault,
    code: int | None,
    status: int | None,
    disposition: Disposition,
) -> None:
    graph.enqueue_faults(fault)
    failed = await client.send(PIXEL, body(event()))
    after = await client.send(PIXEL, body(event()))
    assert isinstance(failed, GraphError)
    assert (failed.code, failed.http_status) == (code, status)
    assert classify(failed) is disposition
    assert isinstance(after, Accepted), "a fault is consumed by one request"
    assert graph.wait_for(1, timeout=1)
    assert len(graph.received) == 1


async def test_a_timeout_after_meta_got_the_events_shows_as_a_duplicate(
    graph: GraphStandIn, client: GraphClient
) -> None:
    graph.enqueue_faults(Fault.timeout(CLIENT_TIMEOUT + 0.2, deliver=True))
    first = await client.send(PIXEL, body(event("dup")))
    again = await client.send(PIXEL, body(event("dup")))
    assert isinstance(first, GraphError)
    assert first.message == f"timed out after {CLIENT_TIMEOUT}s"
    assert isinstance(again, Accepted)
    assert graph.wait_for(2, timeout=2)
    assert graph.received_ids() == {("Lead", "dup"): 2}


async def test_faults_are_consumed_in_order(graph: GraphStandIn, client: GraphClient) -> None:
    graph.enqueue_faults(Fault.server_error(), Fault.rate_limit(), Fault.error(190))
    codes = []
    for _ in range(4):
        result = await client.send(PIXEL, body(event()))
        codes.append(result.code if isinstance(result, GraphError) else "ok")
    assert codes == [None, 17, 190, "ok"]
    assert [r.fault for r in graph.requests] == ["server_error", "rate_limit", "error", None]


async def test_a_fault_mode_fails_requests_until_cleared(
    graph: GraphStandIn, client: GraphClient
) -> None:
    graph.set_fault_mode(lambda: Fault.rate_limit(613))
    failed = [await client.send(PIXEL, body(event())) for _ in range(3)]
    graph.set_fault_mode(None)
    assert all(isinstance(r, GraphError) and r.code == 613 for r in failed)
    assert isinstance(await client.send(PIXEL, body(event())), Accepted)


def test_random_faults_are_seeded_and_roughly_at_the_rate() -> None:
    first, second = random_faults(0.2, seed=7), random_faults(0.2, seed=7)
    picks = [first() for _ in range(2000)]
    assert picks == [second() for _ in range(2000)]
    failures = [f for f in picks if f is not None]
    assert 300 < len(failures) < 500
    assert {f.kind for f in failures} == {"server_error", "timeout", "rate_limit"}


def test_chaos_faults_mix_every_transient_failure() -> None:
    chooser = chaos_faults(0.25, seed=3)
    picks = [fault for _ in range(4000) if (fault := chooser()) is not None]
    assert 800 < len(picks) < 1200
    assert {f.kind for f in picks} == {"server_error", "timeout", "rate_limit", "slow"}
    assert {f.status for f in picks if f.kind == "server_error"} == {500, 502, 503}
    assert {f.answer.code for f in picks if f.kind == "rate_limit" and f.answer} == {4, 17, 613}
    assert all(f.deliver for f in picks if f.kind == "slow")


async def test_a_slow_answer_still_delivers(graph: GraphStandIn, client: GraphClient) -> None:
    graph.enqueue_faults(Fault.slow(0.3))
    started = time.monotonic()
    assert isinstance(await client.send(PIXEL, body(event())), Accepted)
    assert time.monotonic() - started >= 0.3
    assert [r.fault for r in graph.requests] == ["slow"]
    assert sum(graph.received_ids().values()) == 1


def test_received_ids_are_kept_without_the_events() -> None:
    with GraphStandIn(valid_tokens={TOKEN}, keep_events=False) as graph:
        answer = httpx.post(
            f"{graph.url}/{VERSION}/{PIXEL}/events",
            content=body(event(event_id="e-1"), event(event_id="e-1")),
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code == 200, answer.text
        assert graph.received == []
        assert graph.received_ids() == {("Lead", "e-1"): 2}


async def test_latency_is_added_to_every_answer() -> None:
    with GraphStandIn(valid_tokens={TOKEN}, latency_seconds=0.2) as graph:
        async with GraphClient(graph.url, VERSION, GraphTimeouts.from_total()) as client:
            started = time.monotonic()
            result = await client.send(PIXEL, body(event()))
            elapsed = time.monotonic() - started
        assert isinstance(result, Accepted), "any all-digit pixel is known by default"
        assert elapsed >= 0.2
        assert graph.requests[0].duration >= 0.2


async def test_the_client_reuses_one_kept_alive_connection(
    graph: GraphStandIn, client: GraphClient
) -> None:
    for index in range(5):
        assert isinstance(await client.send(PIXEL, body(event(f"e{index}"))), Accepted)
    assert len({request.peer for request in graph.requests}) == 1


def test_wait_for_gives_up_after_its_timeout(graph: GraphStandIn) -> None:
    started = time.monotonic()
    assert graph.wait_for(1, timeout=0.05) is False
    assert time.monotonic() - started < 1
    assert graph.wait_for(0, timeout=0) is True


async def test_control_endpoints_report_and_reset(graph: GraphStandIn, client: GraphClient) -> None:
    graph.enqueue_faults(Fault.server_error())
    await client.send(PIXEL, body(event()))
    await client.send(PIXEL, body(event("a"), event("b")))
    async with httpx.AsyncClient(base_url=graph.url) as http:
        stats = (await http.get("/_stand_in/stats")).json()
        reset = await http.post("/_stand_in/reset")
        after = (await http.get("/_stand_in/stats")).json()
    assert stats == {
        "requests": 2,
        "events_received": 2,
        "by_status": {"200": 1, "500": 1},
        "violations": 0,
        "faults_queued": 0,
    }
    assert reset.status_code == 200
    assert after["requests"] == after["events_received"] == 0
    assert graph.received == []


def test_runs_as_a_subprocess_for_benchmarks() -> None:
    command = [sys.executable, "-m", "tests.fakes.graph_stand_in", "--token", TOKEN]
    command += ["--pixel", PIXEL, "--latency-ms", "5", "--keep-events"]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:")
            result = asyncio.run(send_once(url, body(event("a"), event("b"))))
            assert isinstance(result, Accepted)
            assert httpx.get(f"{url}/_stand_in/stats").json()["events_received"] == 2
        finally:
            process.terminate()
            assert process.wait(timeout=10) == 0


async def send_once(url: str, payload: bytes) -> Accepted | GraphError:
    async with GraphClient(url, VERSION, GraphTimeouts.from_total()) as client:
        return await client.send(PIXEL, payload)
