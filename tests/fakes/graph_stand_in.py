"""A real HTTP server standing in for graph.facebook.com in integration tests and benchmarks.

A fake over a mock: the client under test speaks real HTTP/1.1 to a real socket, so connection
pooling, timeouts and body encoding are exercised as in production. The server validates each
request by Meta's documented rules (`graph_rules`), answers with Meta-shaped JSON, records what it
accepted, and can be scripted to fail: one fault per request from a queue, or a seeded random mix.

    with GraphStandIn(valid_tokens={"tok"}, known_pixels={"123"}) as graph:
        client = GraphClient(graph.url, "v25.0", GraphTimeouts.from_total(1.5))
        ...
        assert graph.wait_for(3, timeout=5)

Run it alone for benchmarks: `python -m tests.fakes.graph_stand_in --port 8765 --token T`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import re
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterable
from types import FrameType, TracebackType
from typing import Any, Self

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes import graph_rules
from tests.fakes.graph_faults import Fault, FaultKind, random_faults
from tests.fakes.graph_rules import MetaError

API_VERSION_PATTERN = r"v\d+\.\d+"
START_TIMEOUT_SECONDS = 10.0
SHUTDOWN_GRACE_SECONDS = 1  # then requests still sleeping in a timeout fault are cancelled


@dataclasses.dataclass(frozen=True, slots=True)
class ReceivedEvent:
    pixel_id: str
    test_event_code: str | None
    event: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    pixel_id: str
    events: int  # how many events the body held (0 when it could not be parsed)
    status: int
    error_code: int | None
    error_subcode: int | None
    fault: FaultKind | None
    duration: float  # seconds, as the stand-in measured it
    peer: str  # the client's host:port, so tests can see connections being reused

    @property
    def url(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


@dataclasses.dataclass(frozen=True, slots=True)
class _Rejection:
    predicate: Callable[[dict[str, Any]], bool]
    message: str
    subcode: int


class GraphStandIn:
    """Meta's Graph API on 127.0.0.1: validates, records, and fails on request. Thread-safe."""

    def __init__(
        self,
        valid_tokens: Iterable[str] = (),
        known_pixels: Iterable[str] | None = None,
        *,
        latency_seconds: float = 0.0,
        api_version_pattern: str = API_VERSION_PATTERN,
        host: str = "127.0.0.1",
        port: int = 0,
        keep_events: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.latency_seconds = latency_seconds
        self._version = re.compile(api_version_pattern)
        self._host, self._port = host, port
        self._keep_events = keep_events  # benchmarks turn this off to keep memory flat
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = frozenset(valid_tokens)
        self._pixels = None if known_pixels is None else frozenset(known_pixels)
        self._faults: collections.deque[Fault] = collections.deque()
        self._fault_mode: Callable[[], Fault | None] | None = None
        self._rejections: list[_Rejection] = []
        self._received: list[ReceivedEvent] = []
        self._received_ids: collections.Counter[tuple[str, str | None]] = collections.Counter()
        self._requests: list[RecordedRequest] = []
        self._violations: list[str] = []
        self._by_status: collections.Counter[int] = collections.Counter()
        self._events_total = 0
        self._generation = 0  # bumped by reset() so stalled requests cannot leak across tests
        self._stopping = asyncio.Event()  # wakes stalled requests so shutdown is quick
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.app = Starlette(
            routes=[
                Route("/_stand_in/stats", self._stats_endpoint, methods=["GET"]),
                Route("/_stand_in/reset", self._reset_endpoint, methods=["POST"]),
                Route("/{version}/{pixel_id}/events", self._events_endpoint, methods=["POST"]),
                Route("/{path:path}", self._unknown_endpoint, methods=["GET", "POST"]),
            ]
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Self:
        config = uvicorn.Config(
            self.app,
            host=self._host,
            port=self._port,
            log_config=None,  # leave the process's logging alone; records reach the root logger
            log_level=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        )
        server = uvicorn.Server(config)
        self._stopping = asyncio.Event()
        thread = threading.Thread(target=server.run, name="graph-stand-in", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the Graph stand-in did not start")
            time.sleep(0.005)
        port = server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://{self._host}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            if self._loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop already ended
                    self._loop.call_soon_threadsafe(self._stopping.set)
            self._server.should_exit = True
            self._thread.join(timeout=START_TIMEOUT_SECONDS + SHUTDOWN_GRACE_SECONDS)
        self._server = self._thread = self._loop = None

    # -- scripting ---------------------------------------------------------------------------

    def enqueue_faults(self, *faults: Fault) -> None:
        """The next requests meet these faults, one per request, in order."""
        with self._lock:
            self._faults.extend(faults)

    def set_fault_mode(self, chooser: Callable[[], Fault | None] | None) -> None:
        """Consulted for each request once the queue is empty, e.g. `random_faults(0.1)`."""
        with self._lock:
            self._fault_mode = chooser

    def set_valid_tokens(self, tokens: Iterable[str]) -> None:
        with self._lock:
            self._tokens = frozenset(tokens)

    def reject_events_where(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        message: str = "the stand-in was told to reject this event",
        *,
        subcode: int = graph_rules.SUBCODE_INVALID_EVENT,
    ) -> None:
        """A request holding any matching event fails with code 100, as if that event were bad."""
        with self._lock:
            self._rejections.append(_Rejection(predicate, message, subcode))

    def reset(self) -> None:
        """Forget recordings, queued faults, fault mode and rejections; keep tokens and pixels."""
        with self._lock:
            self._faults.clear()
            self._fault_mode = None
            self._rejections.clear()
            self._received.clear()
            self._received_ids.clear()
            self._requests.clear()
            self._violations.clear()
            self._by_status.clear()
            self._events_total = 0
            self._generation += 1

    # -- recordings --------------------------------------------------------------------------

    @property
    def received(self) -> list[ReceivedEvent]:
        with self._lock:
            return list(self._received)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def violations(self) -> list[str]:
        """Breaches of Meta's advice that Meta itself would tolerate, e.g. a token in the URL."""
        with self._lock:
            return list(self._violations)

    def received_ids(self) -> collections.Counter[tuple[str, str | None]]:
        """How often each (event_name, event_id) arrived: Meta's deduplication key.

        Kept even with `keep_events=False`, so a soak of 100,000s of events stays small.
        """
        with self._lock:
            return collections.Counter(self._received_ids)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": sum(self._by_status.values()),
                "events_received": self._events_total,
                "by_status": {str(k): v for k, v in sorted(self._by_status.items())},
                "violations": len(self._violations),
                "faults_queued": len(self._faults),
            }

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least `count` events were accepted; False on timeout.

        From a test whose code under test runs on the same event loop, keep the loop free:
        `await asyncio.to_thread(graph.wait_for, 3, 5.0)`.
        """
        deadline = time.monotonic() + timeout
        while self._accepted_count() < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _accepted_count(self) -> int:
        with self._lock:
            return self._events_total

    # -- HTTP --------------------------------------------------------------------------------

    async def _events_endpoint(self, request: Request) -> Response:
        started = time.monotonic()
        generation = self._generation
        raw = await request.body()
        fault = self._take_fault(request)
        if self.latency_seconds:
            await _sleep_until(started + self.latency_seconds)
        if fault is not None and fault.kind in ("timeout", "slow"):
            await self._stall(fault.seconds)
        pixel_id = request.path_params["pixel_id"]
        events: list[Any] = []
        test_event_code: str | None = None
        if fault is not None and not fault.deliver:
            answer, status = fault.answer, fault.status
        else:
            params = graph_rules.parse_body(request.headers.get("content-type", ""), raw)
            answer = params if isinstance(params, MetaError) else None
            if isinstance(params, dict):
                data, code = params.get("data"), params.get("test_event_code")
                events = graph_rules.decoded_events(data) if isinstance(data, list) else []
                params["data"] = events if isinstance(data, list) else data
                test_event_code = code if isinstance(code, str) and code else None
                params.setdefault("access_token", request.query_params.get("access_token"))
                answer = self._check(request.path_params["version"], pixel_id, params, events)
            status = 200 if answer is None else answer.status
        trace = secrets.token_urlsafe(12)
        with self._lock:
            if generation != self._generation:  # began before a reset: belongs to another test
                return Response(b"", 503)
            if status == 200:
                self._events_total += len(events)
                self._received_ids.update((e["event_name"], e.get("event_id")) for e in events)
                if self._keep_events:
                    self._received.extend(
                        ReceivedEvent(pixel_id, test_event_code, e) for e in events
                    )
            self._by_status[status] += 1
            self._requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.url.path,
                    query=request.url.query,
                    pixel_id=pixel_id,
                    events=len(events),
                    status=status,
                    error_code=answer.code if answer else None,
                    error_subcode=answer.error_subcode if answer else None,
                    fault=fault.kind if fault else None,
                    duration=time.monotonic() - started,
                    peer=f"{request.client.host}:{request.client.port}" if request.client else "",
                )
            )
        if answer is not None:
            return Response(answer.to_json(trace), answer.status, media_type="application/json")
        if status != 200:
            return Response(b"<html><body><h1>Server Error</h1></body></html>", status)
        success = {"events_received": len(events), "messages": [], "fbtrace_id": trace}
        return Response(orjson.dumps(success), media_type="application/json")

    async def _stall(self, seconds: float) -> None:
        """Sleep like a hung server, but wake at once when the stand-in stops."""
        self._loop = asyncio.get_running_loop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _take_fault(self, request: Request) -> Fault | None:
        self._note_token_in_query(request)
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            return self._fault_mode() if self._fault_mode is not None else None

    def _check(
        self, version: str, pixel_id: str, params: dict[str, Any], events: list[Any]
    ) -> MetaError | None:
        """Meta's order: path, then token, then the object, then the payload."""
        if not self._version.fullmatch(version):
            return graph_rules.unknown_path(f"/{version}/{pixel_id}/events")
        token = params.get("access_token")
        with self._lock:
            tokens, pixels, rejections = self._tokens, self._pixels, list(self._rejections)
        if not isinstance(token, str) or token not in tokens:
            return graph_rules.bad_token(present=bool(token))
        if not pixel_id.isdigit() or (pixels is not None and pixel_id not in pixels):
            return graph_rules.unknown_pixel(pixel_id)
        problem = graph_rules.data_problem(params.get("data"))
        if problem is not None:
            return problem
        now = self._clock()
        for index, event in enumerate(events):
            problem = graph_rules.event_problem(index, event, now)
            if problem is not None:
                return problem
            for rule in rejections:
                if rule.predicate(event):
                    return graph_rules.invalid(f"data[{index}]: {rule.message}", rule.subcode)
        return None

    def _note_token_in_query(self, request: Request) -> None:
        if "access_token" in request.query_params:
            with self._lock:
                self._violations.append(f"access_token in the URL query of {request.url.path}")

    async def _unknown_endpoint(self, request: Request) -> Response:
        self._note_token_in_query(request)
        answer = graph_rules.unknown_path(request.url.path)
        return Response(
            answer.to_json(secrets.token_urlsafe(12)), 400, media_type="application/json"
        )

    async def _stats_endpoint(self, request: Request) -> Response:
        return Response(orjson.dumps(self.stats()), media_type="application/json")

    async def _reset_endpoint(self, request: Request) -> Response:
        self.reset()
        return Response(orjson.dumps({"reset": True}), media_type="application/json")


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGINT or SIGTERM; prints the base URL on the first line of stdout."""
    parser = argparse.ArgumentParser(description="A local stand-in for Meta's Graph API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--token", action="append", default=[], help="an accepted access token")
    parser.add_argument("--pixel", action="append", default=None, help="a known pixel id")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-events", action="store_true", help="record every event")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    graph = GraphStandIn(
        args.token,
        args.pixel,
        latency_seconds=args.latency_ms / 1000,
        host=args.host,
        port=args.port,
        keep_events=args.keep_events,
    )
    with graph:
        if args.fault_rate:
            graph.set_fault_mode(random_faults(args.fault_rate, seed=args.seed))
        print(graph.url, flush=True)
        while not stop.wait(0.5):
            pass


async def _sleep_until(deadline: float) -> None:
    """Until time.monotonic() reaches `deadline`: the event loop's timers may fire up to a
    millisecond early by this clock (libuv keeps its own, coarser time), and a latency the
    stand-in promises is a floor."""
    while (remaining := deadline - time.monotonic()) > 0:  # noqa: ASYNC110 (a clock, no event)
        await asyncio.sleep(remaining)


if __name__ == "__main__":
    main()
