"""Benchmark: reading a case of 10,000 events as it was recorded at a past moment, vs a raw
SELECT of its rows.

One case gets 10,000 events (``bench.loading.build``, saved in chunks as a busy case gathers
them). Timed, each the median of several: the version lookup alone (one SQL query on the
store: the newest event recorded by the moment, read from the newest down), the as-of load
at a moment in the middle of the history and at its end (the lookup, then the snapshot
before that version and the events after it), and the effective-time read at the end
(every event read and folded in effective-time order, which snapshots cannot shorten). The
baseline is a plain psycopg SELECT of all the case's rows (``bench.loading.raw_select_ms``),
what any read of the whole history costs at least.

Run on its own: ``.venv/bin/python -m bench.as_of [--quick]`` (from the project root).
"""

from __future__ import annotations

from datetime import UTC, datetime

from bench.common import (
    CONSOLE,
    Figure,
    Scale,
    bench_environment,
    print_figure,
    run_alone,
)
from bench.loading import HISTORY, build, median_ms, raw_select_ms
from bench.loading import figure as loading_figure
from services.time_travel import Moment

NAME = "as-of"


def figure(label: str, value: float, baseline: float) -> Figure:
    return loading_figure(label, value, baseline, NAME)


def run(scale: Scale) -> list[Figure]:
    CONSOLE.rule(f"[bold]as-of reads of a case of {HISTORY:,} events vs a raw SELECT of its rows")
    repeats = 5 if scale.quick else 15
    with bench_environment(NAME) as env:
        ledger = env.container.ledger
        case_id = build(ledger, notes_only=False)
        middle = ledger.history_page(case_id, HISTORY // 2, 1)[0].timestamp
        end = datetime.now(UTC)
        raw = raw_select_ms(env, case_id, repeats)
        assert ledger.case_at(case_id, Moment(as_of=middle)).version == HISTORY // 2 + 1
        figures = [
            figure(
                "version lookup at the middle (one SQL)",
                median_ms(lambda: ledger.version_at(case_id, middle), repeats),
                raw,
            ),
            figure(
                f"as-of load at the middle (version {HISTORY // 2 + 1:,})",
                median_ms(lambda: ledger.case_at(case_id, Moment(as_of=middle)), repeats),
                raw,
            ),
            figure(
                "as-of load at the end",
                median_ms(lambda: ledger.case_at(case_id, Moment(as_of=end)), repeats),
                raw,
            ),
            figure(
                "effective-time read at the end (full fold)",
                median_ms(lambda: ledger.case_at(case_id, Moment(effective_at=end)), repeats),
                raw,
            ),
        ]
    for f in figures:
        print_figure(f)
    return figures


if __name__ == "__main__":
    run_alone(run)
