"""Ingest through HTTP: single events/s at saturation, p99 at a steady 1,000/s, batch events/s.

`retargeting serve --no-worker` on a scratch SQLite file, driven by `bench.load` (keep-alive
HTTP/1.1 from its own process). Afterwards the database must hold exactly one pageview row per
accepted widget view and one outbox row per event those views queue: durable, nothing lost.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
import orjson
from sqlalchemy import func, select

from bench import load
from bench.common import (
    CLI,
    PIXEL_ID,
    ROUNDS,
    TOKEN,
    Figure,
    at_least,
    at_most,
    median_run,
    percentile,
    runs_note,
    scratch_database,
    service_env,
    stand_in,
    stop,
)
from retargeting.db.engine import make_engine
from retargeting.db.tables import outbox_events, widget_pageviews
from retargeting.domain.events import Interaction, InteractionKind, build_payload, request_body
from retargeting.services import credentials

TITLE = "Ingest through HTTP (single events, batches, durable in SQLite)"
LIMITS = """
**What limits these figures.** `serve` is one Python process (uvicorn, one event loop) and runs
here with `--no-worker`, so delivery's CPU does not pollute the ingest figures (the end-to-end
benchmark measures both together), and with `--no-access-log`, as a busy deployment would run
it (the default access log cost another 5-25% of the single-event rate here). Every request is
answered only after the SQLite commit that holds its rows (WAL, synchronous=NORMAL); requests
that arrive together share one commit (`outbox/group_commit.py`). The load generator
(`bench.load`) runs in its own process and each figure prints its CPU share beside serve's:
serve uses one full core at saturation, so these figures are one core's worth of Python. Each
headline is the median of three runs, all three printed: on this VM the same code moved by up
to 30% within an hour (single events 2,600 to 4,100 requests/s), so compare runs of one session.

Three rounds of profiling (py-spy, perf, cProfile on an in-process ASGI loop) moved the figures.
(1) FastAPI's generic per-request machinery cost more than the work (590 us of CPU per widget
view in-process): the event endpoints run on `web/ingest_route.py` (FastAPI's contract and
OpenAPI from the signature, a handler specialised for one key check, one body model and one JSON
answer; 200 us), FastAPI's native telemetry is off, plain URLs and canonical IPv4 addresses are
checked by one regex each (hypothesis checks they agree with the general rules), and
`gc.freeze()` after start-up keeps the collector's full passes off the loaded modules.
(2) The write path: the inserts go to the driver as positional rows (SQLAlchemy's per-row
parameter processing cost 12 us a row, three times SQLite's insert), the counter update is also
the existence check (no SELECT per group), the visitor is hashed once per interaction
(for its row and its payloads), and the content type is
parsed once per spelling (the email parser FastAPI uses cost ~25 us a request). (3) Where the
commit runs: on SQLite a group commits on the event loop, and when the writer is taken the loop
tries again every 0.5 ms between requests (`db.engine.WriterLock`, tried without waiting), so
it never waits on a lock. For a few rows that costs less than the hand-off to a thread and back;
for big batches it avoids a GIL convoy: Python's sqlite3 releases the GIL around every
row it steps, and a writer thread then waits a switch interval to get it back while the loop
validates the next batch (1,000-event batches: about 24,000 events/s on a thread, 30,000-36,000
inline, alternating runs). Together: single events from 1,500 to 3,300-4,500 requests/s on one
core (230 us of serve CPU a request at saturation), batches from 13,000 to 34,000-36,000
events/s.

A later round (2026-12-02, evening) went after single events, which had missed 3,000
requests/s in both full runs that afternoon (2,789 and 2,814; 350-400 us of serve CPU a
request). py-spy on serve at saturation put about 40% of its samples in the group commit, whose
fixed costs about 11 requests shared (SQLAlchemy's connection, BEGIN and COMMIT, and a one-row
`UPDATE ... RETURNING` per organization through SQLAlchemy's execution context and result
set-up: 32 us, of which the driver's own work is 6), and about 11% in the dozen middleware and
routing layers between uvicorn and the handler. Three changes: (1) the counter updates and the
row inserts go to the driver's cursor (`dialect.prebuilt_rows`, `on_driver`: errors still come
out as SQLAlchemy's, parameters hidden); (2) `web/fast_lane.py` serves the event endpoints from
the top of the middleware stack with the same handler, exception handlers, security headers and
last-resort answer (chunked or oversized bodies still go down the whole stack; a test sends each
kind of request both ways and compares the answers); (3) the group committer takes a group after
two turns of the event loop, so that the requests already on the wire join it: 27 requests a
commit instead of 11. Counted in-process by `make bench-instructions` (the whole app, 32
single-event requests at a time): 731,054 -> 620,578 -> 533,326 instructions a request for (1)
and (2); with (3), serve's CPU a request at saturation went from about 370 to about 215 us in
alternating runs of the old and the new code.

The steady-load p99 was set by stalls, not by the mean: once every ~1.2 s a commit met the WAL's
size backstop (10,000 pages; 1,000 commits a second write ~8,000) and paid a checkpoint's fsync
inside a request, 10-30 ms, stalling the ~30 requests behind it. The background checkpoint now
runs every 0.25 s, so the WAL never gets there: p99 from 11-14 ms to 4-8 ms. At a steady
1,000 requests/s serve is still ~70% busy, because few requests share a commit (each writes
~8 WAL pages) and each request is answered alone.

Batches. In one process a 1,000-event batch cost about 24 us an event in-process at the start of
this round: JSON parse 1.2, pydantic validation 4.5, building the domain interactions 2, the
payloads 4.5, the inserts 4.5, the commit 2.4, the rest in between; HTTP and the kernel (400 KB
bodies, the WAL) add about 6 more at saturation. 50,000 events/s is 20 us an event all told, so
one core cannot get there. Because this VM's speed drifts by up to 50% within an hour, the cuts
were measured in instructions (valgrind's callgrind, the in-process path from the body's bytes
to the commit; `make bench-instructions`, with `SRC=` naming the old tree's src/): 206,000
instructions a batch event before this round, 150,000 after.
What was cut: bodies are validated straight from the bytes (`validate_json`, 4.0 against 5.6 us);
Interaction and QueuedEvent are NamedTuples built positionally (a frozen dataclass cost 1.2 us);
an interaction's shared payload fields are serialised once and each event's name and custom
data spliced around them (byte for byte `orjson.dumps(build_payload(...))`, a hypothesis test
checks it); the finished-rows index is partial, so an enqueued row adds no entry to it (outbox
insert 4.1 -> 3.1 us an event); one validator call for the user agent; a young-generation GC
threshold of 50,000 in serve (a batch allocates ~6,000 containers that live until it is
answered); up to 100 rows per INSERT statement (a driver-level executemany paid, per row, a
statement reset, a turn of sqlite3's loop and a release and retake of the GIL: 8% of the
instructions).
A second round (2026-12-02, afternoon) went after what two processes share: the writer lock.
In-process, a commit of 1,000 events held it for ~72,800 instructions an event (callgrind,
the in-lock part alone), about 17 us, so two processes could never pass ~55,000 events/s
however fast the rest. Now ~39,000: (a) the outbox rows are built before the lock, by the B2B
flags the process's last commit read, and rebuilt inside it only where a flag changed since
(`recording.ready`; a test switches a flag between commits); (b) the pageview and call rows lost
their index on organization_id, which nothing read (the admin reads counters) and which cost a
dirtied leaf page per organization per commit (migration 0006; the admin benchmark builds that
index for the spec's baseline, which counts rows per organization); (c) insert parameters are
flattened by `itertools.chain` in C. Then the work outside the lock, since two processes were
then busy on CPU rather than waiting: queued events are spliced in one loop per submission from
per-kind templates (`events.event_rows`, 3.4 -> 0.6 us an event; the byte-for-byte property test
covers it); the Python rules run from one model validator instead of seven AfterValidators; and
a body is validated first as its common case (`web/schemas_common_case.py`: URL, IPv4 and
canonical IPv6, and cookie rules as Rust regexes in pydantic's core), the model itself after it
only when that refuses (rarer shapes, and every error answer). Whole path: 147,000 -> 114,900
instructions a batch event this round.

The headline uses the second core: `serve --processes 2` runs two uvicorn servers on one port,
each with its own SO_REUSEPORT socket (uvicorn's `--workers` shares one socket, and one idle
process accepted all eight of a run's connections), and SQLite's writer passes between them
through a `flock` (`db.engine.WriterLock`). Everything that needs no transaction (hashes,
serialised payloads, every row) is done before the lock, and a process whose turn has not come
tries again from its loop every 0.5 ms: a first version took the lock on a thread and held it
idle until its loop had finished the batch it was validating (~4 ms in one pydantic call), and
py-spy showed each process waiting ~45% of the time while serve used 140-165% of the cores;
polling, serve uses ~180%. What limits it now is CPU: py-spy on one of the two processes at
~45,000 events/s (before the common-case validation) put pydantic validation at about a quarter
of its samples, the transaction a fifth (SQLite's inserts most of it, then the commit's WAL
writes), readying the rows a sixth (hashes, serialising the payload's shared fields), and HTTP,
the event loop and the checkpoint thread the rest; the writer lock is held about 40% of the time
in all, so the two processes seldom wait on each other. At saturation serve spends about 31 us
of CPU an event with two processes (a fifth of it in the kernel: 400 KB bodies, the WAL) and
28 us with one; the in-process path alone measured 19 to 29 us an event within ten minutes on
this VM. The physical limit on these two cores, if they did nothing but that path, is about
70,000 to 105,000 events/s. What would reach further: fewer Python objects per event (a
pydantic model per event, then an Interaction, then rows), and one writer process fed rows by
the validating processes over shared memory.
The spec's design records the view and then awaits the Conversions API call
inside the request, so its latency is Meta's round trip (50 ms at the stand-in, measured through
it in the same run) plus the recording, and each connection carries at most one request per
round trip.
"""

NAME = "ingest"
RUN = "bench"
ORGS = 50
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Bench/1.0"
WIDGET_VIEW = "/api/v1/events/widget-view"
BATCH = "/api/v1/events/batch"
ADMIN = "/api/v1/platform/retargeting"
BATCH_SIZE = 1000
# Sixteen keep-alive connections: with two serve processes each gets several (the kernel spreads
# connections over their SO_REUSEPORT sockets by hash), and each connection has a batch in
# flight at all times.
BATCH_CONNECTIONS = 16
START_TIMEOUT_SECONDS = 30.0


def org_id(index: int) -> str:
    return f"bench-org-{index}"


def is_b2b(org_index: int) -> bool:
    """One organization in three has retargeting on: its views queue two events, not one."""
    return org_index % 3 == 0


def events_queued(interaction: int) -> int:
    return 2 if is_b2b(interaction % ORGS) else 1


def interaction(i: int, now: int, run: str = RUN) -> dict[str, object]:
    """Interaction i: a widget view with a distinct visitor and an explicit event_id and time."""
    return {
        "organization_id": org_id(i % ORGS),
        "visitor_id": f"{run}-visitor-{i}",
        "event_id": f"{run}-event-{i}",
        "page_url": f"https://customer{i % ORGS}.example/page/{i % 97}?ref=bench",
        "client_ip_address": f"198.51.100.{i % 256}",
        "client_user_agent": USER_AGENT,
        "fbp": f"fb.1.{1596403881668 + i}.{1116446470 + i}",
        "event_time": now,
    }


def single_body(number: int, *, first: int, now: int, run: str = RUN) -> bytes:
    return orjson.dumps(interaction(first + number, now, run))


def batch_body(number: int, *, first: int, now: int, size: int, run: str = RUN) -> bytes:
    start = first + number * size
    items = [
        {"type": "widget_view", **interaction(i, now, run)} for i in range(start, start + size)
    ]
    return orjson.dumps({"events": items})


# -- the server ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Service:
    url: str
    port: int
    pid: int
    api_key: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def service(
    database_url: str,
    graph_url: str,
    *,
    worker: bool,
    access_log: bool = False,
    processes: int = 1,
    **env: str,
) -> Iterator[Service]:
    """`retargeting serve` with a superadmin, an API key, an active pixel and ORGS organizations."""
    admin_token, api_key = _credentials(database_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="retargeting-serve-") as var_dir:
        log_path = Path(var_dir) / "serve.log"
        command = [CLI, "serve", "--host", "127.0.0.1", "--port", str(port)]
        if not access_log:
            command.append("--no-access-log")
        if not worker:
            command.append("--no-worker")
        if processes > 1:
            command += ["--processes", str(processes)]
        environment = service_env(database_url, graph_url, RETARGETING_VAR_DIR=var_dir, **env)
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                command, env=environment, stdout=log_file, stderr=subprocess.STDOUT
            )
        try:
            _wait_healthy(url, process, log_path)
            _set_up_world(url, admin_token, api_key)
            yield Service(url, port, process.pid, api_key)
        finally:
            stop(process)


def _credentials(database_url: str) -> tuple[str, str]:
    engine = make_engine(database_url)
    now = time.time()
    try:
        credentials.create_user(
            engine, email="sa@example.com", password="a long password!", is_superadmin=True, now=now
        )
        token = credentials.create_token(
            engine, email="sa@example.com", name="bench", expires_days=None, now=now
        )
        key = credentials.create_api_key(engine, name="bench-platform", now=now)
    finally:
        engine.dispose()
    return token.secret, key.secret


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited early:\n{log_path.read_text(errors='replace')}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"serve did not start:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.05)


def _set_up_world(url: str, admin_token: str, api_key: str) -> None:
    pixel = {"pixel_id": PIXEL_ID, "access_token": TOKEN, "test_event_code": "", "enabled": True}
    with (
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_token}"}) as admin,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}) as platform,
    ):
        admin.put(f"{ADMIN}/pixel", json=pixel).raise_for_status()
        for index in range(ORGS):
            body = {"name": f"Bench {index}", "status": "active"}
            platform.put(f"/api/v1/organizations/{org_id(index)}", json=body).raise_for_status()
            if is_b2b(index):
                answer = admin.put(
                    f"{ADMIN}/organizations/{org_id(index)}", json={"retargeting_enabled": True}
                )
                answer.raise_for_status()


def stored_rows(database_url: str) -> tuple[int, int]:
    """(widget_pageviews rows, outbox_events rows)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            views = conn.execute(select(func.count()).select_from(widget_pageviews)).scalar_one()
            events = conn.execute(select(func.count()).select_from(outbox_events)).scalar_one()
    finally:
        engine.dispose()
    return int(views), int(events)


def meta_round_trip_ms(graph_url: str, samples: int = 20) -> float:
    """Median time of one event POSTed to the Graph stand-in: what the spec waits for per view."""
    view = Interaction(
        kind=InteractionKind.WIDGET_VIEW,
        organization_id=org_id(1),
        visitor_id="spec-visitor",
        page_url="https://customer1.example/",
        client_ip_address="198.51.100.1",
        client_user_agent=USER_AGENT,
        event_time=int(time.time()),
    )
    payload = orjson.dumps(build_payload(view, "GreetNow_WidgetView", "spec-event"))
    times = []
    headers = {"Content-Type": "application/json"}
    with httpx.Client(base_url=graph_url, timeout=5, headers=headers) as client:
        for _ in range(samples):
            started = time.perf_counter()
            answer = client.post(
                f"/v25.0/{PIXEL_ID}/events", content=request_body([payload], TOKEN)
            )
            times.append(time.perf_counter() - started)
            answer.raise_for_status()
    return statistics.median(times) * 1000


# -- the benchmark ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Sent:
    """One load run: request n carried interactions first + n * size ... + size - 1."""

    result: load.Result
    first: int
    size: int

    def answered(self) -> Iterator[tuple[int, float]]:
        """(interaction number, monotonic time its 202 arrived) for every accepted one."""
        for request, at in zip(self.result.accepted_ids, self.result.answered_at, strict=True):
            for k in range(self.size):
                yield self.first + request * self.size + k, at


class Driver:
    """Sends load to one server; every run gets fresh interaction numbers (new visitors and
    event ids), and what the server accepted is kept for the durability check."""

    def __init__(self, svc: Service, now: int) -> None:
        self.svc = svc
        self.now = now
        self.runs: list[Sent] = []
        self._next = 0

    @property
    def accepted(self) -> Iterator[int]:
        return (number for sent in self.runs for number, _ in sent.answered())

    def single(self, seconds: float, connections: int, rate: float | None = None) -> load.Result:
        body = functools.partial(single_body, first=self._next, now=self.now)
        return self._run(WIDGET_VIEW, body, 1, seconds, connections, rate)

    def batches(
        self, seconds: float, connections: int, size: int = BATCH_SIZE, rate: float | None = None
    ) -> load.Result:
        body = functools.partial(batch_body, first=self._next, now=self.now, size=size)
        return self._run(BATCH, body, size, seconds, connections, rate)

    def _run(
        self,
        path: str,
        body: load.BodyFactory,
        size: int,
        seconds: float,
        connections: int,
        rate: float | None,
    ) -> load.Result:
        first = self._next
        self._next += 100_000_000  # more than any run sends
        result = load.run(
            load.Load(
                port=self.svc.port,
                path=path,
                api_key=self.svc.api_key,
                body=body,
                connections=connections,
                seconds=seconds,
                rate=rate,
                server_pid=self.svc.pid,
            )
        )
        self.runs.append(Sent(result, first, size))
        return result


def cpu_note(result: load.Result) -> str:
    """Who used how much CPU, and every answer that was not a 202."""
    cpu = result.server_cpu_seconds or 1e-9
    per_cpu_second, kernel = result.accepted / cpu, result.server_system_seconds / cpu
    note = (
        f"serve used {result.server_cpu_share:.0%} of a core ({kernel:.0%} of it in the kernel; "
        f"{per_cpu_second:,.0f} requests per serve CPU-second), "
        f"the load generator {result.cpu_share:.0%}"
    )
    if result.statuses:
        note += f"; {sum(result.statuses.values())} answers not 202: {result.statuses}"
    return note


def run(quick: bool) -> list[Figure]:
    seconds = 3.0 if quick else 8.0
    rounds = 1 if quick else ROUNDS
    with stand_in(50.0) as graph, scratch_database() as database_url:
        spec_ms = meta_round_trip_ms(graph.url)
        with service(database_url, graph.url, worker=False) as svc:
            print(f"   serve pid {svc.pid}", flush=True)
            driver = Driver(svc, int(time.time()))
            driver.single(1.0, 8)  # warm-up
            figures = _single_events(driver, seconds, spec_ms, rounds)
            one_process = _batches(driver, seconds, rounds, processes=1)
        figures.append(_durability(database_url, driver.accepted, processes=1))
    # Batches again, served by two processes (one per core), each on a fresh database.
    with stand_in(50.0) as graph, scratch_database() as database_url:
        with service(database_url, graph.url, worker=False, processes=2) as svc:
            print(f"   serve --processes 2, supervisor pid {svc.pid}", flush=True)
            driver = Driver(svc, int(time.time()))
            driver.batches(2.0, connections=BATCH_CONNECTIONS)  # warm-up
            figures.append(_batches(driver, seconds, rounds, processes=2))
        figures.append(one_process)
        figures.append(_durability(database_url, driver.accepted, processes=2))
    return figures


def _single_events(driver: Driver, seconds: float, spec_ms: float, rounds: int) -> list[Figure]:
    connections = 32
    closed_runs = [driver.single(seconds, connections=connections) for _ in range(rounds)]
    closed = median_run(closed_runs, key=lambda result: result.rate)
    target, met = at_least(closed.rate, 3000)
    spec_ceiling = connections / (spec_ms / 1000)  # each request holds its connection for Meta
    figures = [
        Figure(
            NAME,
            f"single-event POST /events/widget-view, {connections} keep-alive connections, "
            "closed loop",
            closed.rate,
            "requests/s",
            target,
            met and not any(result.statuses for result in closed_runs),
            f"{closed.rate / spec_ceiling:.1f}x the spec's ceiling on as many connections "
            f"({spec_ceiling:,.0f}/s: each request waits Meta's {spec_ms:.0f} ms); "
            + cpu_note(closed)
            + "; "
            + runs_note([result.rate for result in closed_runs], "requests/s"),
        ),
        *(
            Figure(
                NAME,
                f"p{share * 100:g} latency at that saturation",
                percentile(closed.latencies, share) * 1000,
                "ms",
            )
            for share in (0.5, 0.99)
        ),
    ]
    rate = 1000
    steady_runs = [driver.single(seconds, connections=64, rate=rate) for _ in range(rounds)]
    steady = median_run(steady_runs, key=lambda result: percentile(result.latencies, 0.99))
    p50 = percentile(steady.latencies, 0.5) * 1000
    p99 = percentile(steady.latencies, 0.99) * 1000
    p99s = [percentile(result.latencies, 0.99) * 1000 for result in steady_runs]
    target, met = at_most(p99, 10)
    kept_up = all(run.accepted == run.sent >= 0.99 * rate * seconds for run in steady_runs)
    spec = spec_ms + p50
    return [
        *figures,
        Figure(
            NAME,
            f"p99 latency at a steady {rate:,} requests/s (open loop, from each send's due time)",
            p99,
            "ms",
            target,
            met and kept_up,
            f"{steady.accepted:,} of {steady.sent:,} accepted, {steady.late_sends:,} sends "
            f"waited for a free connection; {cpu_note(steady)}; {runs_note(p99s, 'ms', 2)}",
        ),
        Figure(
            NAME,
            f"p50 latency at a steady {rate:,} requests/s",
            p50,
            "ms",
            comparison=f"{spec / p50:,.1f}x faster than the spec's record-then-await-Meta "
            f"request: ~{spec:.1f} ms (Meta round trip {spec_ms:.1f} ms through the stand-in "
            f"+ this recording)",
        ),
    ]


def _batches(driver: Driver, seconds: float, rounds: int, processes: int) -> Figure:
    runs = [driver.batches(seconds, connections=BATCH_CONNECTIONS) for _ in range(rounds)]
    result = median_run(runs, key=lambda run: run.rate)
    events_per_second = result.rate * BATCH_SIZE
    target, reached = at_least(events_per_second, 50_000)
    met: bool | None = reached and not any(run.statuses for run in runs)
    served_by = "serve --processes 2" if processes > 1 else "one serve process"
    if processes == 1:  # beside the headline: what the second process adds
        target, met = "", None
    return Figure(
        NAME,
        f"batch POST /events/batch of {BATCH_SIZE:,} events, {served_by}, "
        f"{BATCH_CONNECTIONS} connections, closed loop",
        events_per_second,
        "events/s",
        target,
        met,
        f"p50 {percentile(result.latencies, 0.5) * 1000:.0f} ms a batch; {cpu_note(result)}; "
        + runs_note([run.rate * BATCH_SIZE for run in runs], "events/s"),
    )


def _durability(database_url: str, accepted: Iterable[int], processes: int) -> Figure:
    """Every accepted view is in widget_pageviews and queued its events in the outbox, no more."""
    numbers = list(accepted)
    views, events = stored_rows(database_url)
    expected_events = sum(events_queued(i) for i in numbers)
    lost = (len(numbers) - views) + (expected_events - events)
    return Figure(
        NAME,
        f"accepted but not stored (pageview + outbox rows), after SIGTERM, "
        f"{'serve --processes 2' if processes > 1 else 'one serve process'}",
        float(lost),
        "rows",
        "= 0",
        views == len(numbers) and events == expected_events,
        f"{views:,} pageview rows for {len(numbers):,} accepted views, "
        f"{events:,} outbox rows for {expected_events:,} queued events",
    )
