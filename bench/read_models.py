"""Benchmark: dashboard and search query latency with 100,000 cases loaded, beside a raw
baseline in the same run (``SELECT 1`` and a primary-key lookup over the same pool).

Setup (untimed) writes the read-model rows straight into ``case_list``, ``status_history``
and ``sla_outcomes`` with COPY: a query benchmark needs the rows, not the events that would
make them (the projection benchmark measures that). The cases are spread over the four
shipped case types and two years, 30% open, with SLA clocks on the open ones (some warned,
some past their deadline), 50 handlers, 8 queues, 20,000 parties, titles and notes drawn
from a 2,000-word vocabulary; the tables are then analysed, as autovacuum would.

Each query then runs ``ROUNDS`` times through the same code the API calls
(``services.read_models.ReadModels`` and ``infra.case_list_store.CaseListStore``), one after
another, and its p50 and p99 are printed. The figures kept are the worst p99 of the
dashboard queries and of the search queries, each against the primary-key lookup's p99.
Target: under 50 ms.

Run on its own: ``.venv/bin/python -m bench.read_models [--quick]`` (from the project root).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from bench.common import (
    CONSOLE,
    Figure,
    Scale,
    bench_environment,
    percentile,
    print_figure,
    run_alone,
)
from infra.bootstrap import SAMPLE_CASE_TYPES, Container, install_case_types
from infra.read_model_store import ReadModelStore
from projections.case_history import SLA_OUTCOMES, STATUS_HISTORY
from projections.case_list import AT_RISK_SHARE, CASE_LIST, PRIORITY_RANK
from services.queries import CaseFilter, PageCursor
from services.read_models import CountBy, ReadModels, SlaWhere

NAME = "read-models"
TARGET_MS = 50.0
CASE_TYPES = ("generic", "insurance_claim", "patient_care", "customer_complaint")
HANDLERS = [f"handler{n:02d}" for n in range(50)]
QUEUES = [None, "intake", "review", "experts", "payments", "medical", "complaints", "supervisors"]
PRIORITIES = ("low", "normal", "normal", "normal", "high", "urgent")
WORDS = [f"w{n:04d}" for n in range(2_000)]
OPEN_SHARE = 0.3
PK_LOOKUP = "case_list primary-key lookup"


def cases_for(scale: Scale) -> int:
    return 20_000 if scale.quick else 100_000


def rounds_for(scale: Scale) -> int:
    return 40 if scale.quick else 200


# --- setup ----------------------------------------------------------------------------------


def _states(container: Container) -> dict[str, tuple[list[str], list[str], str]]:
    """Per case type: its non-final states, its final ones, its initial one."""
    found = {}
    for name in CASE_TYPES:
        definition = container.case_types.current(name)
        states = list(definition.states)
        final = [s for s in states if definition.is_final(s)] or ["closed"]
        found[name] = ([s for s in states if s not in final], final, definition.initial)
    return found


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _clock(rng: random.Random, opened: datetime, now: datetime) -> dict[str, Any]:
    """A clock started at the opening, with a deadline 1 to 15 days later, warned half-way
    (as ``warn_at: [50]`` would be, most of the time)."""
    span = timedelta(days=rng.uniform(1, 15))
    deadline = opened + span
    warned = now >= opened + span / 2 and rng.random() < 0.7
    # as the projection keeps it: the warning's time, else a quarter of the span left
    at_risk = opened + span / 2 if warned else deadline - span * AT_RISK_SHARE
    return {
        "run": 1,
        "running": True,
        "deadline": deadline.isoformat(),
        "warned": warned,
        "breached": deadline <= now,
        "started": opened.isoformat(),
        "at_risk_at": at_risk.isoformat(),
    }


def generate(
    container: Container, count: int, now: datetime, seed: int = 11
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]]:
    """Each case's ``case_list`` row, its ``status_history`` rows and ``sla_outcomes`` rows."""
    rng = random.Random(seed)
    states = _states(container)
    for _ in range(count):
        case_type = rng.choice(CASE_TYPES)
        working, final, initial = states[case_type]
        is_open = rng.random() < OPEN_SHARE
        # Open cases were opened in the last three weeks; the others over two years.
        age_days = rng.uniform(0.01, 21) if is_open else rng.uniform(1, 2 * 365)
        opened = now - timedelta(days=age_days)
        path = [initial, *rng.sample(working, k=min(len(working), rng.randint(0, 3)))]
        if not is_open:
            path.append(rng.choice(final))
        case_id = uuid4()
        lived = (now - opened) if is_open else timedelta(days=rng.uniform(0.1, 60))
        history, moments = [], sorted(opened + lived * rng.random() for _ in path[1:])
        entered = [opened, *moments]
        for seq, (status, at) in enumerate(zip(path, entered, strict=True), start=1):
            history.append(
                {
                    "case_id": case_id,
                    "seq": seq,
                    "case_type": case_type,
                    "status": status,
                    "kind": "opened" if seq == 1 else "transition",
                    "transition": None if seq == 1 else f"to_{status}",
                    "from_status": path[seq - 2] if seq > 1 else None,
                    "entered_at": at,
                    "left_at": entered[seq] if seq < len(path) else None,
                    "actor_id": rng.choice(HANDLERS),
                    "actor_role": "handler",
                    "reason": None,
                    "final": not is_open and seq == len(path),
                    "case_version": seq,
                    "closes": not is_open and seq == len(path),
                }
            )
        slas = {"respond": _clock(rng, opened, now), "resolve": _clock(rng, opened, now)}
        slas = slas if is_open else {}
        outcomes = [
            {
                "case_id": case_id,
                "sla": sla,
                "run": 1,
                "milestone": "started",
                "case_type": case_type,
                "outcome": "started",
                "due_at": datetime.fromisoformat(clock["deadline"]),
                "at": opened,
            }
            for sla, clock in slas.items()
        ]
        deadlines = [datetime.fromisoformat(c["deadline"]) for c in slas.values()]
        notes = [_text(rng, 12) for _ in range(rng.randint(0, 3))]
        title = _text(rng, 4)
        priority = rng.choice(PRIORITIES)
        row = {
            "case_id": case_id,
            "case_type": case_type,
            "case_type_version": 1,
            "title": title,
            "status": path[-1],
            "assignee": rng.choice(HANDLERS) if rng.random() < 0.8 else None,
            "party_id": f"P-{rng.randrange(20_000):05d}",
            "version": len(path) + len(notes),
            "opened_at": opened,
            "updated_at": entered[-1],
            "last_position": 0,
            "priority": priority,
            "queue": rng.choice(QUEUES),
            "escalations": 0,
            "sla_breaches": sum(1 for c in slas.values() if c["breached"]),
            "fields": json.dumps({"summary": _text(rng, 6)}),
            "closed_at": None if is_open else entered[-1],
            "final": not is_open,
            "reopened": 0,
            "notes": len(notes),
            "source": None,
            "slas": json.dumps(slas),
            "sla_deadline": min(deadlines) if deadlines else None,
            "sla_at_risk_at": min(
                (datetime.fromisoformat(c["at_risk_at"]) for c in slas.values()), default=None
            ),
            "priority_rank": PRIORITY_RANK[priority],
            "search_text": title,
            "note_text": "\n".join(notes),
        }
        yield row, history, outcomes


def load(container: Container, count: int, now: datetime) -> None:
    """COPY ``count`` cases into the read-model tables, then analyse them."""
    tables = {t.name: [c.name for c in t.columns] for t in (CASE_LIST, STATUS_HISTORY)}
    tables[SLA_OUTCOMES.name] = [c.name for c in SLA_OUTCOMES.columns]
    started = time.perf_counter()
    pool = container.pool
    # One connection per table: a connection holds one COPY at a time.
    with (
        pool.connection() as one,
        pool.connection() as two,
        pool.connection() as three,
        one.cursor().copy(_copy_sql("case_list", tables["case_list"])) as cases,
        two.cursor().copy(_copy_sql("status_history", tables["status_history"])) as stays,
        three.cursor().copy(_copy_sql("sla_outcomes", tables["sla_outcomes"])) as clocks,
    ):
        for row, history, outcomes in generate(container, count, now):
            cases.write_row([row[c] for c in tables["case_list"]])
            for stay in history:
                stays.write_row([stay[c] for c in tables["status_history"]])
            for outcome in outcomes:
                clocks.write_row([outcome[c] for c in tables["sla_outcomes"]])
    with container.pool.connection() as conn:
        conn.autocommit = True
        for table in tables:
            conn.execute(f"VACUUM ANALYZE {table}".encode())
        conn.autocommit = False
    CONSOLE.print(f"  loaded {count:,} cases in {time.perf_counter() - started:,.1f} s (COPY)")


def _copy_sql(table: str, columns: list[str]) -> bytes:
    return f"COPY {table} ({', '.join(columns)}) FROM STDIN".encode()


# --- timing ---------------------------------------------------------------------------------


def timed(query: Callable[[], object], rounds: int) -> list[float]:
    """Milliseconds of each of ``rounds`` runs (after two warm-up runs)."""
    for _ in range(2):
        query()
    spent = []
    for _ in range(rounds):
        start = time.perf_counter()
        query()
        spent.append((time.perf_counter() - start) * 1000)
    return spent


def report(group: str, queries: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Time each query and print its p50 and p99; answers each p99."""
    p99s = {}
    for label, query in queries.items():
        spent = timed(query, rounds)
        p50, p99s[label] = percentile(spent, 50), percentile(spent, 99)
        flag = "" if p99s[label] < TARGET_MS else "  [red]over the target[/]"
        CONSOLE.print(f"  {group:9} {label:40} p50 {p50:7.2f} ms   p99 {p99s[label]:7.2f} ms{flag}")
    return p99s


def _queries(
    container: Container, models: ReadModels
) -> dict[str, dict[str, Callable[[], object]]]:
    store = container.case_list
    english = ("en",)
    first = store.list_cases(CaseFilter(), 50, None)
    second: PageCursor | None = first.next_cursor
    word = WORDS[7]

    def counts(by: CountBy) -> Callable[[], object]:
        return lambda: models.counts(by, None, english)

    dashboard: dict[str, Callable[[], object]] = {
        f"counts by {by}": counts(by) for by in ("status", "case_type", "assignee", "queue")
    }
    dashboard |= {
        "sla-status at_risk (first 50)": lambda: models.sla_status("at_risk", SlaWhere(), 50, None),
        "sla-status breached (first 50)": lambda: models.sla_status(
            "breached", SlaWhere(), 50, None
        ),
        "sla-status one queue, any state": lambda: models.sla_status(
            None, SlaWhere(queue="review"), 50, None
        ),
        "cycle-times by case_type": lambda: models.cycle_times("case_type", None),
        "cycle-times by state, one case type": lambda: models.cycle_times("state", "generic"),
        "cycle-times by month, one case type": lambda: models.cycle_times("month", "generic"),
        "throughput 30 days": lambda: models.throughput(30, None),
        "workload by assignee": lambda: models.workload("assignee", english),
        "workload by queue": lambda: models.workload("queue", english),
    }
    search: dict[str, Callable[[], object]] = {
        "newest first (first page)": lambda: store.list_cases(CaseFilter(), 50, None),
        "newest first (second page, cursor)": lambda: store.list_cases(CaseFilter(), 50, second),
        "full text q=<a word>": lambda: store.list_cases(CaseFilter(q=word), 50, None),
        "full text q=<two words>": lambda: store.list_cases(
            CaseFilter(q=f"{word} {WORDS[8]}"), 50, None
        ),
        "q=<a party id>": lambda: store.list_cases(CaseFilter(q="P-01234"), 50, None),
        "status + case type": lambda: store.list_cases(
            CaseFilter(case_type="insurance_claim", status="under_review"), 50, None
        ),
        "open, by urgency (sla_deadline)": lambda: store.list_cases(
            CaseFilter(final=False, sort="sla_deadline"), 50, None
        ),
        "a handler's open cases by urgency": lambda: store.list_cases(
            CaseFilter(assignee="handler07", final=False, sort="sla_deadline"), 50, None
        ),
        "by priority": lambda: store.list_cases(CaseFilter(sort="priority"), 50, None),
        "latest change first (updated_at)": lambda: store.list_cases(
            CaseFilter(sort="updated_at"), 50, None
        ),
        "sla_state=breached": lambda: store.list_cases(CaseFilter(sla_state="breached"), 50, None),
    }
    return {"dashboard": dashboard, "search": search}


def _baselines(container: Container) -> dict[str, Callable[[], object]]:
    with container.pool.connection() as conn:
        row = conn.execute("SELECT case_id FROM case_list LIMIT 1").fetchone()
    assert row is not None
    some: UUID = row["case_id"]

    def select_one() -> object:
        with container.pool.connection() as conn:
            return conn.execute("SELECT 1").fetchone()

    def by_key() -> object:
        with container.pool.connection() as conn:
            return conn.execute("SELECT * FROM case_list WHERE case_id = %s", (some,)).fetchone()

    return {"SELECT 1 round trip": select_one, PK_LOOKUP: by_key}


def run(scale: Scale) -> list[Figure]:
    CONSOLE.rule("[bold]read models: dashboard and search query latency vs a raw lookup")
    count, rounds = cases_for(scale), rounds_for(scale)
    with bench_environment(NAME) as env:
        container = env.container
        install_case_types(container.case_types, SAMPLE_CASE_TYPES)
        now = datetime.now(UTC)
        load(container, count, now)
        models = ReadModels(ReadModelStore(container.pool), container.case_types)
        baseline = report("baseline", _baselines(container), rounds)[PK_LOOKUP]
        queries = _queries(container, models)
        dashboard = max(report("dashboard", queries["dashboard"], rounds).values())
        search = max(report("search", queries["search"], rounds).values())
    figures = [
        Figure(NAME, f"dashboard query p99 ({count:,} cases)", dashboard, "ms",
               "primary-key lookup p99", baseline, higher_is_better=False),
        Figure(NAME, f"search query p99 ({count:,} cases)", search, "ms",
               "primary-key lookup p99", baseline, higher_is_better=False),
    ]  # fmt: skip
    for figure in figures:
        print_figure(figure)
    return figures


if __name__ == "__main__":
    run_alone(run)
