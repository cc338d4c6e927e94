"""A known mixed workload for the read-model tests, on a simulated clock that stamps the
events too (so days, months and SLA instants are exact): cases opened, moved, closed,
reopened, put on hold, warned and breached, over two case types and two months.

At :data:`NOW` (2026-11-02 09:40 UTC) the cases are:

=====  =========  ==============  ========  ===========  ====================================
case   type       status          assignee  queue        SLA clocks running (respond, resolve)
=====  =========  ==============  ========  ===========  ====================================
A      rm_probe   closed          ann       -            none (reopened once, closed again)
B      rm_probe   open            ann       -            respond warned (at risk), resolve ok
C      rm_probe   open            bob       -            both on time
D      rm_probe   open            bob       supervisors  both past their deadline (breached)
E      rm_probe   on_hold         -         -            respond paused, resolve at risk (time)
F      generic    closed          -         -            none; party P-42, from silo crm
G      generic    closed          -         -            none; party P-7, a note on drums
=====  =========  ==============  ========  ===========  ====================================

Test modules import the fixtures they use (``from tests.integration.read_models_workload
import client, container, workload``): ``container`` is one stack for the whole module,
``workload`` stores and projects the cases above in it, and ``client`` is the API on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import eventsourcing.domain
import pytest
from fastapi.testclient import TestClient

from domain.context import CommandContext
from infra.bootstrap import Container, build_api
from infra.embedded import EmbeddedBroker
from infra.sla_watcher import SlaWatcher
from tests.shared_stack import module_container

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=40)
OCT_1 = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
ADMIN = CommandContext("tester", "admin")
HANDLER = CommandContext("hugo", "handler")
FROM_CRM = CommandContext("crm-sync", "integrator", source_system="crm", source_record_id="R-1")
M = timedelta(minutes=1)

PROBE: dict[str, Any] = {
    "name": "rm_probe",
    "labels": {"en": "Probe", "fr": "Sonde"},
    "calendar": {"always": True},
    "states": {
        "open": {"initial": True, "labels": {"en": "Open", "fr": "Ouvert"}},
        "working": {"labels": {"en": "Working", "fr": "En cours"}},
        "on_hold": {"labels": {"en": "On hold", "fr": "En pause"}},
        "done": {"final": True, "labels": {"en": "Done", "fr": "Terminé"}},
    },
    "transitions": {
        "start": {"from": "open", "to": "working", "labels": {"en": "Start"}},
        "hold": {"from": ["open", "working"], "to": "on_hold"},
        "resume": {"from": "on_hold", "to": "working"},
        "finish": {"from": ["open", "working", "on_hold"], "to": "done"},
    },
    "fields": {
        "damage": {"type": "text", "labels": {"en": "Damage", "fr": "Dommage"}},
        "secret": {"type": "text"},
    },
    "views": {
        "auditor": {"see": ["damage"]},
        "handler": {"see": "all", "edit": ["damage", "secret"]},
    },
    "slas": [
        {
            "name": "respond",
            "deadline": "10m",
            "warn_at": [50],
            "paused_in": ["on_hold"],
            "on_breach": [
                {"escalate": {"reason": "respond SLA breached", "queue": "supervisors"}},
                {"set_priority": "urgent"},
            ],
        },
        {"name": "resolve", "deadline": "40m"},
    ],
}


class SimulatedClock:
    """The time the ledger, the watcher and the event timestamps read."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class Workload:
    ids: dict[str, str]  # letter -> case id
    clock: SimulatedClock

    def letter(self, case_id: str) -> str:
        return next(k for k, v in self.ids.items() if v == str(case_id))

    def letters(self, case_ids: Any) -> list[str]:
        return [self.letter(str(i)) for i in case_ids]


@pytest.fixture(scope="module")
def container(
    pg_admin_dsn: str, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Container]:
    """A stack on a database of its own, for the whole test module."""
    with module_container(pg_admin_dsn, broker, tmp_path_factory.mktemp("rm")) as built:
        yield built


@pytest.fixture(scope="module")
def workload(container: Container) -> Workload:
    return build_workload(container)


@pytest.fixture(scope="module")
def client(container: Container, workload: Workload) -> Iterator[TestClient]:
    """The API on the module's stack, once the workload is stored and projected."""
    with TestClient(build_api(container)) as test_client:
        yield test_client


def build_workload(container: Container) -> Workload:
    """Store the workload and project it; the ledger's clock stays at :data:`NOW`."""
    clock = SimulatedClock(OCT_1)
    container.ledger.clock = clock
    ledger = container.ledger
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(eventsourcing.domain, "datetime_now_with_tzinfo", clock)
        container.case_types.install(PROBE, "read-model tests", ADMIN)
        ids: dict[str, str] = {}

        def at(moment: datetime, step: Callable[[], Any]) -> Any:
            clock.now = moment
            return step()

        f = at(OCT_1, lambda: ledger.open_case("generic", "Water leak claim", {}, "P-42", FROM_CRM))
        g = at(OCT_1, lambda: ledger.open_case("generic", "Noise", {}, "P-7", HANDLER))
        ledger.add_note(g.id, "the neighbour plays drums at night", HANDLER, None)
        at(OCT_1 + timedelta(days=14), lambda: ledger.close_case(g.id, "sorted", HANDLER, None))
        at(OCT_1 + timedelta(days=31), lambda: ledger.close_case(f.id, "paid", HANDLER, None))

        fields = {"damage": "roof", "secret": "s3"}
        a = at(T0, lambda: ledger.open_case("rm_probe", "Roof damage", fields, "P-42", HANDLER))
        d = at(T0, lambda: ledger.open_case("rm_probe", "Broken window", {}, None, HANDLER))
        ledger.assign(a.id, "ann", HANDLER, None)
        ledger.assign(d.id, "bob", HANDLER, None)
        at(T0 + M / 2, lambda: ledger.transition(a.id, "start", None, {}, HANDLER, None))
        at(T0 + M, lambda: ledger.transition(a.id, "finish", None, {}, HANDLER, None))
        at(T0 + 2 * M, lambda: ledger.reopen_case(a.id, "customer called", HANDLER, None))
        at(T0 + 3 * M, lambda: ledger.close_case(a.id, "duplicate", HANDLER, None))
        e = at(T0 + 5 * M, lambda: ledger.open_case("rm_probe", "Leaking pipe", {}, None, HANDLER))
        at(T0 + 6 * M, lambda: ledger.transition(e.id, "hold", "parts", {}, HANDLER, None))
        watch(container, clock, T0 + 11 * M)  # D: respond warned, then breached
        b = at(T0 + 33 * M, lambda: ledger.open_case("rm_probe", "Hail on car", {}, None, HANDLER))
        ledger.assign(b.id, "ann", HANDLER, None)
        c = at(T0 + 39 * M, lambda: ledger.open_case("rm_probe", "Stolen bike", {}, None, HANDLER))
        ledger.assign(c.id, "bob", HANDLER, None)
        watch(container, clock, NOW)  # B: respond warned; D: resolve breached
        for letter, case in zip("ABCDEFG", (a, b, c, d, e, f, g), strict=True):
            ids[letter] = str(case.id)
    sync(container)
    return Workload(ids, clock)


def watch(container: Container, clock: SimulatedClock, moment: datetime) -> None:
    """The SLA watcher's poll at ``moment``, with the view brought up to date first."""
    sync(container)
    clock.now = moment
    SlaWatcher(container.ledger, container.work_queues, poll_s=1, clock=clock).run_once()


def sync(container: Container) -> None:
    """Apply every stored event to every projection (their own catch-up path)."""
    container.projections.catch_up_from_store(container.reader.head(), 10_000)
