"""Simulation of a sample case under a version or an unsaved document: the answer matches what
a real case with the same inputs does once the version is published, nothing live changes,
and bad input is refused clearly (a step the version refuses shows as refused)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from domain.case import Case
from domain.context import CommandContext
from domain.errors import BudgetExceeded
from domain.event_names import event_type
from infra.bootstrap import Container, install_case_types
from infra.settings import Settings
from services.auth import Role
from services.simulation import Sample, Step
from services.simulation import simulate as run_sample
from tests.case_types import shipped, shipped_document
from tests.conftest import auth
from tests.integration.helpers import running, wait_until
from tests.integration.test_what_if import end_offsets, table_fingerprints

ADMIN = CommandContext("test-admin", "admin")
FIELDS = {
    "policy_number": "AB-123456",
    "policy_holder": "P-77",
    "incident_date": "2026-11-02",
    "category": "water_damage",
    "claimed_amount": {"amount": 30000, "currency": "EUR"},
    "contact_email": "holder@example.com",
}


def draft_document() -> dict[str, Any]:
    """The shipped claim, with a rule that a draft adds: fraud also assigns a supervisor."""
    document = copy.deepcopy(shipped_document("insurance_claim"))
    document["rules"][1]["do"].append({"assign": {"user": "sam"}})
    return document


def simulate(client: TestClient, keys: dict[Role, str], path: str, body: Any) -> Any:
    return client.post(path, json=body, headers=auth(keys[Role.ADMIN]))


def test_a_sample_simulated_under_a_draft_ends_as_a_real_case_does_once_it_is_published(
    container: Container, client: TestClient, keys: dict[Role, str]
) -> None:
    install_case_types(container.case_types, ("insurance_claim.yaml",))
    document = draft_document()
    _, version, _ = container.case_types.draft(document, "simulate", ADMIN)
    container.case_types.install(document, "the same, published", ADMIN)
    handler = auth(keys[Role.HANDLER])

    # A real case, step by step.
    opened = client.post(
        "/cases",
        json={"case_type": "insurance_claim", "title": "Flood", "fields": FIELDS},
        headers=handler,
    )
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["id"]
    took = client.post(
        f"/cases/{case_id}/transitions", json={"transition": "start_review"}, headers=handler
    )
    assert took.status_code == 200, took.text
    edit = {"fields": {"fraud_suspected": True}}
    assert client.patch(f"/cases/{case_id}/fields", json=edit, headers=handler).status_code == 200
    real = container.ledger.get_case(UUID(case_id))
    real_events = container.ledger.history(UUID(case_id))
    opened_at = real.clocks["settlement"].running_since
    assert opened_at is not None

    sample = {
        "title": "Flood",
        "fields": FIELDS,
        "actor": {"id": "ann", "role": "handler"},
        "opened_at": opened_at.isoformat(),
        "steps": [
            {"at": "0m", "transition": "start_review"},
            {"at": "0m", "fields": {"fraud_suspected": True}},
        ],
        "horizon": "0m",
    }
    answer = simulate(
        client, keys, f"/case-types/insurance_claim/versions/{version}/simulate", sample
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()

    case = result["case"]
    assert (case["status"], case["queue"], case["priority"], case["assignee"]) == (
        real.status, real.queue, real.priority, real.assignee,
    )  # fmt: skip
    assert (real.status, real.assignee) == ("expert_assessment", "sam")
    assert case["escalations"] == real.escalations == 1
    assert [e["type"] for e in result["events"]] == [_type(e) for e in real_events]
    [notice] = result["notifications"]
    [real_notice] = [e for e in real_events if isinstance(e, Case.NotificationRequested)]
    assert (notice["recipients"], notice["subject"], notice["body"]) == (
        real_notice.recipients, real_notice.subject, real_notice.body,
    )  # fmt: skip
    running_slas = {s["sla"]: s["due"] for s in result["slas"] if s["running"]}
    assert running_slas == {
        name: {m: _iso(at) for m, at in clock.due.items()}
        for name, clock in real.clocks.items()
        if clock.running_since is not None
    }
    assert [s["applied"] for s in result["steps"]] == [True, True]


def _type(event: Any) -> str:
    return event_type(type(event))


def _iso(text: str) -> str:
    return datetime.fromisoformat(text).isoformat().replace("+00:00", "Z")


def test_slas_breach_within_the_horizon_and_refused_steps_are_listed(
    container: Container, client: TestClient, keys: dict[Role, str]
) -> None:
    install_case_types(container.case_types, ("insurance_claim.yaml",))
    sample = {
        "title": "Late",
        "fields": FIELDS,
        "opened_at": "2026-12-01T09:00:00+01:00",
        "steps": [
            {"at": "1h", "transition": "approve"},  # not from submitted: refused
            {"at": "2h", "fields": {"colour": "red"}},  # not a field: refused
            {"at": "3h", "note": "called the holder"},
        ],
        "horizon": "60d",
    }
    answer = simulate(client, keys, "/case-types/insurance_claim/versions/1/simulate", sample)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    steps = result["steps"]
    assert [s["applied"] for s in steps] == [False, False, True]
    assert "approve" in steps[0]["reason"] and steps[0]["hint"]
    assert "colour" in steps[1]["reason"]
    breaches = [b["sla"] for b in result["sla_breaches"]]
    assert breaches == ["first_response", "settlement"]
    assert result["case"]["queue"] == "claims-supervisors"
    assert [n["notification"] for n in result["notifications"]] == [
        "claim_received", "sla_warning", "sla_warning", "sla_warning", "sla_breached",
    ]  # fmt: skip
    assert "missed its settlement SLA; escalation level 1." in result["notifications"][-1]["body"]


def test_an_unsaved_document_can_be_simulated_and_a_bad_one_is_refused_with_its_problems(
    container: Container, client: TestClient, keys: dict[Role, str]
) -> None:
    install_case_types(container.case_types, ("insurance_claim.yaml",))
    document = draft_document()
    document["notifications"]["claim_received"]["subject"] = "Got it: {{ case.title }}"
    sample = {"title": "Flood", "fields": FIELDS}
    answer = simulate(
        client, keys, "/case-types/simulate", {"document": document, "sample": sample}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == 0
    assert answer.json()["notifications"][0]["subject"] == "Got it: Flood"

    document["rules"][0]["do"] = [{"notify": "nobody"}]
    refused = simulate(
        client, keys, "/case-types/simulate", {"document": document, "sample": sample}
    )
    assert refused.status_code == 422
    assert any(p.startswith("rules[0].do[0].notify") for p in refused.json()["problems"])


BAD_SAMPLES = [
    ({"title": "x", "fields": {**FIELDS, "colour": "red"}}, "colour"),
    ({"title": "x", "fields": {**FIELDS, "claimed_amount": "lots"}}, "fields.claimed_amount"),
    ({"title": "x", "fields": FIELDS, "steps": [{"at": "1h"}]}, "exactly one of"),
    ({"title": "x", "fields": FIELDS, "steps": [{"at": "soon", "note": "n"}]}, "duration"),
    ({"title": "x", "fields": FIELDS, "horizon": "1w"}, "weeks as days"),
    ({"title": "x", "fields": FIELDS, "horizon": "400d"}, "horizon"),
    ({"title": "x", "fields": FIELDS, "steps": [{"at": "1h", "nap": True}]}, "nap"),
]


def test_bad_samples_are_refused_saying_what_is_wrong(
    container: Container, client: TestClient, keys: dict[Role, str]
) -> None:
    install_case_types(container.case_types, ("insurance_claim.yaml",))
    path = "/case-types/insurance_claim/versions/1/simulate"
    for sample, says in BAD_SAMPLES:
        answer = simulate(client, keys, path, sample)
        assert answer.status_code == 422, (sample, answer.text)
        assert says in answer.text, (sample, answer.text)
    assert simulate(client, keys, "/case-types/insurance_claim/versions/9/simulate", {
        "title": "x", "fields": FIELDS}).status_code == 404  # fmt: skip


def test_a_simulation_changes_nothing_in_the_store_the_topic_or_the_read_models(
    container: Container, client: TestClient, keys: dict[Role, str], settings: Settings
) -> None:
    install_case_types(container.case_types, ("insurance_claim.yaml",))
    container.ledger.open_case("insurance_claim", "Real", FIELDS, None, ADMIN)
    with running(container.relay.run):
        wait_until(lambda: container.relay.position() >= container.reader.head(), 30, "relay")
    container.projections.catch_up_from_store(container.reader.head(), 100_000)
    _, version, _ = container.case_types.draft(draft_document(), "simulate", ADMIN)
    head, tables, offsets = (
        container.reader.head(),
        table_fingerprints(container),
        end_offsets(settings),
    )

    sample = {
        "title": "Flood",
        "fields": FIELDS,
        "steps": [{"at": "1h", "transition": "start_review"}],
    }
    answer = simulate(
        client, keys, f"/case-types/insurance_claim/versions/{version}/simulate", sample
    )
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["events"]) > 5  # it did simulate something

    assert container.reader.head() == head
    assert table_fingerprints(container) == tables
    assert end_offsets(settings) == offsets


def test_a_simulation_that_runs_past_its_budget_is_refused() -> None:
    definition = shipped("insurance_claim")
    sample = Sample(
        title="Slow",
        fields=FIELDS,
        opened_at=datetime(2026, 12, 1, 9, tzinfo=UTC),
        steps=(Step(at=timedelta(hours=1), command="note", text="n"),),
    )
    with pytest.raises(BudgetExceeded, match="ran past its budget of 0 s"):
        run_sample(definition, sample, lambda name: definition, budget_s=0.0)
