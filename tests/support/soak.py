"""The chaos soak's traffic: a deterministic stream of interactions, the Conversions API events it
must produce, and the platform-server clients that push it through the HTTP API.

The clients behave as a careful platform server does: keep-alive connections, the same request
sent again after a refused connection, a dropped connection or a 503, and explicit `event_time`s
so that a re-sent widget view keeps its event_id. A second kind of client sends hostile requests
the whole time; none of them may change anything.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import orjson

from retargeting.domain.events import Interaction, InteractionKind, derive_event_id, event_names
from retargeting.domain.pixel import PixelState

ORG_COUNT = 50
BATCH_ITEMS = 500
SINGLE_EVERY = 50  # one chunk in 50 goes out as single-event requests instead of one batch
WIDGET_VIEW_PATH = "/api/v1/events/widget-view"
CALL_STARTED_PATH = "/api/v1/events/call-started"
BATCH_PATH = "/api/v1/events/batch"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Soak/1.0"
REQUEST_TIMEOUT_SECONDS = 30.0

EventKey = tuple[str, str]  # (event_name, event_id): Meta's deduplication key


def org_id(index: int) -> str:
    return f"soak-org-{index}"


def is_b2b(index: int) -> bool:
    """One organization in three has GreetNow retargeting enabled."""
    return index % 3 == 0


@dataclasses.dataclass(frozen=True, slots=True)
class IngestRequest:
    path: str
    body: bytes
    interactions: int
    events: int  # Conversions API events it queues


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    requests: list[IngestRequest]
    expected: frozenset[EventKey]
    interactions: int


def _interaction(i: int, run: str, now: int) -> tuple[dict[str, object], Interaction]:
    org_index = i % ORG_COUNT
    call = i % 5 == 0
    body: dict[str, object] = {
        "organization_id": org_id(org_index),
        "visitor_id": f"{run}-visitor-{i}",
        "page_url": f"https://customer{org_index}.example/page/{i % 97}?ref=soak",
        "client_ip_address": f"2001:db8::{i % 65536:x}" if i % 4 == 0 else f"198.51.100.{i % 256}",
        "client_user_agent": USER_AGENT,
        "event_time": now - i % 3600,
    }
    if i % 3 == 0:
        body["fbp"] = f"fb.1.{1596403881668 + i}.{1116446470 + i}"
    if i % 11 == 0:
        body["fbc"] = f"fb.1.{1554763741205 + i}.IwAR2F4soak{i}"
    if i % 7 == 0:
        body["event_id"] = f"{run}-event-{i}"
    if call:
        body["call_id"] = f"{run}-call-{i}"
    interaction = Interaction(
        kind=InteractionKind.CALL_STARTED if call else InteractionKind.WIDGET_VIEW,
        organization_id=org_id(org_index),
        visitor_id=str(body["visitor_id"]),
        page_url=str(body["page_url"]),
        client_ip_address=str(body["client_ip_address"]),
        client_user_agent=USER_AGENT,
        event_time=now - i % 3600,
        event_id=f"{run}-event-{i}" if i % 7 == 0 else None,
        call_id=f"{run}-call-{i}" if call else None,
    )
    return body, interaction


def build_plan(count: int, *, run: str, now: int) -> Plan:
    """`count` interactions over ORG_COUNT organizations, as batch and single-event requests."""
    requests: list[IngestRequest] = []
    expected: set[EventKey] = set()
    for chunk_number, start in enumerate(range(0, count, BATCH_ITEMS)):
        items: list[tuple[dict[str, object], Interaction]] = []
        for i in range(start, min(start + BATCH_ITEMS, count)):
            body, interaction = _interaction(i, run, now)
            event_id = derive_event_id(interaction)
            names = event_names(interaction.kind, PixelState.ACTIVE, is_b2b(i % ORG_COUNT))
            expected.update((name, event_id) for name in names)
            items.append((body, interaction))
        requests.extend(_requests_for(items, single=chunk_number % SINGLE_EVERY == 1))
    return Plan(requests, frozenset(expected), count)


def _requests_for(
    items: list[tuple[dict[str, object], Interaction]], *, single: bool
) -> Iterator[IngestRequest]:
    def events(interaction: Interaction) -> int:
        org_index = int(interaction.organization_id.rsplit("-", 1)[1])
        return len(event_names(interaction.kind, PixelState.ACTIVE, is_b2b(org_index)))

    if single:
        for body, interaction in items:
            call = interaction.kind is InteractionKind.CALL_STARTED
            path = CALL_STARTED_PATH if call else WIDGET_VIEW_PATH
            yield IngestRequest(path, orjson.dumps(body), 1, events(interaction))
        return
    batch = [{"type": interaction.kind.value, **body} for body, interaction in items]
    yield IngestRequest(
        BATCH_PATH,
        orjson.dumps({"events": batch}),
        len(items),
        sum(events(interaction) for _, interaction in items),
    )


@dataclasses.dataclass
class IngestStats:
    accepted_requests: int = 0
    accepted_interactions: int = 0
    refused_connections: int = 0  # never reached the server: safe to send again
    dropped: int = 0  # sent, then the connection died: the server may have recorded it
    dropped_events: int = 0  # events of those requests: the most a re-send can duplicate
    server_errors: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    unexpected: list[str] = dataclasses.field(default_factory=list)


class IngestClients:
    """Threads sending a plan's requests, each again until the server accepts it."""

    def __init__(self, base_url: str, api_key: str, plan: Plan, *, threads: int = 4) -> None:
        self._base_url = base_url
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._queue = collections.deque(plan.requests)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.stats = IngestStats()
        self._threads = [
            threading.Thread(target=self._run, name=f"soak-client-{n}", daemon=True)
            for n in range(threads)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float) -> bool:
        """True once every request was accepted (or refused for good)."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def stop(self) -> None:
        self._stop.set()

    def _next(self) -> IngestRequest | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _run(self) -> None:
        with httpx.Client(base_url=self._base_url, timeout=REQUEST_TIMEOUT_SECONDS) as client:
            while not self._stop.is_set() and (request := self._next()) is not None:
                self._deliver(client, request)

    def _deliver(self, client: httpx.Client, request: IngestRequest) -> None:
        pause = 0.05
        while not self._stop.is_set():
            try:
                answer = client.post(request.path, content=request.body, headers=self._headers)
            except httpx.ConnectError:
                with self._lock:
                    self.stats.refused_connections += 1
            except httpx.TransportError:
                with self._lock:
                    self.stats.dropped += 1
                    self.stats.dropped_events += request.events
            else:
                if answer.status_code == 202:
                    with self._lock:
                        self.stats.accepted_requests += 1
                        self.stats.accepted_interactions += request.interactions
                    return
                with self._lock:
                    if answer.status_code >= 500:
                        self.stats.server_errors[answer.status_code] += 1
                    if answer.status_code != 503:
                        self.stats.unexpected.append(f"{answer.status_code} {answer.text[:300]}")
                if answer.status_code < 500:
                    return  # a good request refused: the test fails on `unexpected`
                pause = float(answer.headers.get("retry-after", pause))
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


@dataclasses.dataclass(frozen=True, slots=True)
class BadRequest:
    what: str
    path: str
    body: bytes
    status: int  # the clear 4xx it must get
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


def bad_requests(now: int) -> list[BadRequest]:
    """Hostile or broken requests, one of each kind; none may record anything."""

    def view(**fields: object) -> bytes:
        body: dict[str, object] = {
            "organization_id": org_id(0),
            "visitor_id": "bad-visitor",
            "page_url": "https://customer0.example/",
            "client_ip_address": "198.51.100.1",
            "client_user_agent": USER_AGENT,
            "event_time": now,
            **fields,
        }
        return orjson.dumps({key: value for key, value in body.items() if value is not None})

    deep = b"[" * 100_000 + b"]" * 100_000
    good_item = orjson.loads(view())
    return [
        BadRequest("malformed IPv4", WIDGET_VIEW_PATH, view(client_ip_address="999.1.1.1"), 422),
        BadRequest("IPv6 zone", WIDGET_VIEW_PATH, view(client_ip_address="fe80::1%eth0"), 422),
        BadRequest("unknown organization", WIDGET_VIEW_PATH, view(organization_id="nope"), 422),
        BadRequest("SQL in org id", WIDGET_VIEW_PATH, view(organization_id="x';DROP--"), 422),
        BadRequest("malformed fbc", WIDGET_VIEW_PATH, view(fbc="fb.1.abc"), 422),
        BadRequest("malformed fbp", WIDGET_VIEW_PATH, view(fbp="_fbp=1"), 422),
        BadRequest(
            "event_time 8 days old", WIDGET_VIEW_PATH, view(event_time=now - 8 * 86400), 422
        ),
        BadRequest("event_time 1 h ahead", WIDGET_VIEW_PATH, view(event_time=now + 3600), 422),
        BadRequest("event_time as text", WIDGET_VIEW_PATH, view(event_time=str(now)), 422),
        BadRequest("relative page_url", WIDGET_VIEW_PATH, view(page_url="/pricing"), 422),
        BadRequest("<script> page_url", WIDGET_VIEW_PATH, view(page_url="<script>x</script>"), 422),
        BadRequest("misspelt field", WIDGET_VIEW_PATH, view(fcb="fb.1.1.1"), 422),
        BadRequest("missing call_id", CALL_STARTED_PATH, view(), 422),
        BadRequest("invalid UTF-8", WIDGET_VIEW_PATH, b'{"visitor_id": "\xff\xfe"}', 400),
        BadRequest("deep JSON", WIDGET_VIEW_PATH, deep, 400),
        BadRequest("3 MB string", WIDGET_VIEW_PATH, view(visitor_id="v" * 3_000_000), 413),
        BadRequest(
            "batch of 1,001",
            BATCH_PATH,
            orjson.dumps({"events": [{"type": "widget_view", **good_item}] * 1001}),
            422,
        ),
        BadRequest(
            "batch with one bad item",
            BATCH_PATH,
            orjson.dumps(
                {
                    "events": [
                        {"type": "widget_view", **good_item},
                        {"type": "widget_view", **good_item, "client_ip_address": "1.2.3"},
                    ]
                }
            ),
            422,
        ),
        BadRequest("wrong API key", WIDGET_VIEW_PATH, view(), 401, {"Authorization": "Bearer x"}),
        BadRequest("no API key", WIDGET_VIEW_PATH, view(), 401, {"Authorization": ""}),
    ]


@dataclasses.dataclass
class BadInputStats:
    tried: int = 0
    by_status: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    wrong: list[str] = dataclasses.field(default_factory=list)


class BadInputClient:
    """One thread sending the hostile requests in turn until stopped."""

    def __init__(
        self, base_url: str, api_key: str, requests: list[BadRequest], *, pause: float = 0.02
    ) -> None:
        self._base_url = base_url
        self._api_key = api_key
        self._requests = requests
        self._pause = pause
        self._stop = threading.Event()
        self.stats = BadInputStats()
        self._thread = threading.Thread(target=self._run, name="soak-bad-input", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(REQUEST_TIMEOUT_SECONDS)

    def _run(self) -> None:
        with httpx.Client(base_url=self._base_url, timeout=REQUEST_TIMEOUT_SECONDS) as client:
            for request in itertools.cycle(self._requests):
                if self._stop.wait(self._pause):
                    return
                self._try(client, request)

    def _try(self, client: httpx.Client, request: BadRequest) -> None:
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Content-Type": "application/json",
            **request.headers,
        }
        try:
            answer = client.post(request.path, content=request.body, headers=headers)
        except httpx.TransportError:
            return  # the server is down for a kill: not an answer
        if answer.status_code == 503:
            return  # the database is restarting: not an answer to the input
        self.stats.tried += 1
        self.stats.by_status[answer.status_code] += 1
        if answer.status_code != request.status:
            self.stats.wrong.append(f"{request.what}: {answer.status_code} {answer.text[:200]}")


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)
