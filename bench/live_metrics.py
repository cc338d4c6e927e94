"""Benchmark: live-metrics events/s (the faust worker), vs a raw consumer of the same messages.

Stores and relays the events (untimed; each case is an Opened event and four notes). Then a
raw kafka-python consumer in a group of its own polls every message and only ``json.loads``
it (``bench.projection``'s baseline). Then a real ``caseledger live-metrics`` process counts
the same messages: it updates its faust tables (the case's last version, and the hourly and
backlog counts for openings) and writes the figures to PostgreSQL once a second. Its rate is
read from the report it writes at each flush: the events it counted between its first report
with a count and the report where it reached the total, over the time between the two (its
group join and table recovery are not timed; the reports are a second apart, so a run of a
few seconds reads within about a tenth).

Run on its own: ``.venv/bin/python -m bench.live_metrics [--quick]`` (from the project root).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime

from bench.common import (
    CONSOLE,
    BenchEnv,
    Figure,
    Scale,
    bench_environment,
    print_figure,
    run_alone,
    timed_progress,
)
from bench.projection import relayed_and_raw_consumed

NAME = "live-metrics"
GIVE_UP_SECONDS = 300.0


def worker_reports(env: BenchEnv) -> list[tuple[int, datetime]]:
    """(events counted, when) of the worker's reports, as it wrote them."""
    with env.container.pool.connection() as conn:
        rows = conn.execute(
            "SELECT events_counted, updated_at FROM live_metrics_workers"
        ).fetchall()
    return [(int(r["events_counted"]), r["updated_at"]) for r in rows]


def time_faust_worker(env: BenchEnv, total: int) -> float:
    """Events/s of a real ``caseledger live-metrics`` counting ``total`` events."""
    log = open(env.workdir / "live-metrics.log", "wb")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "live-metrics"],
        env={**os.environ, **env.settings.as_env()},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    seen: list[tuple[int, datetime]] = []
    give_up = time.monotonic() + GIVE_UP_SECONDS

    def finished() -> bool:
        if worker.poll() is not None or time.monotonic() > give_up:
            raise RuntimeError(f"the worker did not count {total:,} events; see {log.name}")
        reports = worker_reports(env) if _table_exists(env) else []
        seen.extend(r for r in reports if r not in seen)
        return any(count >= total for count, _ in reports)

    try:
        timed_progress("faust worker counting", GIVE_UP_SECONDS, finished, lambda: "")
    finally:
        worker.terminate()
        worker.wait(30)
        log.close()
    first = min((r for r in seen if r[0] > 0), key=lambda r: r[1])
    last = min((r for r in seen if r[0] >= total), key=lambda r: r[1])
    return (last[0] - first[0]) / (last[1] - first[1]).total_seconds()


def _table_exists(env: BenchEnv) -> bool:
    with env.container.pool.connection() as conn:
        row = conn.execute("SELECT to_regclass('live_metrics_workers') AS t").fetchone()
    return bool(row and row["t"])


def run(scale: Scale) -> list[Figure]:
    CONSOLE.rule("[bold]live metrics events/s: the faust worker vs raw consume")
    with bench_environment("live") as env:
        total, raw_seconds = relayed_and_raw_consumed(env, scale)
        faust_rate = time_faust_worker(env, total)
        figure = Figure(
            benchmark=NAME,
            label="live-metrics events/s (faust)",
            value=faust_rate,
            unit="/s",
            baseline_label="raw consume + json.loads msgs/s",
            baseline=total / raw_seconds,
        )
        print_figure(figure)
    return [figure]


if __name__ == "__main__":
    run_alone(run)
