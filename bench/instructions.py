"""Instructions per ingested event, counted by valgrind's callgrind: the measure for code changes.

Throughput on this VM drifts by up to 50% within an hour, so two versions of the ingest path are
compared by the instructions they execute instead, which repeat to within half a percent. Two
paths, on a SQLite file with 50 organizations, one in three B2B, as `bench/ingest.py` sends:

- batch: what a batch request does in-process, from the body's bytes to the commit; the count
  with four 1,000-event batches minus the count with none, over 4,000.
- single: single widget-view requests through the whole app (middleware, route, validation,
  group commit), 32 at a time as the benchmark's 32 connections send them, by an in-process ASGI
  server that costs next to nothing; the count with 64 rounds minus the count with none, over
  2,048. Only uvicorn's parsing and writing of HTTP and the kernel's sockets are left out.

    .venv/bin/python -m bench.instructions            # this checkout
    .venv/bin/python -m bench.instructions --src DIR  # another tree's src/, to compare
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine

BATCHES = 4
EVENTS = 1000
ROUNDS = 64
CONNECTIONS = 32
ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the tree to count")
    parser.add_argument("--path", choices=("batch", "single", "both"), default="both")
    args = parser.parse_args(argv)
    if args.path in ("batch", "both"):
        none, some = _instructions(args.src, "--run", (0, BATCHES))
        per_event = (some - none) / (BATCHES * EVENTS)
        print(f"{args.src}: {per_event:,.0f} instructions a batch event (callgrind)")
    if args.path in ("single", "both"):
        none, some = _instructions(args.src, "--run-single", (0, ROUNDS))
        per_request = (some - none) / (ROUNDS * CONNECTIONS)
        print(
            f"{args.src}: {per_request:,.0f} instructions a single-event request, in-process "
            f"ASGI, {CONNECTIONS} at a time (callgrind)"
        )
    return 0


def _instructions(src: Path, mode: str, repeats: tuple[int, ...]) -> list[int]:
    """The count of each run, the runs side by side (a count does not depend on the others)."""
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{ROOT}"}
    runs = [
        subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                sys.executable,
                "-m",
                "bench.instructions",
                mode,
                str(repeat),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for repeat in repeats
    ]
    counts = []
    for run in runs:
        _, stderr = run.communicate()
        match = re.search(r"Collected : (\d+)", stderr)
        if run.returncode or match is None:
            raise RuntimeError(f"no count from callgrind:\n{stderr}")
        counts.append(int(match.group(1)))
    return counts


def _run(batches: int) -> None:
    """The measured path, `batches` times after one warm-up batch (run under valgrind).

    Trees from before 2026-12-02 had no `recording.ready`, validated through `json.loads`
    and had no GC threshold of their own, and older ones than this had no B2B flags learned
    from the last commit: for them the path is the one they had.
    """
    import gc
    import inspect
    import json

    from pydantic import TypeAdapter

    from bench.ingest import batch_body
    from retargeting.domain.pixel import PixelState
    from retargeting.outbox import recording
    from retargeting.web import app
    from retargeting.web.schemas import BatchIn

    now = int(time.time())
    engine = _world(now)
    try:  # what the route validates a valid body as
        from retargeting.web.schemas_common_case import COMMON_CASE_OF

        adapter = TypeAdapter(COMMON_CASE_OF[BatchIn])
    except ImportError:
        adapter = TypeAdapter(BatchIn)
    bodies = [batch_body(n, first=0, now=now, size=EVENTS) for n in range(BATCHES + 1)]
    gc.freeze()  # as serve does once started
    threshold = getattr(app, "GC_YOUNG_THRESHOLD", None)
    if threshold:
        gc.set_threshold(threshold, *gc.get_threshold()[1:])
    current = hasattr(recording, "ready")
    learning = current and "learned" in inspect.signature(recording.record_ready).parameters
    flags: dict[str, bool] = {}  # as the group committer keeps them
    for body in bodies[: batches + 1]:
        if current:
            batch = adapter.validate_json(body)
        else:
            batch = adapter.validate_python(json.loads(body), from_attributes=True)
        interactions = [event.to_interaction(now) for event in batch.events]
        submission = recording.Submission(interactions, PixelState.ACTIVE)
        if learning:
            readied = recording.ready([submission], now, flags)
            recording.record_ready(engine, readied, now, learned=flags)
        else:
            recording.record_many(engine, [submission], now)


def _world(now: float) -> Engine:
    """A migrated SQLite file with the benchmark's organizations, one in three B2B."""
    from bench.ingest import ORGS, is_b2b, org_id
    from retargeting.db import orgs
    from retargeting.db.engine import make_engine, writing
    from retargeting.db.migrate import upgrade

    directory = tempfile.mkdtemp(prefix="retargeting-instructions-")
    url = f"sqlite:///{directory}/count.sqlite3"
    upgrade(url)
    engine = make_engine(url)
    with writing(engine) as conn:
        for index in range(ORGS):
            orgs.upsert(conn, org_id(index), f"Org {index}", "active", now)
            if is_b2b(index):
                orgs.set_retargeting(conn, org_id(index), True, now)
    return engine


def _run_single(rounds: int) -> None:
    """`rounds` times, CONNECTIONS single widget views at once, after one warm-up round."""
    import asyncio
    import gc

    from bench.common import BENCH_SECRET_KEY, PIXEL_ID, TOKEN
    from bench.ingest import WIDGET_VIEW, single_body
    from retargeting import runtime
    from retargeting.security import TokenCipher
    from retargeting.services import credentials, pixel_settings
    from retargeting.settings import Settings
    from retargeting.web.app import create_app

    now = int(time.time())
    engine = _world(now)
    pixel = pixel_settings.PixelUpdate(PIXEL_ID, enabled=True, access_token=TOKEN)
    cipher = TokenCipher(BENCH_SECRET_KEY)
    pixel_settings.update_pixel(engine, cipher, actor="bench", update=pixel, now=now)
    api_key = credentials.create_api_key(engine, name="bench", now=now).secret
    # No background work while counting: the world above is in the first settings snapshot.
    runtime.CHECKPOINT_EVERY_SECONDS = 3600  # type: ignore[misc]
    settings = Settings(
        database_url=str(engine.url),
        secret_key=BENCH_SECRET_KEY,
        environment="test",
        graph_api_url="http://127.0.0.1:9",
        settings_poll_seconds=3600,
    )
    engine.dispose()
    app = create_app(settings, deliver=False)

    async def widget_view(body: bytes) -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": WIDGET_VIEW,
            "raw_path": WIDGET_VIEW.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1:8000"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"authorization", f"Bearer {api_key}".encode()),
            ],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
        }
        status = 0

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, object]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])  # type: ignore[call-overload]

        await app(scope, receive, send)
        return status

    async def serve() -> None:
        async with app.router.lifespan_context(app):
            assert app.state.runtime.snapshot.current.pixel.state.value == "active"
            bodies = [single_body(n, first=0, now=now) for n in range((rounds + 1) * CONNECTIONS)]
            gc.collect()
            for start in range(0, len(bodies), CONNECTIONS):
                sent = [widget_view(body) for body in bodies[start : start + CONNECTIONS]]
                statuses = await asyncio.gather(*sent)
                assert set(statuses) == {202}, statuses

    asyncio.run(serve())


if __name__ == "__main__":
    if sys.argv[1:2] == ["--run"]:
        _run(int(sys.argv[2]))
        sys.exit(0)
    if sys.argv[1:2] == ["--run-single"]:
        _run_single(int(sys.argv[2]))
        sys.exit(0)
    sys.exit(main())
