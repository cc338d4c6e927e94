"""One event the view cannot take never stops the projection (issue 7, finding 2).

A NUL character in a notification was stored in the event (JSON escapes it), but the outbox's
``jsonb`` column refuses it: the projector exited, and exited again at every restart. Such an
event is now set aside with its error and passed over; everything else is applied.
"""

from __future__ import annotations

from uuid import UUID, uuid4

from domain.rules import RuleRun
from infra.bootstrap import Container, build_projector
from services.queries import CaseFilter
from tests.integration.helpers import CTX, open_cases, running, wait_until


def _poisoned_notification(container: Container, case_id: UUID) -> None:
    """Store a notification whose body PostgreSQL's jsonb cannot hold, as the domain did
    before templates' output was checked."""

    def command(run: RuleRun) -> None:
        case = run.case
        case._on_notification_requested(
            notification_id=str(uuid4()),
            notification="poisoned",
            channel="webhook",
            recipients=[],
            subject=None,
            body="before\x00after",
            target="http://example.invalid/hook",
            context=case.stamp(CTX.as_dict()),
        )

    container.ledger.run_command(case_id, None, CTX, command)


def _set_aside(container: Container) -> list[dict[str, object]]:
    with container.pool.connection() as conn:
        return conn.execute(
            "SELECT case_id, case_version, event_type, error FROM projection_dead_letters"
        ).fetchall()


def _versions(container: Container, projection: str) -> dict[UUID, tuple[int, int | None]]:
    with container.pool.connection() as conn:
        rows = conn.execute(
            f"SELECT case_id, version, blocked_version FROM {projection}_versions"
        ).fetchall()
    return {r["case_id"]: (r["version"], r["blocked_version"]) for r in rows}


def test_a_poison_event_holds_only_its_case_in_that_projection(container: Container) -> None:
    [poisoned, healthy] = [UUID(c) for c in open_cases(container, 2)]
    _poisoned_notification(container, poisoned)
    container.ledger.add_note(poisoned, "after the poison", CTX, None)
    container.ledger.add_note(healthy, "unaffected", CTX, None)
    events, _ = container.reader.read_log(0, 1_000)

    results = container.projections.apply_batch(events)

    # The outbox cannot hold the NUL: the work queues hold the case at version 1, and its
    # note (version 3) waits behind the poison; the case list and the history move on.
    assert results["work_queues"].set_aside == 1
    assert _versions(container, "work_queues") == {poisoned: (1, 2), healthy: (2, None)}
    assert _versions(container, "case_list") == {poisoned: (3, None), healthy: (2, None)}
    [aside] = _set_aside(container)
    assert (aside["case_id"], aside["case_version"]) == (poisoned, 2)
    assert aside["event_type"] == "CaseNotificationRequested"
    assert "\\u0000" in str(aside["error"]) or "NUL" in str(aside["error"]).upper()
    rows = {
        r.case_id: r.version for r in container.case_list.list_cases(CaseFilter(), 10, None).cases
    }
    assert rows == {str(poisoned): 3, str(healthy): 2}
    assert container.work_queues.work_waiting()["events_set_aside"] == 1
    again = container.projections.apply_batch(events)  # a redelivery changes nothing
    assert sum(r.applied for r in again.values()) == 0
    assert len(_set_aside(container)) == 1
    # The store sweep does not apply the held case's later events either.
    assert container.projections.catch_up_from_store(container.reader.head(), 1_000) == 0
    assert _versions(container, "work_queues")[poisoned] == (1, 2)


def test_the_worker_keeps_going_past_a_poison_event(container: Container) -> None:
    [poisoned] = [UUID(c) for c in open_cases(container, 1)]
    _poisoned_notification(container, poisoned)
    later = [UUID(c) for c in open_cases(container, 3)]
    with running(container.relay.run), running(build_projector(container).run):
        wait_until(
            lambda: len(container.case_list.list_cases(CaseFilter(), 10, None).cases) == 4,
            timeout=60,
            what="the cases opened after the poison event in the view",
        )
    assert len(_set_aside(container)) == 1
    assert len(later) == 3
