"""Instructions per batch event, counted by valgrind's callgrind: the measure for code changes.

Throughput on this VM drifts by up to 50% within an hour, so two versions of the ingest path are
compared by the instructions they execute instead, which repeat to within half a percent. The
path is the one a batch request takes in-process, from the body's bytes to the commit (SQLite
file, 50 organizations, one in three B2B, as `bench/ingest.py` sends): the count with four
1,000-event batches minus the count with none, over 4,000.

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

BATCHES = 4
EVENTS = 1000
ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the tree to count")
    args = parser.parse_args(argv)
    counts = [_instructions(args.src, batches) for batches in (0, BATCHES)]
    per_event = (counts[1] - counts[0]) / (BATCHES * EVENTS)
    print(f"{args.src}: {per_event:,.0f} instructions a batch event (callgrind)")
    return 0


def _instructions(src: Path, batches: int) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "bench.instructions",
        "--run",
        str(batches),
    ]
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{ROOT}"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    match = re.search(r"Collected : (\d+)", done.stderr)
    if match is None:
        raise RuntimeError(f"no count from callgrind:\n{done.stderr}")
    return int(match.group(1))


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

    from bench.ingest import ORGS, batch_body, is_b2b, org_id
    from retargeting.db import orgs
    from retargeting.db.engine import make_engine, writing
    from retargeting.db.migrate import upgrade
    from retargeting.domain.pixel import PixelState
    from retargeting.outbox import recording
    from retargeting.web import app
    from retargeting.web.schemas import BatchIn

    directory = tempfile.mkdtemp(prefix="retargeting-instructions-")
    url = f"sqlite:///{directory}/count.sqlite3"
    upgrade(url)
    engine = make_engine(url)
    now = int(time.time())
    with writing(engine) as conn:
        for index in range(ORGS):
            orgs.upsert(conn, org_id(index), f"Org {index}", "active", now)
            if is_b2b(index):
                orgs.set_retargeting(conn, org_id(index), True, now)
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


if __name__ == "__main__":
    if sys.argv[1:2] == ["--run"]:
        _run(int(sys.argv[2]))
        sys.exit(0)
    sys.exit(main())
