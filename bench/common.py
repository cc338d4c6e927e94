"""What every benchmark shares: run size, figures, a fresh database and broker, progress bars.

Not run on its own; see ``bench/__init__.py`` for how to run the benchmarks.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import functools
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from domain.case import Case
from domain.context import CommandContext
from infra.bootstrap import Container, bootstrap
from infra.embedded import EmbeddedBroker, free_port, start_postgres
from infra.settings import Settings

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
CTX = CommandContext("bench", "handler")
NOTES_PER_CASE = 4  # every case the benchmarks make gets an Opened event and four notes
CONSOLE = Console(highlight=False)
if not CONSOLE.is_terminal:  # piped (e.g. through make | tee): no 80-column wrapping
    CONSOLE = Console(highlight=False, width=140)


@dataclass(frozen=True)
class Scale:
    """How big a run is: the full one stays under ~4 minutes on 2 cores."""

    quick: bool
    write_seconds: float
    relay_events: int
    projection_events: int
    latency_seconds: float
    latency_rate: float = 200.0

    @classmethod
    def choose(cls, quick: bool) -> Scale:
        if quick:
            return cls(True, 2.0, 5_000, 5_000, 5.0)
        return cls(False, 5.0, 20_000, 20_000, 15.0)


@dataclass(frozen=True)
class Figure:
    """One measured figure and the raw baseline measured next to it."""

    benchmark: str
    label: str
    value: float
    unit: str
    baseline_label: str
    baseline: float
    higher_is_better: bool = True

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else math.nan

    def verdict(self) -> str:
        """The ratio in words, e.g. ``0.31x the raw rate`` or ``4.2x the raw latency``."""
        what = "rate" if self.higher_is_better else "latency"
        return f"{self.ratio:.2f}x the raw {what}"


def fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:,.1f} ms"
    return f"{value:,.0f} {unit}"


def print_figure(figure: Figure) -> None:
    CONSOLE.print(
        f"  [bold]{figure.label}[/]: {fmt(figure.value, figure.unit)}"
        f"   |   {figure.baseline_label}: {fmt(figure.baseline, figure.unit)}"
        f"   ->  [bold cyan]{figure.verdict()}[/]"
    )


def summary_table(figures: Sequence[Figure]) -> Table:
    table = Table(title="caseledger benchmarks (ratio = caseledger / raw baseline, same run)")
    for column in ("benchmark", "figure", "caseledger", "raw", "raw baseline", "ratio", "better"):
        numeric = column in ("caseledger", "raw", "ratio")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=True)
    for f in figures:
        table.add_row(
            f.benchmark,
            f.label,
            fmt(f.value, f.unit),
            fmt(f.baseline, f.unit),
            f.baseline_label,
            f"{f.ratio:.2f}x",
            "higher" if f.higher_is_better else "lower",
        )
    return table


def parse_scale(argv: Sequence[str] | None = None) -> Scale:
    """The run size from ``--quick`` or ``BENCH_QUICK=1``, for a benchmark run on its own."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    args = parser.parse_args(argv)
    return Scale.choose(args.quick or quick_from_env())


def quick_from_env() -> bool:
    return os.environ.get("BENCH_QUICK", "").strip().lower() in ("1", "true", "yes", "y")


def run_alone(run: Callable[[Scale], object], argv: Sequence[str] | None = None) -> None:
    """Run one benchmark module on its own: ``python -m bench.NAME [--quick]``."""
    configure_logging()
    run(parse_scale(argv))


def configure_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)


# --- servers ------------------------------------------------------------------------------


def reachable(dsn: str) -> bool:
    try:
        psycopg.connect(dsn, connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


@functools.cache
def admin_dsn() -> str:
    """A server where the benchmarks may create databases: $DATABASE_URL, the local server
    on 127.0.0.1:5432, or else an embedded one started for this run."""
    explicit = os.environ.get("DATABASE_URL")
    if explicit and reachable(explicit):
        return explicit
    if reachable(LOCAL_POSTGRES):
        return LOCAL_POSTGRES
    CONSOLE.print("no PostgreSQL reachable; starting an embedded one ...")
    server, _ = start_postgres(Path(tempfile.mkdtemp(prefix="bench-pg-")), database="postgres")
    atexit.register(server.cleanup)
    return str(server.get_uri())


def run_admin(statement: str, dbname: str) -> None:
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL(statement).format(sql.Identifier(dbname)))


@dataclass
class BenchEnv:
    """A fresh database, a fresh broker and the wired components, for one benchmark."""

    settings: Settings
    container: Container
    broker: EmbeddedBroker
    workdir: Path

    def raw_settings(self, suffix: str) -> Settings:
        """The same settings with another topic and group, for a raw baseline."""
        return self.settings.model_copy(
            update={
                "kafka_topic": f"{self.settings.kafka_topic}-{suffix}",
                "projection_group": f"{self.settings.projection_group}-{suffix}",
            }
        )


def new_settings(database_url: str, bootstrap_servers: str, workdir: Path) -> Settings:
    tag = uuid4().hex[:8]
    return Settings(
        _env_file=None,
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap_servers,
        kafka_topic=f"bench-events-{tag}",
        projection_group=f"bench-case-list-{tag}",
        kafka_session_timeout_ms=6_000,
        data_dir=workdir,
    )


@contextmanager
def bench_environment(tag: str) -> Iterator[BenchEnv]:
    """Start a broker, create a database, bootstrap caseledger; undo it all afterwards."""
    dbname = f"bench_{tag}_{uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix=f"bench-{tag}-") as tmp:
        workdir = Path(tmp)
        run_admin("CREATE DATABASE {0}", dbname)
        broker = EmbeddedBroker(free_port(), workdir / "broker.log")
        container: Container | None = None
        try:
            broker.start()
            url = make_conninfo(admin_dsn(), dbname=dbname)
            settings = new_settings(url, broker.bootstrap, workdir)
            container = bootstrap(settings, name=f"bench-{tag}")
            yield BenchEnv(settings, container, broker, workdir)
        finally:
            if container is not None:
                container.close()
            broker.stop()
            run_admin("DROP DATABASE IF EXISTS {0} WITH (FORCE)", dbname)


# --- progress -----------------------------------------------------------------------------


def new_progress() -> Progress:
    return Progress(
        TextColumn("  {task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=CONSOLE,
        transient=True,
        disable=not CONSOLE.is_terminal,
    )


def count_progress(description: str, total: int, step: Callable[[], int]) -> int:
    """Call ``step`` (it returns how many items it handled, 0 when done) until ``total``
    items were handled or it reports 0, with a progress bar; returns the count."""
    done = 0
    with new_progress() as progress:
        task = progress.add_task(description, total=total, info="")
        while done < total:
            handled = step()
            if handled == 0:
                break
            done += handled
            progress.update(task, completed=done, info=f"{done:,}/{total:,}")
    return done


def timed_progress(
    description: str, seconds: float, finished: Callable[[], bool], info: Callable[[], str]
) -> None:
    """Show a bar for a ``seconds``-long run until ``finished()``; ``info()`` is its label."""
    start = time.perf_counter()
    with new_progress() as progress:
        task = progress.add_task(description, total=seconds, info="")
        while not finished():
            elapsed = min(time.perf_counter() - start, seconds)
            progress.update(task, completed=elapsed, info=info())
            time.sleep(0.1)


# --- threads ------------------------------------------------------------------------------


@dataclass
class ThreadRun:
    """Result of running ``threads`` workers for a fixed time."""

    count: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds


Worker = Callable[[int, float, list[int]], None]
"""``worker(index, deadline, counts)``: works until ``time.perf_counter() > deadline``,
adding to ``counts[index]`` as it goes."""


def run_for(description: str, threads: int, seconds: float, worker: Worker) -> ThreadRun:
    """Run ``threads`` copies of ``worker`` for ``seconds``, started together."""
    counts = [0] * threads
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads + 1)
    deadline = [0.0]

    def body(index: int) -> None:
        barrier.wait()
        try:
            worker(index, deadline[0], counts)
        except BaseException as error:  # noqa: BLE001 - re-raised in the main thread
            errors.append(error)

    pool = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    deadline[0] = time.perf_counter() + seconds
    start = time.perf_counter()
    barrier.wait()
    timed_progress(
        description,
        seconds,
        lambda: not any(t.is_alive() for t in pool),
        lambda: f"{sum(counts):,} done",
    )
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return ThreadRun(sum(counts), elapsed)


# --- data ---------------------------------------------------------------------------------


def seed_events(container: Container, events: int, per_save: int = 100) -> int:
    """Store about ``events`` case events quickly (``per_save`` cases per save, each with
    an Opened event and NOTES_PER_CASE notes); returns how many were stored."""
    per_case = 1 + NOTES_PER_CASE
    cases = math.ceil(events / per_case)
    case_type = container.case_types.current("generic")
    context = CTX.as_dict()
    made = [0]

    def save_some() -> int:
        batch = []
        for i in range(min(per_save, cases - made[0])):
            now = datetime.now(UTC)
            case = Case.open(case_type, f"seed {made[0] + i}", {"n": i}, None, context, now)
            for j in range(NOTES_PER_CASE):
                case.add_note(f"seed note {j}", context)
            batch.append(case)
        container.ledger.save(*batch)
        made[0] += len(batch)
        return len(batch) * per_case

    start = time.perf_counter()
    stored = count_progress("storing events", cases * per_case, save_some)
    seconds = time.perf_counter() - start
    CONSOLE.print(
        f"  stored {stored:,} events in {seconds:.1f} s ({stored / seconds:,.0f} events/s"
        f" with {per_save} cases per save; not a benchmark figure)"
    )
    return stored


def relay_everything(container: Container) -> int:
    """Publish every stored event (untimed preparation); returns how many."""
    total = container.reader.head()
    return count_progress("relaying (preparation)", total, container.relay.publish_next_batch)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, by the nearest-rank method."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def close_quietly(client: Any) -> None:
    """Close a kafka-python client, ignoring what it raises against a stopping broker."""
    with contextlib.suppress(Exception):
        client.close()
