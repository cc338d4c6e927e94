"""Property tests: whatever commands arrive, in whatever order, a case only ever takes the
states and transitions its case type allows, and refused commands leave no trace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.case import Case
from domain.definition import CLOSED, Definition
from domain.errors import DomainError
from domain.rules import RuleRun, facts, react
from tests.case_types import REPAIR, from_yaml, shipped

DEFINITIONS = {
    "generic": shipped("generic"),
    "insurance_claim": shipped("insurance_claim"),
    "patient_care": shipped("patient_care"),
    "customer_complaint": shipped("customer_complaint"),
    "repair": from_yaml(REPAIR),
}
ROLES = ("admin", "manager", "handler", "integrator")
T0 = datetime(2026, 10, 23, 15, 0, tzinfo=UTC)  # a Friday before the autumn DST change
OPENING: dict[str, dict[str, Any]] = {
    "generic": {},
    "repair": {},
    "insurance_claim": {
        "policy_number": "AB-123456",
        "policy_holder": "P-1",
        "incident_date": "2026-10-01",
        "category": "water_damage",
        "claimed_amount": {"amount": 15000, "currency": "EUR"},
    },
    "patient_care": {"patient": "P-2", "admission_date": "2026-10-23"},
    "customer_complaint": {
        "customer": "C-3",
        "channel": "web",
        "topic": "billing",
        "severity": "high",
        "description": "charged twice",
    },
}
FILLERS: dict[str, dict[str, Any]] = {
    "insurance_claim": {"settlement_amount": {"amount": 9000, "currency": "EUR"}},
    "patient_care": {"triage_level": 2, "attending_physician": "Dr Roux", "consent_signed": True},
    "customer_complaint": {"resolution": "refund"},
    "repair": {"cost": {"amount": 90, "currency": "EUR"}},
}

steps = st.lists(
    st.tuples(
        st.sampled_from(["transition", "transition", "transition", "fill", "close", "reopen"]),
        st.integers(0, 50),
        st.sampled_from(ROLES),
        st.integers(0, 600),  # minutes later
    ),
    max_size=25,
)


def lookup(name: str) -> Definition:
    return DEFINITIONS[name]


def run_step(
    case: Case, definition: Definition, step: tuple[str, int, str, int], now: datetime
) -> None:
    kind, pick, role, _ = step
    ctx = {"actor_id": "prop", "actor_role": role, "correlation_id": "p"}
    if kind == "transition":
        names = sorted(definition.transitions)
        name = names[pick % len(names)]
        actor = {"id": "prop", "role": role}
        case.transition(definition, name, None, ctx, now, facts(case, None, actor))
    elif kind == "fill":
        case.update_fields(definition, FILLERS.get(definition.name, {}), ctx, None)
    elif kind == "close":
        case.close(definition, "closing", ctx, now)
    else:
        case.reopen(definition, "reopening", ctx, now)
    react(RuleRun(case, definition, ctx, now, lookup))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(DEFINITIONS)), steps=steps)
def test_random_commands_never_leave_the_declared_states_and_transitions(
    name: str, steps: list[tuple[str, int, str, int]]
) -> None:
    definition = DEFINITIONS[name]
    ctx = {"actor_id": "prop", "actor_role": "handler", "correlation_id": "p"}
    case = Case.open(definition, "prop", dict(OPENING[name]), None, ctx, T0)
    react(RuleRun(case, definition, ctx, T0, lookup))
    history = list(case.collect_events())
    now = T0
    for step in steps:
        now += timedelta(minutes=step[3])
        before = (case.status, case.version)
        try:
            run_step(case, definition, step, now)
        except DomainError:
            assert case.pending_events == []  # a refused command records nothing
            assert (case.status, case.version) == before
            continue
        new_events = case.collect_events()
        history += new_events
        for event in new_events:
            if isinstance(event, Case.StatusChanged) and event.transition is not None:
                move = definition.transitions[event.transition]
                assert event.from_status in move.sources
                assert event.to_status == move.target
        assert case.status in definition.states or case.status == CLOSED
        # a case in a final state has no clock running
        if definition.is_final(case.status):
            assert case.clocks == {}
    replayed = None
    for event in history:
        replayed = event.mutate(replayed)
    assert isinstance(replayed, Case)
    assert (replayed.status, replayed.version, replayed.fields) == (
        case.status,
        case.version,
        case.fields,
    )
    assert {k: v.run for k, v in replayed.clocks.items()} == {
        k: v.run for k, v in case.clocks.items()
    }
