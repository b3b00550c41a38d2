"""Another process that holds the database's writer lock until told to let go."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

from sqlalchemy import Engine

_HOLD = """
import sys
from retargeting.db.engine import make_engine, writing
with writing(make_engine(sys.argv[1])):
    print("holding", flush=True)
    sys.stdin.readline()
"""


@contextlib.contextmanager
def another_process_holding_the_writer(engine: Engine) -> Iterator[subprocess.Popen[str]]:
    """A real second process in `writing()`: queued writers here must wait for it."""
    url = engine.url.render_as_string(hide_password=False)
    with subprocess.Popen(
        [sys.executable, "-c", _HOLD, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            assert process.stdout.readline().strip() == "holding"
            yield process
        finally:
            if process.poll() is None:
                let_go(process)


def let_go(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.write("\n")
    process.stdin.flush()
    process.wait(10)
