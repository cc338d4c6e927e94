"""Benchmark 6: loading a case with a long history, vs a raw SELECT of its rows.

One case gets HISTORY events (field changes, assignments and a note every tenth), saved in
chunks as a busy case would accumulate them over years. Three loads are timed, each the
median of several: a cold load (no cache: the latest snapshot and the events after it), a
warm load (the process's cached case, brought up to date with one query, then copied for
the caller), and a load as of a past version (the snapshot before it and the events up to
it). The baseline is a plain SELECT of all the case's rows on the same pool, which is what
every load cost before snapshots. A second case whose history is all notes shows what a
large state costs: a snapshot holds every note, so its cold load grows with the notes.

Run on its own: ``.venv/bin/python -m bench.loading [--quick]`` (from the project root).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from uuid import UUID

from bench.common import (
    CONSOLE,
    CTX,
    BenchEnv,
    Figure,
    Scale,
    bench_environment,
    count_progress,
    print_figure,
    run_alone,
)
from services.application import CaseLedger

NAME = "loading"
HISTORY = 10_000
CHUNK = 500  # events per save while building the history
REPEATS = 15


def build(ledger: CaseLedger, notes_only: bool) -> UUID:
    """A case with HISTORY events, with a progress bar."""
    case = ledger.open_case("generic", "a case with a long history", {"amount": 1}, None, CTX)
    case_id, ctx = case.id, CTX.as_dict()
    case = ledger.get_case(case_id)
    definition = ledger.definition_of(case)

    def step() -> int:
        nonlocal case
        start = case.version
        while case.version < min(HISTORY, start + CHUNK):
            n = case.version
            if notes_only or n % 10 == 0:
                case.add_note(f"note {n}: called the customer back, no answer", ctx)
            elif n % 3 == 0:
                case.assign(f"handler-{n % 7}", ctx)
            else:
                case.update_fields(definition, {"amount": 10 * n + 7}, ctx, None)
        ledger.save(case)
        return case.version - start

    kind = "notes" if notes_only else "mixed"
    count_progress(f"building a case of {HISTORY:,} {kind} events", HISTORY, step)
    return case_id


def median_ms(call: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def raw_select_ms(env: BenchEnv, case_id: UUID, repeats: int = REPEATS) -> float:
    """The median time of a plain SELECT of all the case's rows: the baseline of every read
    of a whole history (here and in ``bench.as_of``)."""
    query = env.container.reader.sql(
        "SELECT * FROM {events} WHERE originator_id = %s ORDER BY originator_version"
    )
    with env.container.pool.connection() as conn:
        return median_ms(lambda: conn.execute(query, (case_id,)).fetchall(), repeats)


def figure(label: str, value: float, baseline: float, benchmark: str = NAME) -> Figure:
    """A figure in milliseconds beside the raw SELECT of the case's rows."""
    return Figure(
        benchmark=benchmark,
        label=label,
        value=value,
        unit="ms",
        baseline_label=f"raw SELECT of its {HISTORY:,} rows",
        baseline=baseline,
        higher_is_better=False,
    )


def run(scale: Scale) -> list[Figure]:
    CONSOLE.rule(f"[bold]6. loading a case of {HISTORY:,} events vs a raw SELECT of its rows")
    figures = []
    with bench_environment(NAME) as env:
        ledger = env.container.ledger
        mixed = build(ledger, notes_only=False)
        head = ledger.get_case(mixed).version
        raw = raw_select_ms(env, mixed)
        past = head // 2 + 37
        figures += [
            figure(
                "cold load (snapshot + tail)", median_ms(lambda: ledger.get_case(mixed, head)), raw
            ),
            figure("warm load (cached, caught up)", median_ms(lambda: ledger.get_case(mixed)), raw),
            figure(
                f"load as of version {past:,}", median_ms(lambda: ledger.get_case(mixed, past)), raw
            ),
        ]
        if not scale.quick:
            notes = build(ledger, notes_only=True)
            raw_notes = raw_select_ms(env, notes)
            figures += [
                figure(
                    "cold load, 10,000 notes",
                    median_ms(lambda: ledger.get_case(notes, HISTORY)),
                    raw_notes,
                ),
                figure(
                    "warm load, 10,000 notes", median_ms(lambda: ledger.get_case(notes)), raw_notes
                ),
            ]
    for f in figures:
        print_figure(f)
    return figures


if __name__ == "__main__":
    run_alone(run)
