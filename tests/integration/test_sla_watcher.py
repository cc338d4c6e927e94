"""The SLA watcher in process: paused clocks, stopped clocks and racing watchers record each
milestone once. Watchers as real processes killed around deadlines: test_sla.py."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

from domain.case import Case
from domain.context import CommandContext
from infra.bootstrap import Container, build_projector
from infra.sla_watcher import SlaWatcher
from services.case_type_document import read_document
from tests.integration.helpers import CTX, running, wait_until

PROBE = """
name: sla_probe
labels: {en: SLA probe}
calendar: {always: true}
states:
  open: {initial: true, labels: {en: Open}}
  on_hold: {labels: {en: On hold}}
  done: {final: true, labels: {en: Done}}
transitions:
  hold: {from: open, to: on_hold}
  resume: {from: on_hold, to: open}
  finish: {from: [open, on_hold], to: done}
slas:
  - name: respond
    deadline: DEADLINE
    warn_at: [50]
    paused_in: [on_hold]
    on_breach:
      - escalate: too slow
      - set_priority: urgent
"""


def install_probe(container: Container, deadline: str) -> None:
    document = read_document(PROBE.replace("DEADLINE", deadline).encode(), "application/yaml")
    container.case_types.install(document, "test", CommandContext("test", "admin"))


def sla_events(container: Container, case_id: UUID) -> Counter[str]:
    counted: Counter[str] = Counter()
    for event in container.ledger.history(case_id):
        if isinstance(event, Case.SlaWarned):
            counted[f"warned {event.milestone}"] += 1
        elif isinstance(event, Case.SlaBreached):
            counted["breached"] += 1
        elif isinstance(event, Case.Escalated):
            counted["escalated"] += 1
    return counted


def breached(container: Container, case_id: UUID) -> bool:
    return sla_events(container, case_id)["breached"] > 0


def test_a_paused_clock_does_not_fire_and_fires_later_once_resumed(
    container: Container,
) -> None:
    install_probe(container, "2s")
    watcher = SlaWatcher(container.ledger, container.work_queues, poll_s=0.05)
    with running(container.relay.run), running(build_projector(container).run):
        case = container.ledger.open_case("sla_probe", "paused", {}, None, CTX)
        container.ledger.transition(case.id, "hold", "waiting for a part", {}, CTX, None)
        with running(watcher.run):
            time.sleep(3)
            assert sla_events(container, case.id) == {}
            container.ledger.transition(case.id, "resume", None, {}, CTX, None)
            resumed = time.monotonic()
            wait_until(lambda: breached(container, case.id), 15, "the breach after resuming")
            assert time.monotonic() - resumed >= 1.5  # the 2 s restart from almost nothing
    assert sla_events(container, case.id)["breached"] == 1


def test_a_clock_stopped_before_its_deadline_never_fires(container: Container) -> None:
    install_probe(container, "1s")
    watcher = SlaWatcher(container.ledger, container.work_queues, poll_s=0.05)
    with running(container.relay.run), running(build_projector(container).run):
        case = container.ledger.open_case("sla_probe", "quick", {}, None, CTX)
        container.ledger.transition(case.id, "finish", None, {}, CTX, None)
        with running(watcher.run):
            time.sleep(2.5)
    history = container.ledger.history(case.id)
    stopped = [e for e in history if isinstance(e, Case.SlaStopped)]
    assert [(e.sla, e.met) for e in stopped] == [("respond", True)]
    assert sla_events(container, case.id) == {}
    with container.pool.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM sla_timers").fetchone() == {"n": 0}


def test_watchers_racing_on_the_same_due_timer_record_it_once(container: Container) -> None:
    """Eight watchers (separate processes would behave alike: they share nothing but the
    database) see the same due timer at the same moment, and again before the view drops it."""
    install_probe(container, "1s")
    case = container.ledger.open_case("sla_probe", "raced", {}, None, CTX)
    container.projections.catch_up_from_store(container.reader.head(), 1_000)
    time.sleep(1.2)
    watchers = [SlaWatcher(container.ledger, container.work_queues, poll_s=1) for _ in range(8)]
    start = threading.Barrier(len(watchers))

    def race(watcher: SlaWatcher) -> int:
        start.wait()
        return watcher.run_once()

    with ThreadPoolExecutor(len(watchers)) as pool:
        recorded = sum(pool.map(race, watchers))
    fresh = SlaWatcher(container.ledger, container.work_queues, poll_s=1)
    recorded += fresh.run_once()  # the view has not caught up: the timers are still there
    assert recorded == 2  # the warning and the breach, each by one watcher
    assert sla_events(container, case.id) == {
        "warned warning:50": 1,
        "breached": 1,
        "escalated": 1,
    }
