"""SLA deadlines end to end: each warning and breach is recorded once per clock run, however
the ``caseledger sla-watch`` processes are killed, restarted or doubled around the deadlines;
a paused clock does not fire and fires later by the time it was paused; a state SLA stops
when the case leaves its state; business hours decide when a deadline falls.

The kill tests run the real processes on the real clock (deadlines of a few seconds); the
others drive the real ledger, view and watcher on a simulated clock, so their instants are
exact and nothing waits for hours to pass.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from domain.case import Case
from domain.context import CommandContext
from infra.bootstrap import Container
from infra.settings import Settings
from infra.sla_watcher import SlaWatcher
from services.auth import Role
from tests.conftest import auth, settings_env
from tests.integration.helpers import CTX, open_cases, spawn, stop_process, wait_until

ADMIN = CommandContext("tester", "admin")
TICK = timedelta(microseconds=1)


# -- case types ----------------------------------------------------------------------------


def respond(deadline: str, **more: Any) -> dict[str, Any]:
    """A case-level SLA that warns half-way, pauses on hold, and escalates on breach."""
    return {
        "name": "respond",
        "deadline": deadline,
        "warn_at": [50],
        "paused_in": ["on_hold"],
        "on_breach": [
            {"escalate": {"reason": "respond SLA breached", "queue": "supervisors"}},
            {"set_priority": "urgent"},
        ],
        **more,
    }


def install(
    container: Container, slas: list[dict[str, Any]], calendar: dict[str, Any] | None = None
) -> str:
    """Publish a small case type with ``slas``; answers its name."""
    document = {
        "name": "sla_probe",
        "labels": {"en": "SLA probe"},
        "calendar": calendar or {"always": True},
        "states": {
            "open": {"initial": True},
            "working": {},
            "on_hold": {},
            "done": {"final": True},
        },
        "transitions": {
            "start": {"from": "open", "to": "working"},
            "back": {"from": "working", "to": "open"},
            "hold": {"from": ["open", "working"], "to": "on_hold"},
            "resume": {"from": "on_hold", "to": "working"},
            "finish": {"from": ["open", "working", "on_hold"], "to": "done"},
        },
        "slas": slas,
    }
    container.case_types.install(document, "SLA test", ADMIN)
    return "sla_probe"


# -- what the case and the view hold -------------------------------------------------------


def fired(container: Container, case_id: UUID) -> Counter[tuple[Any, ...]]:
    """Each warning and breach by (kind, SLA, clock run, milestone), and the escalations."""
    counted: Counter[tuple[Any, ...]] = Counter()
    for event in container.ledger.history(case_id):
        if isinstance(event, Case.SlaWarned):
            counted["warned", event.sla, event.run, event.milestone] += 1
        elif isinstance(event, Case.SlaBreached):
            counted["breached", event.sla, event.run, "deadline"] += 1
        elif isinstance(event, Case.Escalated):
            counted["escalated", event.reason] += 1
    return counted


def breached(container: Container, case_id: UUID) -> bool:
    return any(kind == "breached" for kind, *_ in fired(container, case_id))


def clock_events(container: Container, case_id: UUID, kind: type[Case.Event]) -> list[Any]:
    return [e for e in container.ledger.history(case_id) if isinstance(e, kind)]


def started(container: Container, case_id: UUID, sla: str = "respond") -> Case.SlaStarted:
    """The first start of the SLA's clock on the case."""
    for event in container.ledger.history(case_id):
        if isinstance(event, Case.SlaStarted) and event.sla == sla:
            return event
    raise AssertionError(f"the {sla} clock never started on case {case_id}")


def timers(container: Container, case_id: UUID) -> dict[tuple[str, str], tuple[int, datetime]]:
    """(SLA, milestone) -> (run, due) as the ``sla_timers`` view holds them for the case."""
    with container.pool.connection() as conn:
        rows = conn.execute(
            "SELECT sla, milestone, run, due_at FROM sla_timers WHERE case_id = %s", (case_id,)
        ).fetchall()
    return {(r["sla"], r["milestone"]): (r["run"], r["due_at"]) for r in rows}


def sync_view(container: Container) -> None:
    """Apply every stored event to the view (the projection's own catch-up path)."""
    container.projections.catch_up_from_store(container.reader.head(), 10_000)


def due(event: Case.SlaStarted | Case.SlaResumed) -> dict[str, datetime]:
    return {m: datetime.fromisoformat(at) for m, at in event.due.items()}


# -- real processes ------------------------------------------------------------------------


@dataclass
class Watcher:
    """A ``caseledger sla-watch`` process logging at DEBUG level to its own file."""

    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def said(self, text: str) -> bool:
        return text in self.log.read_text(errors="replace")

    def attempts_on(self, case_id: UUID) -> list[str]:
        """The log lines saying the watcher recorded, or found nothing to record, for the case."""
        return [
            line
            for line in self.log.read_text(errors="replace").splitlines()
            if f"of case {case_id}" in line and ("recorded SLA" in line or "nothing to" in line)
        ]


@dataclass
class Stack:
    """The relay and projection processes (SIGSTOP the projection to hold the view still: it
    would otherwise follow the store even without the relay), and every watcher process
    started; all stopped when the test ends."""

    settings: Settings
    logs: Path
    relay: subprocess.Popen[bytes]
    projector: subprocess.Popen[bytes]
    watchers: list[Watcher] = field(default_factory=list)

    def watcher(self) -> Watcher:
        log = self.logs / f"watcher-{len(self.watchers)}.log"
        env = {**settings_env(self.settings), "CASELEDGER_LOG_LEVEL": "DEBUG"}
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "infra.cli", "sla-watch"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=out,
            )
        self.watchers.append(Watcher(process, log))
        return self.watchers[-1]

    def freeze_view(self) -> None:
        """Stop the projection: the view (and its timers) stays as it is until ``thaw_view``."""
        self.projector.send_signal(signal.SIGSTOP)

    def thaw_view(self) -> None:
        self.projector.send_signal(signal.SIGCONT)


@pytest.fixture
def stack(container: Container, settings: Settings, tmp_path: Path) -> Iterator[Stack]:
    quick = settings.model_copy(update={"sla_poll_s": 0.1})
    started_stack = Stack(quick, tmp_path, spawn("relay", settings), spawn("project", settings))
    try:
        [warm_up] = open_cases(container, 1)  # the relay and the projection are ready
        wait_until(lambda: view_has(container, warm_up), 60, "the projection to start")
        yield started_stack
    finally:
        started_stack.thaw_view()
        for watcher in started_stack.watchers:
            stop_process(watcher.process)
        stop_process(started_stack.relay)
        stop_process(started_stack.projector)


def view_has(container: Container, case_id: str) -> bool:
    with container.pool.connection() as conn:
        row = conn.execute("SELECT 1 FROM case_list WHERE case_id = %s", (case_id,)).fetchone()
    return row is not None


def sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


def all_started(watchers: list[Watcher]) -> bool:
    return all(w.said("sla-watcher started") for w in watchers)


def recorded_line(case_id: UUID, milestone: str) -> str:
    return f"recorded SLA respond {milestone} of case {case_id}"


def refused_line(case_id: UUID, milestone: str) -> str:
    return f"SLA respond {milestone} of case {case_id}: nothing to record"


def assert_fired_once(container: Container, case_id: UUID) -> None:
    """One warning and one breach of the case's single clock run, one escalation, and the
    breach's actions applied; the breach never came before its due time."""
    run = started(container, case_id).run
    assert fired(container, case_id) == {
        ("warned", "respond", run, "warning:50"): 1,
        ("breached", "respond", run, "deadline"): 1,
        ("escalated", "respond SLA breached"): 1,
    }, case_id
    case = container.ledger.get_case(case_id)
    assert (case.priority, case.queue, case.escalations) == ("urgent", "supervisors", 1)
    [breach] = clock_events(container, case_id, Case.SlaBreached)
    assert breach.timestamp >= datetime.fromisoformat(breach.due_at)


# -- the watcher as a process: killed, restarted, doubled ------------------------------------


def test_a_watcher_killed_before_the_deadline_and_restarted_after_records_it_once(
    container: Container, stack: Stack
) -> None:
    install(container, [respond("4s")])
    first = stack.watcher()
    wait_until(lambda: first.said("sla-watcher started"), 30, "the first watcher to start")
    case_id = container.ledger.open_case("sla_probe", "A", {}, None, CTX).id
    deadline = due(started(container, case_id))["deadline"]
    wait_until(lambda: ("respond", "deadline") in timers(container, case_id), 10, "the timers")
    wait_until(lambda: first.said(recorded_line(case_id, "warning:50")), 10, "the warning")
    wait_until(lambda: len(timers(container, case_id)) == 1, 10, "the view to drop the warning")

    sleep_until(deadline - timedelta(seconds=0.5))
    first.kill()  # just before the deadline
    assert not breached(container, case_id), "breached before its deadline"
    stack.freeze_view()  # from now on the view keeps the deadline's timer
    sleep_until(deadline + timedelta(seconds=0.2))
    assert not breached(container, case_id), "nobody was watching"

    second = stack.watcher()  # restarted after the deadline: records the breach
    wait_until(lambda: second.said(recorded_line(case_id, "deadline")), 30, "the breach")
    second.kill()
    assert breached(container, case_id)
    third = stack.watcher()  # finds the timer still in the view, and records nothing
    wait_until(lambda: bool(third.attempts_on(case_id)), 30, "the third watcher to try")
    third.kill()
    [attempt] = third.attempts_on(case_id)
    assert refused_line(case_id, "deadline") in attempt, attempt
    assert ("respond", "deadline") in timers(container, case_id)  # the view was still behind

    stack.thaw_view()
    wait_until(lambda: not timers(container, case_id), 30, "the view to drop the timers")
    assert_fired_once(container, case_id)


@pytest.mark.slow  # ~35 s of random kills; the single-kill proofs above run in make test
def test_watchers_killed_and_restarted_again_and_again_record_each_deadline_once(
    container: Container, stack: Stack
) -> None:
    install(container, [respond("3s")])
    ids: list[UUID] = []
    rng = random.Random(20261128)
    give_up = time.monotonic() + 90
    while len(ids) < 6 or not all(breached(container, case_id) for case_id in ids):
        assert time.monotonic() < give_up, "the watchers never recorded every breach"
        if len(ids) < 6:  # one more case per round: deadlines spread over several rounds
            ids.append(container.ledger.open_case("sla_probe", "case", {}, None, CTX).id)
        frozen = rng.random() < 0.5
        if frozen:  # the next watchers meet timers their predecessors recorded already
            stack.freeze_view()
        alive = [stack.watcher() for _ in range(rng.choice((1, 1, 2)))]  # sometimes two
        wait_until(  # a busy machine takes seconds to start Python: count from the start
            partial(all_started, alive),
            30,
            "the watchers to start",
        )
        time.sleep(rng.uniform(0.3, 2.0))  # dies connecting, polling, or recording
        for watcher in alive:
            watcher.kill()
        stack.thaw_view()
    wait_until(lambda: not any(timers(container, i) for i in ids), 30, "the view to catch up")
    for case_id in ids:
        assert_fired_once(container, case_id)
    recorders = [w for w in stack.watchers if w.said("recorded SLA")]
    assert len(recorders) >= 2, "one watcher did all the work: nothing was killed mid-way"


def test_two_watchers_on_the_same_due_timers_record_each_once(
    container: Container, stack: Stack
) -> None:
    install(container, [respond("4s")])
    ids = [container.ledger.open_case("sla_probe", f"case {i}", {}, None, CTX).id for i in range(3)]
    wait_until(lambda: all(len(timers(container, i)) == 2 for i in ids), 10, "the timers")
    stack.freeze_view()  # both watchers keep seeing every timer, even once it is recorded
    pair = [stack.watcher(), stack.watcher()]

    def both_tried_everything() -> bool:
        return all(len(w.attempts_on(i)) == 2 for w in pair for i in ids)

    wait_until(both_tried_everything, 30, "both watchers to try every warning and deadline")
    for case_id in ids:
        for milestone in ("warning:50", "deadline"):
            outcomes = sorted(
                "recorded" if w.said(recorded_line(case_id, milestone)) else "refused"
                for w in pair
                if w.said(recorded_line(case_id, milestone))
                or w.said(refused_line(case_id, milestone))
            )
            assert outcomes == ["recorded", "refused"], (case_id, milestone)
    stack.thaw_view()
    wait_until(lambda: not any(timers(container, i) for i in ids), 30, "the view to catch up")
    for case_id in ids:
        assert_fired_once(container, case_id)


# -- clocks that pause and stop, on a simulated clock ---------------------------------------


class SimulatedClock:
    """The time the ledger and the watcher read; tests move it on."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(container: Container) -> SimulatedClock:
    simulated = SimulatedClock(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    container.ledger.clock = simulated
    return simulated


def watch_at(container: Container, clock: SimulatedClock) -> Callable[[datetime], int]:
    """A watcher; calling the answer polls once at the given instant, then updates the view."""
    watcher = SlaWatcher(container.ledger, container.work_queues, poll_s=1, clock=clock)

    def poll(moment: datetime) -> int:
        clock.now = moment
        recorded = watcher.run_once()
        sync_view(container)
        return recorded

    return poll


def test_a_paused_clock_does_not_fire_and_fires_later_by_the_time_it_was_paused(
    container: Container, clock: SimulatedClock
) -> None:
    install(container, [respond("10m")])
    poll = watch_at(container, clock)
    t0 = clock.now
    case_id = container.ledger.open_case("sla_probe", "paused", {}, None, CTX).id
    sync_view(container)
    run = started(container, case_id).run
    assert timers(container, case_id) == {
        ("respond", "warning:50"): (run, t0 + timedelta(minutes=5)),
        ("respond", "deadline"): (run, t0 + timedelta(minutes=10)),
    }

    clock.now = t0 + timedelta(minutes=3)
    container.ledger.transition(case_id, "hold", "waiting for a part", {}, CTX, None)
    sync_view(container)
    [paused] = clock_events(container, case_id, Case.SlaPaused)
    assert paused.worked_seconds == 180.0
    assert timers(container, case_id) == {}
    for later in (timedelta(minutes=5), timedelta(minutes=10), timedelta(days=1)):
        assert poll(t0 + later) == 0  # the original times pass, and a whole day, unnoticed
    assert fired(container, case_id) == {}

    resumed_at = t0 + timedelta(days=1)
    container.ledger.transition(case_id, "resume", None, {}, CTX, None)
    sync_view(container)
    [resumed] = clock_events(container, case_id, Case.SlaResumed)
    shifted = {
        "warning:50": resumed_at + timedelta(minutes=2),
        "deadline": resumed_at + timedelta(minutes=7),
    }
    assert (resumed.run, due(resumed)) == (run, shifted)  # 10 minutes less the 3 worked
    assert timers(container, case_id) == {("respond", m): (run, at) for m, at in shifted.items()}

    assert poll(shifted["warning:50"] - TICK) == 0
    assert poll(shifted["warning:50"]) == 1
    assert poll(shifted["deadline"] - TICK) == 0
    assert poll(shifted["deadline"]) == 1
    assert poll(shifted["deadline"] + timedelta(hours=1)) == 0
    assert_fired_once(container, case_id)
    [breach] = clock_events(container, case_id, Case.SlaBreached)
    assert datetime.fromisoformat(breach.due_at) == shifted["deadline"]


def test_a_milestone_refused_while_paused_fires_at_its_new_time_once_resumed(
    container: Container, clock: SimulatedClock
) -> None:
    """The watcher sees a timer the view has not yet dropped for a paused clock; the case
    refuses it; after the resume the re-timed milestone must not wait for that refusal to be
    forgotten (30 s) but fire at its new time."""
    install(container, [respond("10m")])
    poll = watch_at(container, clock)
    t0 = clock.now
    case_id = container.ledger.open_case("sla_probe", "stale", {}, None, CTX).id
    sync_view(container)
    clock.now = t0 + timedelta(minutes=3)
    container.ledger.transition(case_id, "hold", None, {}, CTX, None)
    watcher = SlaWatcher(container.ledger, container.work_queues, poll_s=1, clock=clock)
    clock.now = t0 + timedelta(minutes=20)
    assert len(timers(container, case_id)) == 2  # the view still runs the old clock
    assert watcher.run_once() == 0  # the case refuses both: its clock is paused
    container.ledger.transition(case_id, "resume", None, {}, CTX, None)
    sync_view(container)
    clock.now = t0 + timedelta(minutes=27)  # the new deadline: 20 + 10 - 3
    assert watcher.run_once() == 2
    sync_view(container)
    assert poll(clock.now) == 0
    assert_fired_once(container, case_id)


def test_a_state_sla_stops_when_the_case_leaves_the_state_and_restarts_on_return(
    container: Container, clock: SimulatedClock
) -> None:
    pickup = {"name": "pickup", "state": "open", "deadline": "5m"}
    install(container, [{**pickup, "on_breach": [{"escalate": "not picked up"}]}])
    poll = watch_at(container, clock)
    t0 = clock.now
    case_id = container.ledger.open_case("sla_probe", "state", {}, None, CTX).id
    sync_view(container)
    first = started(container, case_id, "pickup").run
    assert timers(container, case_id) == {
        ("pickup", "deadline"): (first, t0 + timedelta(minutes=5))
    }

    clock.now = t0 + timedelta(minutes=2)
    container.ledger.transition(case_id, "start", None, {}, CTX, None)  # leaves "open"
    sync_view(container)
    assert [(e.sla, e.met) for e in clock_events(container, case_id, Case.SlaStopped)] == [
        ("pickup", True)
    ]
    assert timers(container, case_id) == {}
    assert poll(t0 + timedelta(minutes=10)) == 0  # the old deadline passes: no breach
    assert fired(container, case_id) == {}

    container.ledger.transition(case_id, "back", None, {}, CTX, None)  # a new run at +10 min
    sync_view(container)
    [_, again] = clock_events(container, case_id, Case.SlaStarted)
    assert again.run > first
    assert due(again) == {"deadline": t0 + timedelta(minutes=15)}
    assert poll(t0 + timedelta(minutes=15)) == 1
    assert fired(container, case_id) == {
        ("breached", "pickup", again.run, "deadline"): 1,
        ("escalated", "not picked up"): 1,
    }
    clock.now = t0 + timedelta(minutes=16)
    container.ledger.transition(case_id, "start", None, {}, CTX, None)
    stops = clock_events(container, case_id, Case.SlaStopped)
    assert [(e.sla, e.met) for e in stops] == [("pickup", True), ("pickup", False)]


# -- business hours ----------------------------------------------------------------------------

PARIS_OFFICE = {
    "timezone": "Europe/Paris",
    "hours": {day: ["09:00-12:00", "13:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-03-30"],
}


def test_deadlines_fall_in_business_hours_across_a_weekend_a_holiday_and_a_clock_change(
    container: Container, clock: SimulatedClock, client: TestClient, keys: dict[Role, str]
) -> None:
    """Opened on Friday 27 March 2026 at 16:00 in Paris (15:00 UTC), with one working hour
    left that day. The weekend, the holiday on Monday 30 and lunch do not count; Paris moves
    to summer time (UTC+2) on Sunday 29. So 2h30 of work fall on Tuesday at 10:30 local
    (08:30 UTC), 4h at the lunch break, 12:00 (10:00 UTC), 5h at 14:00 (12:00 UTC)."""
    install(container, [respond("5h", goal="4h")], calendar=PARIS_OFFICE)
    clock.now = datetime(2026, 3, 27, 15, 0, tzinfo=UTC)
    answer = client.post(
        "/cases",
        json={"case_type": "sla_probe", "title": "Friday afternoon"},
        headers=auth(keys[Role.HANDLER]),
    )
    assert answer.status_code == 201, answer.text
    case_id = UUID(answer.json()["id"])
    expected = {
        "warning:50": datetime(2026, 3, 31, 8, 30, tzinfo=UTC),
        "goal": datetime(2026, 3, 31, 10, 0, tzinfo=UTC),
        "deadline": datetime(2026, 3, 31, 12, 0, tzinfo=UTC),
    }
    start = started(container, case_id)
    assert start.due == {m: at.isoformat() for m, at in expected.items()}
    sync_view(container)
    assert timers(container, case_id) == {
        ("respond", m): (start.run, at) for m, at in expected.items()
    }
    shown = client.get(f"/cases/{case_id}", headers=auth(keys[Role.HANDLER])).json()["slas"]
    assert [datetime.fromisoformat(at) for at in shown[0]["due"].values()] == list(
        expected.values()
    )

    poll = watch_at(container, clock)
    for milestone, at in expected.items():
        assert poll(at - TICK) == 0, f"{milestone} fired early"
        assert poll(at) == 1, f"{milestone} did not fire at {at}"
    run = start.run
    assert fired(container, case_id) == {
        ("warned", "respond", run, "warning:50"): 1,
        ("warned", "respond", run, "goal"): 1,
        ("breached", "respond", run, "deadline"): 1,
        ("escalated", "respond SLA breached"): 1,
    }
