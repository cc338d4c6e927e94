"""Soak: two projection workers share the topic while one is killed again and again.

Slow (about a minute): `make test-all` runs it, `make test` does not.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from uuid import UUID

import pytest

from infra.bootstrap import Container
from infra.settings import Settings
from tests.integration.helpers import CTX, open_cases, spawn, stop_process, view_rows, wait_until
from tests.integration.test_projection import rebuilt_view

pytestmark = pytest.mark.slow


def test_two_workers_with_repeated_kills_apply_every_event_once(
    container: Container, settings: Settings
) -> None:
    settings = settings.model_copy(update={"projection_batch_size": 50})
    ids = [UUID(i) for i in open_cases(container, 200)]
    relay = spawn("relay", settings)
    workers = [spawn("project", settings), spawn("project", settings)]
    writing = threading.Event()
    writing.set()

    def write() -> None:
        rng = random.Random(7)
        while writing.is_set():
            case_id = rng.choice(ids)
            container.ledger.add_note(case_id, "soak", CTX, None)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(4):
            time.sleep(6)
            victim = random.randrange(2)
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait(10)
            workers[victim] = spawn("project", settings)
        writing.clear()
        writer.join(30)
        wait_until(lambda: container.projections.lag() == 0, 180, "the projection to catch up")
    finally:
        writing.clear()
        for process in [relay, *workers]:
            stop_process(process)
    total = sum(version for version, _, _ in rebuilt_view(container).values())
    assert view_rows(container) == rebuilt_view(container)
    assert container.projections.state("case_list")["applied_events"] == total
