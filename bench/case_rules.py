"""Benchmark 5: a case type with 20 rules beside the same case type with none.

Every command is a field update on a case of the type; after it, the rules react (CEL
conditions, one decision table, priority and routing actions, each firing recorded as an
event). Measured twice: in memory (``react`` alone, no I/O), and durably through
``CaseLedger.update_fields`` against PostgreSQL, alternating short runs of the two case types
so that noise on the machine falls on both alike. Also printed: microseconds per CEL
condition and per decision table, the building blocks.

Run on its own: ``.venv/bin/python -m bench.case_rules [--quick]`` (from the project root).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from bench.common import CONSOLE, CTX, Figure, Scale, bench_environment, print_figure, run_alone
from domain.case import Case
from domain.definition import Definition
from domain.rules import RuleRun, facts, react
from services.application import CaseLedger
from services.case_type_document import compile_definition, read_document
from services.expressions import CelCondition, DecisionTable

NAME = "rules"
RULES = 20
CASES = 100  # commands round-robin over this many cases, so no case grows too long
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)

HEAD = """
name: NAME
labels: {en: Rules benchmark}
states: {open: {initial: true, labels: {en: Open}}}
transitions: {}
fields:
  amount: {type: number, labels: {en: Amount}}
  category: {type: choice, choices: [water, fire, theft, glass], labels: {en: Category}}
  region: {type: choice, choices: [north, south, east, west], labels: {en: Region}}
  vip: {type: boolean, labels: {en: VIP}}
decision_tables:
  routing:
    inputs: [fields.category, fields.amount]
    outputs: [queue]
    rows:
      - {when: ['"fire"', ''], then: {queue: fire-desk}}
      - {when: ['"water"', '> 10000'], then: {queue: senior}}
      - {when: ['', '>= 50000'], then: {queue: senior}}
      - {when: ['', ''], then: {queue: general}}
"""
# Four rules that hold on every update (as routing and triage rules do), sixteen that do not
# (the exceptions: fraud, VIPs, regions, big amounts).
HOLDING = [
    ("route", "true", "- assign: {table: routing}"),
    ("triage", "fields.amount >= 0.0", "- set_priority: normal"),
    ("category_known", 'has(fields.category) && fields.category != ""', "- set_priority: normal"),
    (
        "region_known",
        'fields.region in ["north", "south", "east", "west"]',
        "- assign: {queue: general}",
    ),
]
EXCEPTIONS = [
    (
        f"exception_{i}",
        f'fields.amount > {100_000 + i}.0 && fields.region == "north"',
        "- set_priority: urgent",
    )
    for i in range(8)
] + [
    (f"vip_{i}", f'fields.vip == true && fields.category == "{c}"', "- escalate: vip")
    for i, c in enumerate(["water", "fire", "theft", "glass"] * 2)
]


def document(name: str, rules: int) -> dict[str, Any]:
    text = HEAD.replace("NAME", name)
    chosen = (HOLDING + EXCEPTIONS)[:rules]
    if chosen:
        text += "rules:\n" + "".join(
            f"  - name: {rule}\n    on: [CaseFieldsUpdated]\n    if: '{condition}'\n"
            f"    do:\n      {action}\n"
            for rule, condition, action in chosen
        )
    return read_document(text.encode(), "application/yaml")


def fields_for(i: int) -> dict[str, Any]:
    return {"amount": float(1000 + i % 90_000), "category": "water", "region": "south"}


def in_memory_rate(definition: Definition, commands: int) -> tuple[float, int]:
    """Commands/s of update + react on one case in memory, and the rules fired."""
    ctx = CTX.as_dict()
    case = Case.open(definition, "bench", fields_for(0), None, ctx, NOW)
    case.collect_events()
    fired = 0
    started = time.perf_counter()
    for i in range(commands):
        case.update_fields(definition, {"amount": float(i)}, ctx, None)
        fired += react(RuleRun(case, definition, ctx, NOW, lambda name: definition)).fired
        case.collect_events()
    return commands / (time.perf_counter() - started), fired


def per_call_us(call: Callable[[], object], times: int) -> float:
    started = time.perf_counter()
    for _ in range(times):
        call()
    return (time.perf_counter() - started) / times * 1e6


def building_blocks(definition: Definition) -> None:
    case = Case.open(definition, "bench", fields_for(5), None, CTX.as_dict(), NOW)
    known = facts(case)
    condition = CelCondition('fields.amount > 100000.0 && fields.region == "north"')
    table = next(a.decision for r in definition.rules for a in r.actions if a.decision)
    assert isinstance(table, DecisionTable)
    CONSOLE.print(
        f"  one CEL condition: {per_call_us(lambda: condition.holds(known), 5_000):.1f} µs"
        f"   one decision table: {per_call_us(lambda: table.decide(known), 5_000):.1f} µs"
        f"   facts of a case: {per_call_us(lambda: facts(case), 5_000):.1f} µs"
    )


def durable_rate(ledger: CaseLedger, seconds: float, ids: list[UUID]) -> float:
    commands = 0
    cycle = itertools.cycle(ids)
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        ledger.update_fields(next(cycle), {"amount": float(commands % 90_000)}, CTX, None)
        commands += 1
    return commands / (time.perf_counter() - started)


def run(scale: Scale) -> list[Figure]:
    CONSOLE.rule(f"[bold]5. a case type with {RULES} rules vs the same type with none")
    with_rules = compile_definition(document("with_rules", RULES), 1)
    without = compile_definition(document("without_rules", 0), 1)
    building_blocks(with_rules)
    commands = 2_000 if scale.quick else 10_000
    in_memory_rate(with_rules, 200)  # warm up
    bare, _ = in_memory_rate(without, commands)
    ruled, fired = in_memory_rate(with_rules, commands)
    evaluated = commands * RULES
    CONSOLE.print(
        f"  in memory: {commands:,} updates evaluated {evaluated:,} rules, "
        f"{fired:,} fired: {ruled * RULES:,.0f} rule evaluations/s"
    )
    figures = [
        Figure(
            NAME,
            f"in-memory commands/s, {RULES} rules",
            ruled,
            "/s",
            "same commands, no rules",
            bare,
        ),
    ]
    print_figure(figures[-1])
    with bench_environment(NAME) as env:
        container = env.container
        ids: dict[str, list[UUID]] = {}
        for name, rules in (("with_rules", RULES), ("without_rules", 0)):
            container.case_types.install(document(name, rules), "bench", CTX)
            ids[name] = [
                container.ledger.open_case(name, f"bench {i}", fields_for(i), None, CTX).id
                for i in range(CASES)
            ]
        rounds, seconds = (2, 1.0) if scale.quick else (4, scale.write_seconds / 2)
        totals = {"with_rules": 0.0, "without_rules": 0.0}
        for _ in range(rounds):  # alternate, so both see the same machine
            for name in totals:
                totals[name] += durable_rate(container.ledger, seconds, ids[name]) / rounds
        figures.append(
            Figure(
                NAME,
                f"durable commands/s, {RULES} rules",
                totals["with_rules"],
                "/s",
                "same commands, no rules",
                totals["without_rules"],
            )
        )
        print_figure(figures[-1])
    return figures


if __name__ == "__main__":
    run_alone(run)
