"""Prometheus metrics, one registry per process (no import-time globals).

Under `serve --processes N` the processes keep their values in one directory
(prometheus-client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`) and any of them answers
/metrics with the sum of all.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_queued = Counter(
            "retargeting_events_queued",
            "CAPI events written to the outbox",
            ["event_name"],
            registry=r,
        )
        self.events_delivered = Counter(
            "retargeting_events_delivered", "Events Meta accepted", registry=r
        )
        self.events_failed = Counter(
            "retargeting_events_failed", "Events Meta rejected for good", registry=r
        )
        self.events_expired = Counter(
            "retargeting_events_expired", "Events older than 7 days, never sent", registry=r
        )
        self.event_retries = Counter(
            "retargeting_event_retries", "Events scheduled for another attempt", registry=r
        )
        self.graph_requests = Counter(
            "retargeting_graph_requests",
            "Requests to the Graph API by outcome",
            ["outcome"],
            registry=r,
        )
        self.graph_latency = Histogram(
            "retargeting_graph_request_seconds",
            "Graph API request latency",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.ingest_commit_requests = Histogram(
            "retargeting_ingest_commit_requests",
            "Ingest requests answered by one commit (group commit)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.in_flight_limit = Gauge(
            "retargeting_in_flight_limit",
            "Requests the dispatchers may have in flight",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.delivery_paused = Gauge(
            "retargeting_delivery_paused",
            "1 while delivery is paused by Meta's answer",
            registry=r,
            multiprocess_mode="livemax",
        )
        self._read_from_database: list[Collector] = []

    def watch_queue_depth(self, read_depth: Callable[[], int]) -> None:
        """Queue depth is read from the database at scrape time, so every process agrees."""
        collector = _QueueDepthCollector(read_depth)
        self.registry.register(collector)
        self._read_from_database.append(collector)

    def latest(self) -> bytes:
        """The exposition for /metrics: this process's, or all serving processes' summed."""
        if _SHARED_DIRECTORY_VARIABLE not in os.environ:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        for collector in self._read_from_database:
            registry.register(collector)
        return generate_latest(registry)


_SHARED_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def shared_across_processes() -> Iterator[None]:
    """For the processes started inside: a fresh directory for their values (or the operator's
    own `PROMETHEUS_MULTIPROC_DIR`), removed afterwards."""
    if _SHARED_DIRECTORY_VARIABLE in os.environ:
        yield
        return
    directory = tempfile.mkdtemp(prefix="retargeting-metrics-")
    os.environ[_SHARED_DIRECTORY_VARIABLE] = directory
    try:
        yield
    finally:
        del os.environ[_SHARED_DIRECTORY_VARIABLE]
        shutil.rmtree(directory, ignore_errors=True)


def forget_this_process() -> None:
    """Drop this process's live gauges from the shared directory when it stops."""
    if _SHARED_DIRECTORY_VARIABLE in os.environ:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class _QueueDepthCollector(Collector):
    def __init__(self, read_depth: Callable[[], int]) -> None:
        self._read_depth = read_depth

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            depth = float(self._read_depth())
        except SQLAlchemyError:
            depth = math.nan  # the database is down: say "unknown", keep /metrics answering
        yield GaugeMetricFamily(
            "retargeting_outbox_depth", "Events waiting for delivery", value=depth
        )
