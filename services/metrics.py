"""What ``GET /metrics`` shows, defined once: the Prometheus metrics of caseledger.

Two kinds of figures:
- what a process observes as it works (command and query latencies by route and outcome,
  commits of the event store and their sizes), in counters and histograms. When
  ``PROMETHEUS_MULTIPROC_DIR`` is set before ``prometheus_client`` is first imported (the
  API's processes: ``infra.metrics_dir``), each process writes them to files there and
  any one of them answers for all; without it (tests, one process) they stay in memory;
- where the pipeline stands (the event store's head, the relay's and each projection's
  position and lag, SLA timers due, notifications waiting), read from PostgreSQL when
  scraped by :class:`PipelineCollector`, with the same function as ``caseledger status``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

#: Whether this process writes its metrics to ``PROMETHEUS_MULTIPROC_DIR`` (decided by
#: prometheus_client when it was first imported).
MULTIPROCESS = values.ValueClass is not values.MutexValue
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
#: How long a scrape waits for the pipeline's figures before answering without them.
FIGURES_BUDGET_S = 1.0

# What this process observes. They live in a registry of their own: one process's figures,
# or none of them in multiprocess mode (where the files are read instead).
OBSERVED = CollectorRegistry()
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

COMMAND_SECONDS = Histogram(
    "caseledger_command_duration_seconds",
    "Time the API took to answer a command (a request that changes something), by route "
    "(method and path template) and outcome: ok, conflict, rejected, denied, unavailable, error.",
    ["command", "outcome"],
    buckets=_LATENCY_BUCKETS,
    registry=OBSERVED,
)
QUERY_SECONDS = Histogram(
    "caseledger_query_duration_seconds",
    "Time the API took to answer a read (GET), by route and outcome.",
    ["query", "outcome"],
    buckets=_LATENCY_BUCKETS,
    registry=OBSERVED,
)
COMMITS = Counter(
    "caseledger_commits",
    "Transactions committed to the event store by this deployment's API processes.",
    registry=OBSERVED,
)
COMMIT_COMMANDS = Histogram(
    "caseledger_commit_commands",
    "Commands that shared one commit of the event store (the group commit's batch size).",
    buckets=_SIZE_BUCKETS,
    registry=OBSERVED,
)
COMMIT_EVENTS = Histogram(
    "caseledger_commit_events",
    "Events stored by one commit of the event store.",
    buckets=_SIZE_BUCKETS,
    registry=OBSERVED,
)
COMMIT_SECONDS = Histogram(
    "caseledger_commit_duration_seconds",
    "Time one commit of the event store took, from its first statement to its COMMIT.",
    buckets=_LATENCY_BUCKETS,
    registry=OBSERVED,
)


def observe_commit(commands: int, events: int, seconds: float) -> None:
    """Count one commit of the event store that stored ``events`` for ``commands``."""
    COMMITS.inc()
    COMMIT_COMMANDS.observe(commands)
    COMMIT_EVENTS.observe(events)
    COMMIT_SECONDS.observe(seconds)


def outcome_of(status: int) -> str:
    """The outcome label of an HTTP status: a handful of values, never the status itself."""
    if status < 400:
        return "ok"
    if status == 409:
        return "conflict"
    if status in (401, 403):
        return "denied"
    if status < 500:
        return "rejected"
    if status in (503, 504):
        return "unavailable"
    return "error"


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Record one answered request; ``route`` is the route's template, never a raw path."""
    label = f"{method} {route}"
    if method in ("GET", "HEAD"):
        QUERY_SECONDS.labels(query=label, outcome=outcome_of(status)).observe(seconds)
    else:
        COMMAND_SECONDS.labels(command=label, outcome=outcome_of(status)).observe(seconds)


@dataclass(frozen=True)
class ProjectionFigures:
    """Where one projection stands."""

    position: int  # the highest global position it applied
    applied_events: int
    lag: int  # stored case events it does not reflect yet
    store_watermark: int  # every case event up to here is in it (its sweeps of the store)
    held_cases: int = 0  # cases waiting behind an event set aside (projection_dead_letters)


@dataclass(frozen=True)
class PipelineFigures:
    """Where the pipeline stands, against the event store's head: what ``caseledger status``
    prints and ``/metrics`` exposes."""

    head: int
    relay_position: int
    relay_lag: int
    projections: dict[str, ProjectionFigures]
    sla_timers: int
    sla_due: int
    notifications_waiting: int
    notifications_retrying: int
    events_set_aside: int
    connectors: dict[str, ConnectorFigures] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectorFigures:
    """A connector's current version, its latest run's reconciliation, and what waits in
    its quarantine."""

    version: int
    kind: str
    last_run: dict[str, int]  # seen, ingested, duplicates, quarantined, replayed
    quarantine_waiting: int


@dataclass(eq=False)  # registries keep their collectors in a dict
class PipelineCollector(Collector):
    """Reads the pipeline's figures when scraped, within :data:`FIGURES_BUDGET_S`. When they
    cannot be read in time (the database is down or slow), the scrape still answers, with
    ``caseledger_pipeline_figures_up 0`` and without them. A read that hangs is not started
    again until it ends, so scrapes never pile up on the database."""

    read: Callable[[], PipelineFigures]
    budget_s: float = FIGURES_BUDGET_S
    _thread: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="metrics")
    )
    _running: Future[PipelineFigures] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def collect(self) -> Iterable[Metric]:
        started = time.monotonic()
        figures = self._figures()
        up = GaugeMetricFamily(
            "caseledger_pipeline_figures_up",
            "1 when the pipeline's figures below were read from PostgreSQL for this scrape.",
            value=0 if figures is None else 1,
        )
        took = GaugeMetricFamily(
            "caseledger_pipeline_figures_read_seconds",
            "How long this scrape waited for the pipeline's figures.",
            value=time.monotonic() - started,
        )
        yield from (up, took)
        if figures is not None:
            yield from pipeline_metrics(figures)

    def _figures(self) -> PipelineFigures | None:
        with self._lock:
            if self._running is None or self._running.done():
                self._running = self._thread.submit(self.read)
            running = self._running
        try:
            return running.result(timeout=self.budget_s)
        except FutureTimeout:
            return None
        except Exception as error:  # noqa: BLE001 - a scrape answers whatever failed
            log.warning("the pipeline's figures could not be read: %s", error)
            return None

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)


def pipeline_metrics(figures: PipelineFigures) -> Iterator[Metric]:
    """The figures as Prometheus metric families."""

    def gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, text, value=value)

    yield gauge(
        "caseledger_event_store_head_position",
        "The global position of the newest stored event.",
        figures.head,
    )
    yield gauge(
        "caseledger_relay_position",
        "The global position up to which the relay has published to Kafka.",
        figures.relay_position,
    )
    yield gauge(
        "caseledger_relay_lag_events",
        "Stored events the relay has not published yet.",
        figures.relay_lag,
    )
    position = GaugeMetricFamily(
        "caseledger_projection_position",
        "The highest global position a projection has applied.",
        labels=["projection"],
    )
    lag = GaugeMetricFamily(
        "caseledger_projection_lag_events",
        "Stored case events a projection does not reflect yet.",
        labels=["projection"],
    )
    applied = CounterMetricFamily(
        "caseledger_projection_applied_events",
        "Events a projection has applied.",
        labels=["projection"],
    )
    held = GaugeMetricFamily(
        "caseledger_projection_held_cases",
        "Cases a projection holds behind an event it could not apply (retry after a fix).",
        labels=["projection"],
    )
    for name, projection in sorted(figures.projections.items()):
        position.add_metric([name], projection.position)
        lag.add_metric([name], projection.lag)
        applied.add_metric([name], projection.applied_events)
        held.add_metric([name], projection.held_cases)
    yield from (position, lag, applied, held)
    yield gauge("caseledger_sla_timers", "SLA timers running.", figures.sla_timers)
    yield gauge(
        "caseledger_sla_timers_due",
        "SLA timers past their due time (more than a few means the SLA watcher is not running).",
        figures.sla_due,
    )
    yield gauge(
        "caseledger_notifications_waiting",
        "Notifications not delivered yet.",
        figures.notifications_waiting,
    )
    yield gauge(
        "caseledger_notifications_retrying",
        "Notifications waiting after at least one failed delivery.",
        figures.notifications_retrying,
    )
    yield gauge(
        "caseledger_projection_events_set_aside",
        "Events a projection could not apply and set aside (projection_dead_letters).",
        figures.events_set_aside,
    )
    yield from _connector_metrics(figures.connectors)


def _connector_metrics(connectors: dict[str, ConnectorFigures]) -> Iterator[Metric]:
    waiting = GaugeMetricFamily(
        "caseledger_connector_quarantine_waiting",
        "Records a connector set aside that wait for a replay.",
        labels=["connector"],
    )
    records = GaugeMetricFamily(
        "caseledger_connector_last_run_records",
        "Records of a connector's latest run, by outcome (seen = ingested + duplicates + "
        "quarantined).",
        labels=["connector", "outcome"],
    )
    for name, connector in sorted(connectors.items()):
        waiting.add_metric([name], connector.quarantine_waiting)
        for outcome, count in sorted(connector.last_run.items()):
            records.add_metric([name, outcome], count)
    yield from (waiting, records)


class MetricsPage:
    """The text ``GET /metrics`` answers: this process's observations (or every API
    process's, in multiprocess mode) and the pipeline's figures read at scrape time."""

    def __init__(self, pipeline: PipelineCollector | None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        if MULTIPROCESS:
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
        else:
            self.registry.register(OBSERVED)
        self.pipeline = pipeline
        if pipeline is not None:
            self.registry.register(pipeline)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def close(self) -> None:
        if self.pipeline is not None:
            self.pipeline.close()
