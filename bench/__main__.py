"""Run every benchmark in sequence and print a summary table of figures and ratios.

From the project root: ``make bench``, or ``.venv/bin/python -m bench [--quick] [NAME ...]``
with NAME among writes, relay, projection, latency, rules, http, loading, ingest, webhook,
live-metrics, read-models, evidence, as-of, audit-verify, personal-data (all of them by default).
``BENCH_QUICK=1`` acts as ``--quick``.
Exits 1 when a benchmark failed (the others still run). Every run also writes its figures to
``bench-results/`` as JSON (one file per run and ``latest.json``), so that runs can be compared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    as_of,
    audit_verify,
    case_rules,
    evidence_offline,
    http,
    ingest,
    latency,
    live_metrics,
    loading,
    personal_data,
    projection,
    read_models,
    relay,
    webhook,
    writes,
)
from bench.common import CONSOLE, Figure, Scale, configure_logging, quick_from_env, summary_table

Benchmark = Callable[[Scale], list[Figure]]
BENCHMARKS: dict[str, Benchmark] = {
    writes.NAME: writes.run,
    relay.NAME: relay.run,
    projection.NAME: projection.run,
    latency.NAME: latency.run,
    case_rules.NAME: case_rules.run,
    http.NAME: http.run,
    loading.NAME: loading.run,
    ingest.NAME: ingest.run,
    webhook.NAME: webhook.run,
    live_metrics.NAME: live_metrics.run,
    read_models.NAME: read_models.run,
    evidence_offline.NAME: evidence_offline.run,
    as_of.NAME: as_of.run,
    audit_verify.NAME: audit_verify.run,
    personal_data.NAME: personal_data.run,
}
RESULTS = Path("bench-results")


def parse(argv: Sequence[str] | None) -> tuple[Scale, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"one of {', '.join(BENCHMARKS)} (default: all)"
    )
    args = parser.parse_args(argv)
    names: list[str] = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    return Scale.choose(args.quick or quick_from_env()), names


def run_one(name: str, scale: Scale) -> list[Figure] | None:
    """The figures of one benchmark, or None when it failed (its traceback is printed)."""
    try:
        return BENCHMARKS[name](scale)
    except Exception:  # noqa: BLE001 - report it and go on with the next benchmark
        CONSOLE.print(f"[red]benchmark {name} failed:[/]")
        CONSOLE.print(traceback.format_exc(), markup=False)
        return None


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    scale, names = parse(argv)
    size = "quick" if scale.quick else "full"
    CONSOLE.print(f"caseledger benchmarks ({size} run): {', '.join(names)}")
    started = time.perf_counter()
    figures: list[Figure] = []
    failed = []
    for name in names:
        result = run_one(name, scale)
        if result is None:
            failed.append(name)
        else:
            figures.extend(result)
    CONSOLE.print()
    CONSOLE.print(summary_table(figures))
    saved = save_results(figures, scale, failed)
    CONSOLE.print(f"figures saved to {saved}")
    CONSOLE.print(f"total time {time.perf_counter() - started:,.0f} s")
    if failed:
        CONSOLE.print(f"[red]failed: {', '.join(failed)}[/]")
        return 1
    return 0


def save_results(figures: Sequence[Figure], scale: Scale, failed: Sequence[str]) -> Path:
    """Write the run's figures as JSON beside earlier runs; returns the file written."""
    RESULTS.mkdir(exist_ok=True)
    when = datetime.now(UTC)
    document = {
        "run_at": when.isoformat(timespec="seconds"),
        "quick": scale.quick,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "failed": list(failed),
        "figures": [{**asdict(f), "ratio": f.ratio} for f in figures],
    }
    text = json.dumps(document, indent=2)
    path = RESULTS / f"{when:%Y%m%dT%H%M%SZ}.json"
    path.write_text(text)
    (RESULTS / "latest.json").write_text(text)
    return path


if __name__ == "__main__":
    sys.exit(main())
