"""The hot path: what recording one widget view costs the caller, in-process.

`recording.record` is the library call the ingest handler makes: one durable SQLite commit of the
interaction, its counter and its outbox event. Nothing on this path waits for Meta. Beside it, in
the same run, the spec's design, where the caller awaits one POST to Meta (the stand-in, 50 ms)
per widget view.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import orjson

from bench import common
from bench.common import Figure
from retargeting.db.engine import make_engine
from retargeting.domain.events import build_payload
from retargeting.domain.pixel import PixelState
from retargeting.outbox import recording
from retargeting.services import organizations
from retargeting.web.schemas import WidgetViewIn

TITLE = "Hot path: recording a widget view"
NAME = "hot_path"
ORG = common.BENCH_ORG
WARM_UP = 500
TARGET_P99_MS = 1.0
API_VERSION = "v25.0"

LIMITS = """
**What limits these figures.** No network happens on this path: `recording.record` bumps the
organization's counter (reading its B2B flag in the same statement), inserts the interaction and
its outbox event in one SQLite transaction (`BEGIN IMMEDIATE`, WAL, `synchronous=NORMAL`, so a
commit appends to the WAL without an fsync). The median is SQLAlchemy Core executing three
statements in Python plus SQLite's B-tree inserts; validation adds pydantic's strict model with
an `ipaddress` parse and a URL split, a few tens of microseconds. The first version missed the
p99 target (1.3-3.3 ms): a commit writes about 9 WAL pages, and SQLite's auto-checkpoint ran
inside whichever commit crossed 1,000 pages, copying the WAL into the database and fsyncing it.
Now each process checkpoints in the background every second (`runtime._checkpoints`) and the
in-commit backstop waits for 10,000 pages; this benchmark calls the library without that loop, so
the backstop still fires every ~1,100 calls and sets the maximum, not the p99. The physical limit
is one WAL append per commit, tens of microseconds. The spec's design is bounded by Meta's
latency: the caller waits the full round trip (50 ms here, typically 100-600 ms from Meta) on
every view.
"""


def run(quick: bool) -> list[Figure]:
    calls = 2_000 if quick else 20_000
    posts = 40 if quick else 100
    with common.scratch_database() as database_url:
        engine = make_engine(database_url)
        try:
            organizations.upsert(engine, org_id=ORG, name="Bench", status="active", now=time.time())
            views = [
                common.widget_view(f"visitor-{n}", int(time.time())) for n in range(WARM_UP + calls)
            ]
            bodies = [orjson.dumps(widget_view_body(n)) for n in range(WARM_UP + calls)]

            def record(number: int) -> None:
                recording.record(engine, [views[number]], PixelState.ACTIVE, time.time())

            def validate_and_record(number: int) -> None:
                now = time.time()
                view = WidgetViewIn.model_validate_json(bodies[number]).to_interaction(int(now))
                recording.record(engine, [view], PixelState.ACTIVE, now)

            # Both series record fresh visitors: the second starts where the first stopped.
            recorded = latencies_ms(record, range(WARM_UP + calls))[WARM_UP:]
            validated = latencies_ms(validate_and_record, range(WARM_UP + calls))[WARM_UP:]
        finally:
            engine.dispose()
    with common.stand_in() as graph, httpx.Client(timeout=10) as client:
        before = graph.events_received()
        url = f"{graph.url}/{API_VERSION}/{common.PIXEL_ID}/events"

        def post_to_meta(number: int) -> None:
            body = {"data": [spec_payload(number)], "access_token": common.TOKEN}
            client.post(url, json=body).raise_for_status()

        spec = latencies_ms(post_to_meta, range(posts))
        if graph.events_received() - before != posts:
            raise RuntimeError("the stand-in did not accept every one of the spec's POSTs")
    return figures(recorded, validated, spec)


def latencies_ms(call: Callable[[int], None], numbers: range) -> list[float]:
    """Wall time of each call, in order, in milliseconds."""
    samples = []
    for number in numbers:
        started = time.perf_counter()
        call(number)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def widget_view_body(number: int) -> dict[str, object]:
    """What the platform's server POSTs to /api/v1/events/widget-view."""
    return {
        "organization_id": ORG,
        "visitor_id": f"validated-visitor-{number}",
        "page_url": "https://customer.example/pricing",
        "client_ip_address": "203.0.113.7",
        "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64) Bench",
        "fbp": "fb.1.1596403881668.1116446470",
    }


def spec_payload(number: int) -> dict[str, object]:
    return build_payload(
        common.widget_view(f"visitor-{number}", int(time.time())),
        "GreetNow_WidgetView",
        f"bench-{number}",
    )


def figures(recorded: list[float], validated: list[float], spec: list[float]) -> list[Figure]:
    def series(label: str, samples: list[float], target: bool) -> list[Figure]:
        p99 = common.percentile(samples, 0.99)
        return [
            Figure(NAME, f"{label}: p50", common.percentile(samples, 0.50), "ms"),
            Figure(
                NAME,
                f"{label}: p99",
                p99,
                "ms",
                f"< {TARGET_P99_MS:g}" if target else "",
                p99 < TARGET_P99_MS if target else None,
                f"{len(samples):,} calls, nothing waiting on Meta" if target else "",
            ),
            Figure(NAME, f"{label}: max", max(samples), "ms"),
        ]

    spec_p50 = common.percentile(spec, 0.50)
    ours_p50 = common.percentile(validated, 0.50)
    spec_p99 = common.percentile(spec, 0.99)
    ours_p99 = common.percentile(validated, 0.99)
    return [
        *series("record() of one widget view, committed", recorded, target=True),
        *series("validate (pydantic) + record(), the handler minus HTTP", validated, target=True),
        Figure(NAME, "spec's design, caller awaits one POST to Meta: p50", spec_p50, "ms"),
        Figure(NAME, "spec's design, caller awaits one POST to Meta: p99", spec_p99, "ms"),
        Figure(
            NAME,
            "caller's wait, spec's design vs validate + record, p50",
            spec_p50 / ours_p50,
            "x",
            comparison=f"p99: {spec_p99 / ours_p99:,.0f}x ({spec_p99:,.1f} ms vs "
            f"{ours_p99:,.3f} ms); {len(spec)} POSTs at 50 ms stand-in latency",
        ),
    ]
