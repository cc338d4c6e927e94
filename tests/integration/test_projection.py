"""The case-list projection applies each case version exactly once, whatever happens."""

from __future__ import annotations

import signal
from uuid import UUID

import pytest

from domain.envelope import EventEnvelope
from infra.bootstrap import Container, build_projector
from infra.embedded import EmbeddedBroker
from infra.settings import Settings
from tests.integration.helpers import (
    CTX,
    open_cases,
    running,
    spawn,
    stop_process,
    store_versions,
    view_rows,
    wait_until,
)


def all_envelopes(container: Container) -> list[EventEnvelope]:
    envelopes, _ = container.reader.read_log(0, 100_000)
    return envelopes


def rebuilt_view(container: Container) -> dict[str, tuple[int, str, str | None]]:
    """What the view must hold: each case's state rebuilt from the store alone."""
    rows = {}
    for case_id in store_versions(container):
        case = container.ledger.get_case(UUID(case_id))
        rows[case_id] = (case.version, case.status, case.assignee)
    return rows


def test_duplicates_are_skipped_and_the_view_matches_the_store(container: Container) -> None:
    [case_id] = open_cases(container, 1, notes=2)
    container.ledger.assign(UUID(case_id), "bob", CTX, None)
    events = all_envelopes(container)
    first = container.projections.runner("case_list").apply_batch(events)
    again = container.projections.runner("case_list").apply_batch(events + events[:2])
    assert (first.applied, first.skipped) == (4, 0)
    assert (again.applied, again.skipped) == (0, 6)
    assert view_rows(container) == rebuilt_view(container)
    assert container.projections.state("case_list")["applied_events"] == 4


def test_a_version_gap_is_filled_from_the_event_store(container: Container) -> None:
    open_cases(container, 2, notes=3)
    latest_only = [e for e in all_envelopes(container) if e.case_version == 4]
    result = container.projections.runner("case_list").apply_batch(latest_only)
    assert (result.applied, result.filled) == (8, 6)
    assert view_rows(container) == rebuilt_view(container)


def test_the_worker_follows_the_topic(container: Container) -> None:
    open_cases(container, 10, notes=1)
    with running(container.relay.run), running(build_projector(container).run):
        wait_until(lambda: container.projections.lag() == 0, 60, "the projection")
        [case_id] = open_cases(container, 1)
        container.ledger.assign(UUID(case_id), "ann", CTX, None)
        wait_until(lambda: view_rows(container).get(case_id, (0,))[0] == 2, 60, "new event")
    assert view_rows(container) == rebuilt_view(container)


def test_worker_killed_mid_batch_applies_every_event_exactly_once(
    container: Container, settings: Settings
) -> None:
    open_cases(container, 300, notes=3)  # 1,200 events
    settings = settings.model_copy(update={"projection_batch_size": 20})  # many transactions
    relay = spawn("relay", settings)
    worker = spawn("project", settings)
    try:
        wait_until(
            lambda: container.projections.state("case_list")["applied_events"] > 0,
            90,
            "a first batch",
        )
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        assert container.projections.lag() > 0, "the worker finished before it was killed"
        worker = spawn("project", settings)
        wait_until(lambda: container.projections.lag() == 0, 120, "the projection to catch up")
    finally:
        stop_process(worker)
        stop_process(relay)
    assert view_rows(container) == rebuilt_view(container)
    assert container.projections.state("case_list")["applied_events"] == 1_200  # none applied twice


@pytest.mark.slow  # 14 s; the default run keeps the broker outages of test_broker_outage.py
def test_a_wiped_broker_mid_stream_heals_from_the_store(
    container: Container, settings: Settings, broker: EmbeddedBroker
) -> None:
    open_cases(container, 100, notes=2)
    relay = spawn("relay", settings)
    worker = spawn("project", settings)
    try:
        wait_until(
            lambda: container.projections.state("case_list")["applied_events"] > 0,
            90,
            "a first batch",
        )
        broker.restart()  # an in-memory broker comes back empty: topics, data, offsets gone
        for case_id in open_cases(container, 20):
            container.ledger.add_note(UUID(case_id), "after the wipe", CTX, None)
        wait_until(lambda: container.projections.lag() == 0, 120, "the projection to heal")
    finally:
        stop_process(worker)
        stop_process(relay)
    assert view_rows(container) == rebuilt_view(container)
    assert container.projections.state("case_list")["applied_events"] == 340
