"""`serve --processes N`: N uvicorn servers on one port, each on its own core.

Each process listens on its own socket with SO_REUSEPORT, so the kernel spreads new connections
over them by address hash. uvicorn's own `--workers` shares one listening socket instead, and
there the first idle process accepts every connection that arrives together: a benchmark's
eight keep-alive connections all went to one process while the other sat idle.

The parent only supervises: it forwards SIGTERM and SIGINT (each server then stops gracefully,
answering what it holds), and starts a new process in place of one that dies. A process that
dies within START_GRACE_SECONDS of its start (a port in use, a bad setting) stops them all.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn

log = logging.getLogger(__name__)

START_GRACE_SECONDS = 10.0
STOP_GRACE_SECONDS = 30.0
_POLL_SECONDS = 0.5
_BACKLOG = 2048  # uvicorn's default


class ServeFailed(RuntimeError):
    """A serving process could not start; the others were stopped."""


def serve_processes(app_factory: str, processes: int, host: str, port: int, **options: Any) -> None:
    """Run `processes` servers of `app_factory` ("module:function") until SIGTERM or SIGINT."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited state
    stopping = threading.Event()

    def start() -> tuple[BaseProcess, float]:
        process = context.Process(target=_serve_one, args=(app_factory, host, port, options))
        process.start()
        return process, time.monotonic()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    running = [start() for _ in range(processes)]
    try:
        while not stopping.wait(_POLL_SECONDS):
            for index, (process, started) in enumerate(running):
                if process.is_alive():
                    continue
                if time.monotonic() - started < START_GRACE_SECONDS:
                    raise ServeFailed(
                        f"a serving process exited at start (code {process.exitcode})"
                    )
                log.warning(
                    "serving process died; starting another",
                    extra={"action": "serve_restart", "exit_code": process.exitcode},
                )
                running[index] = start()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop([process for process, _ in running])


def _stop(processes: list[BaseProcess]) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()  # SIGTERM: uvicorn finishes what it holds, then exits
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def _serve_one(app_factory: str, host: str, port: int, options: dict[str, Any]) -> None:
    config = uvicorn.Config(app_factory, factory=True, host=host, port=port, **options)
    uvicorn.Server(config).run(sockets=[_listening_socket(host, port)])


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(_BACKLOG)
    return sock
