"""Benchmark: the write path with personal fields (sealed under a key per data subject) beside
the same commands on a case type whose fields are not personal, in the same run.

Each writer thread opens a case for a new party (the worst case: every case makes its
subject's key and index row) with two personal text fields and one plain one, then changes a
personal field NOTES_PER_CASE times, and opens the next. The baseline does the same on a case
type identical but for ``personal: true``. A second pair reads each case back from the store
(the case cache off for it): the personal values are unsealed on the way.

Run on its own: ``.venv/bin/python -m bench.personal_data [--quick]`` (from the project root).
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID, uuid4

from bench.common import (
    CONSOLE,
    CTX,
    NOTES_PER_CASE,
    Figure,
    Scale,
    Worker,
    bench_environment,
    print_figure,
    run_alone,
    run_for,
)
from domain.context import CommandContext
from services.application import CaseLedger

NAME = "personal-data"
THREADS = (1, 8)
ADMIN = CommandContext("bench", "admin")


def document(name: str, personal: bool) -> dict[str, Any]:
    return {
        "name": name,
        "labels": {"en": name},
        "states": {"open": {"initial": True}, "done": {"final": True}},
        "fields": {
            "full_name": {"type": "text", "personal": personal},
            "email": {"type": "text", "personal": personal},
            "ward": {"type": "text"},
        },
    }


def writer(ledger: CaseLedger, case_type: str, opened: list[UUID]) -> Worker:
    def work(index: int, deadline: float, counts: list[int]) -> None:
        case_id: UUID | None = None
        changes = 0
        while time.perf_counter() < deadline:
            if case_id is None or changes >= NOTES_PER_CASE:
                fields = {"full_name": "Zoë Quill", "email": "zq@example.org", "ward": "B2"}
                party = f"party-{uuid4().hex[:12]}"
                case_id = ledger.open_case(case_type, "bench", fields, party, CTX).id
                opened.append(case_id)
                changes = 0
            else:
                email = f"zq{changes}@example.org"
                ledger.update_fields(case_id, {"email": email}, CTX, None)
                changes += 1
            counts[index] += 1

    return work


def reader(ledger: CaseLedger, cases: list[UUID]) -> Worker:
    def work(index: int, deadline: float, counts: list[int]) -> None:
        i = index
        while time.perf_counter() < deadline:
            ledger.repository.get(cases[i % len(cases)])  # the store, not the cache
            i += 1
            counts[index] += 1

    return work


def run(scale: Scale) -> list[Figure]:
    CONSOLE.rule("[bold]personal data: commands/s with sealed fields vs the same without")
    figures = []
    with bench_environment(NAME) as env:
        ledger = env.container.ledger
        for name, personal in (("plain_file", False), ("patient_file", True)):
            env.container.case_types.install(document(name, personal), "bench", ADMIN)
        opened: dict[str, list[UUID]] = {"plain_file": [], "patient_file": []}
        for threads in THREADS:
            runs = {
                name: run_for(
                    f"{name}, {threads} threads",
                    threads,
                    scale.write_seconds,
                    writer(ledger, name, opened[name]),
                )
                for name in ("plain_file", "patient_file")
            }
            figures.append(
                Figure(
                    benchmark=NAME,
                    label=f"commands/s with personal fields, {threads} threads",
                    value=runs["patient_file"].rate,
                    unit="/s",
                    baseline_label=f"commands/s, same fields not personal, {threads} threads",
                    baseline=runs["plain_file"].rate,
                )
            )
            print_figure(figures[-1])
        ledger.repository.cache = None  # loads below read the store
        reads = {
            name: run_for(f"load {name} cases", 1, scale.write_seconds, reader(ledger, ids))
            for name, ids in opened.items()
        }
        figures.append(
            Figure(
                benchmark=NAME,
                label="case loads/s from the store, personal fields unsealed",
                value=reads["patient_file"].rate,
                unit="/s",
                baseline_label="case loads/s, same fields not personal",
                baseline=reads["plain_file"].rate,
            )
        )
        print_figure(figures[-1])
    return figures


if __name__ == "__main__":
    run_alone(run)
