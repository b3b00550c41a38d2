"""A keep-alive HTTP/1.1 load generator, in its own process, fast enough to never be the limit.

Why hand-written: httpx tops out near 300 requests/s per process here, no library in the pinned
dependencies generates keep-alive load at thousands of requests/s, and `wrk` (C) is not
installed. This one is an asyncio `Protocol` on uvloop (installed with uvicorn[standard]): the
request head is encoded once, each body comes from a picklable factory, the answer is parsed from
its status line and Content-Length alone, and the next request leaves from the callback that read
the previous answer, with no task or future per request. Against a trivial uvloop server on the
other core it drove 50,000 requests/s over 32 connections on 60% of a core (about 12 us of CPU a
request), and at a steady 5,000/s its own p99 was 1.0 ms: the open loop's timer wakes at
millisecond granularity, so a latency may include up to ~1 ms of its lateness.

It runs in a `spawn`ed child process so that its event loop shares a GIL with nothing in the
benchmark process (the Graph stand-in thread, for one), and reports the CPU it used, so a figure
can show that the generator had room to spare.

Two modes:

- closed loop (`rate=None`): each of `connections` sends the next request as soon as the
  previous answer arrives; throughput is what the server can take.
- open loop (`rate=R`): request i is due at start + i / R whatever the answers do. It goes out
  on an idle connection, or waits in a queue for one, and its latency is counted from the time it
  was due, so a stalled server shows up in the percentiles instead of slowing the sender down
  (no coordinated omission).

Times are `time.monotonic()`, one clock for every process on Linux, so the benchmark can compare
an answer's time here with an arrival time measured elsewhere.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import os
import time
from array import array
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import cast

BodyFactory = Callable[[int], bytes]  # request number -> JSON body; must be picklable
CONNECT_TIMEOUT_SECONDS = 10.0
DRAIN_SECONDS = 30.0  # how long answers may still come in after the last send
CONNECTION_LOST = -1  # pseudo-statuses in Result.statuses
NO_ANSWER = -2


@dataclasses.dataclass(frozen=True, slots=True)
class Load:
    """What to send, where, and how hard."""

    port: int
    path: str
    api_key: str
    body: BodyFactory
    connections: int
    seconds: float
    rate: float | None = None  # requests/s (open loop); None: closed loop
    max_requests: int | None = None
    host: str = "127.0.0.1"
    server_pid: int | None = None  # its CPU time over the run is reported too


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    sent: int
    accepted: int  # answered 202
    statuses: dict[int, int]  # every other status (or CONNECTION_LOST, NO_ANSWER) -> count
    seconds: float  # first send to last answer
    latencies: array[float]  # seconds, one per 202
    accepted_ids: array[int]  # request numbers answered 202, in answer order
    answered_at: array[float]  # monotonic time of each 202, same order
    cpu_seconds: float  # the generator's own CPU time while it ran
    server_cpu_seconds: float  # the server process's (all threads), if its pid was given
    server_system_seconds: float  # the part of it spent in the kernel (syscalls)
    late_sends: int  # open loop: sends that had to wait for a free connection

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    @property
    def cpu_share(self) -> float:
        """Share of one core the generator used: near 1.0 means it may be the bottleneck."""
        return self.cpu_seconds / self.seconds if self.seconds else 0.0

    @property
    def server_cpu_share(self) -> float:
        """Cores the server used; near 1.0 means its one event loop (GIL) is saturated."""
        return self.server_cpu_seconds / self.seconds if self.seconds else 0.0


def process_cpu_seconds(pid: int | None) -> tuple[float, float]:
    """(user, system) CPU seconds of a live process and its live children (`serve --processes
    N`), all threads (from /proc, Linux only)."""
    if pid is None:
        return 0.0, 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    user, system = int(fields[11]) / tick, int(fields[12]) / tick
    for child in _children(pid):
        child_user, child_system = process_cpu_seconds(child)
        user, system = user + child_user, system + child_system
    return user, system


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            children += [int(child) for child in (task / "children").read_text().split()]
    return children


def start(load: Load) -> tuple[ProcessPoolExecutor, Future[Result]]:
    """Run `load` in a fresh child process; shut the pool down when done (see `run`)."""
    pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
    return pool, pool.submit(_run_in_child, load)


def run(load: Load) -> Result:
    pool, future = start(load)
    try:
        return future.result(timeout=load.seconds + DRAIN_SECONDS + 60)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_in_child(load: Load) -> Result:
    try:
        import uvloop
    except ImportError:  # plain asyncio is about half as fast, still far ahead of httpx
        return asyncio.run(_Generator(load).run())
    return uvloop.run(_Generator(load).run())


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request outstanding."""

    def __init__(self, on_answer: Callable[[_Connection, int], None]) -> None:
        self._on_answer = on_answer
        self._buffer = bytearray()
        self._need = -1  # bytes of head + body once the head is parsed
        self._status = 0
        self.transport: asyncio.Transport | None = None
        self.request = -1  # the outstanding request's number
        self.due = 0.0  # when it was sent (closed) or due (open)
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, data: bytes, request: int, due: float) -> None:
        assert self.transport is not None
        self.request, self.due = request, due
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            if self._need < 0:
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                self._status, length = _parse_head(bytes(self._buffer[:end]))
                self._need = end + 4 + length
            if len(self._buffer) < self._need:
                return
            del self._buffer[: self._need]
            self._need = -1
            self._on_answer(self, self._status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.request >= 0:
            self._on_answer(self, CONNECTION_LOST)


def _parse_head(head: bytes) -> tuple[int, int]:
    """Status and Content-Length; any answer without a length is refused loudly."""
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return status, int(value)
    raise ValueError(f"answer without Content-Length: {lines[0]!r}")


class _Generator:
    def __init__(self, load: Load) -> None:
        self._load = load
        self._head = (
            f"POST {load.path} HTTP/1.1\r\nHost: {load.host}:{load.port}\r\n"
            f"Authorization: Bearer {load.api_key}\r\nContent-Type: application/json\r\n"
            "Connection: keep-alive\r\nContent-Length: "
        ).encode()
        self._next = 0
        self._deadline = 0.0
        self._in_flight = 0
        self._idle: collections.deque[_Connection] = collections.deque()
        self._backlog: collections.deque[tuple[int, float]] = collections.deque()
        self._done = asyncio.Event()
        self._sending = True
        self._statuses: collections.Counter[int] = collections.Counter()
        self._latencies: array[float] = array("d")
        self._ids: array[int] = array("q")
        self._times: array[float] = array("d")
        self._late = 0

    def _request(self, number: int) -> bytes:
        body = self._load.body(number)
        return self._head + str(len(body)).encode() + b"\r\n\r\n" + body

    def _more(self) -> bool:
        limit = self._load.max_requests
        return self._sending and (limit is None or self._next < limit)

    def _send(self, conn: _Connection, number: int, due: float) -> None:
        self._in_flight += 1
        conn.send(self._request(number), number, due)

    def _on_answer(self, conn: _Connection, status: int) -> None:
        now = time.monotonic()
        self._in_flight -= 1
        if status == 202:
            self._latencies.append(now - conn.due)
            self._ids.append(conn.request)
            self._times.append(now)
        else:
            self._statuses[status] += 1
        conn.request = -1
        if conn.closed:
            pass
        elif self._load.rate is None:
            if self._more() and now < self._deadline:
                self._send(conn, self._next, time.monotonic())
                self._next += 1
            else:
                self._sending = False
        elif self._backlog:
            self._send(conn, *self._backlog.popleft())
        else:
            self._idle.append(conn)
        if not self._sending and not self._backlog and self._in_flight == 0:
            self._done.set()

    async def run(self) -> Result:
        loop = asyncio.get_running_loop()
        load = self._load
        conns: list[_Connection] = []
        for _ in range(load.connections):
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(self._on_answer), load.host, load.port),
                CONNECT_TIMEOUT_SECONDS,
            )
            conns.append(conn)
        cpu_started = time.process_time()
        user_started, system_started = process_cpu_seconds(load.server_pid)
        started = time.monotonic()
        self._deadline = started + load.seconds
        try:
            if load.rate is None:
                for conn in conns:
                    if self._more():
                        self._send(conn, self._next, time.monotonic())
                        self._next += 1
            else:
                self._idle.extend(conns)
                await self._open_loop(load.rate, started)
                self._sending = False
            if self._in_flight or self._backlog:
                try:
                    await asyncio.wait_for(self._done.wait(), load.seconds + DRAIN_SECONDS)
                except TimeoutError:  # e.g. every connection died: count them, don't hang
                    self._statuses[NO_ANSWER] += self._in_flight + len(self._backlog)
        finally:
            for conn in conns:
                if conn.transport is not None:
                    conn.transport.close()
        user, system = process_cpu_seconds(load.server_pid)
        last = self._times[-1] if self._times else time.monotonic()
        return Result(
            sent=self._next,
            accepted=len(self._ids),
            statuses=dict(self._statuses),
            seconds=last - started,
            latencies=self._latencies,
            accepted_ids=self._ids,
            answered_at=self._times,
            cpu_seconds=time.process_time() - cpu_started,
            server_cpu_seconds=user + system - user_started - system_started,
            server_system_seconds=system - system_started,
            late_sends=self._late,
        )

    async def _open_loop(self, rate: float, started: float) -> None:
        interval = 1.0 / rate
        while self._more():
            due = started + self._next * interval
            if due >= self._deadline:
                break
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            while self._idle and self._idle[0].closed:
                self._idle.popleft()  # the server closed it while idle
            if self._idle:
                self._send(self._idle.popleft(), self._next, due)
            else:
                self._late += 1
                self._backlog.append((self._next, due))
            self._next += 1
