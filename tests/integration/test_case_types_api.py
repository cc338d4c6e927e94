"""Case types as configuration over HTTP: administration, isolation between versions and
types, migration, labels per language, views per role, and rules, on the real event store."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from domain.context import CommandContext
from infra.bootstrap import Container
from services.auth import Role
from tests.case_types import publish_reviewed, shipped_document
from tests.conftest import auth, stored_event_count

YAML = "application/yaml"
ADMIN_CTX = CommandContext("test-setup", "admin")
CLAIM_FIELDS = {
    "policy_number": "AB-123456",
    "policy_holder": "P-1",
    "incident_date": "2026-11-02",
    "category": "water_damage",
    "claimed_amount": {"amount": 25000, "currency": "EUR"},
}
COMPLAINT_FIELDS = {
    "customer": "C-1",
    "channel": "web",
    "topic": "delivery",
    "severity": "low",
    "description": "parcel lost",
}


def post_document(
    client: TestClient, key: str, document: dict[str, Any] | str, reason: str = "test"
) -> Any:
    body = document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False)
    return client.post(
        f"/case-types?reason={reason}",
        content=body.encode(),
        headers={**auth(key), "Content-Type": YAML},
    )


def publish(client: TestClient, key: str, name: str, version: int) -> Any:
    """Submit with ``key``, approve with a second admin, publish with ``key``."""
    return publish_reviewed(client, key, name, version, f"release {version}")


def install(container: Container, *names: str) -> None:
    for name in names:
        container.case_types.install(shipped_document(name), "test setup", ADMIN_CTX)


def open_case(client: TestClient, key: str, case_type: str, fields: dict[str, Any]) -> str:
    body = {"case_type": case_type, "title": f"a {case_type}", "fields": fields}
    answer = client.post("/cases", json=body, headers=auth(key))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def project(container: Container) -> None:
    """Bring the read models up to date straight from the store (no broker needed)."""
    container.projections.catch_up_from_store(container.reader.head(), 100_000)


def test_an_admin_drafts_validates_and_publishes_and_the_history_says_who_and_why(
    client: TestClient, keys: dict[Role, str]
) -> None:
    admin = keys[Role.ADMIN]
    created = post_document(client, admin, shipped_document("insurance_claim"), "first cut")
    assert created.status_code == 201, created.text
    assert created.json() == {
        "name": "insurance_claim",
        "version": 1,
        "status": "draft",
        "problems": [],
    }
    listed = client.get("/case-types", headers=auth(admin)).json()
    claim = next(t for t in listed if t["name"] == "insurance_claim")
    assert (claim["current_version"], claim["latest_version"]) == (None, 1)
    validated = client.post("/case-types/insurance_claim/versions/1/validate", headers=auth(admin))
    assert validated.json() == {
        "name": "insurance_claim",
        "version": 1,
        "valid": True,
        "problems": [],
    }
    assert publish(client, admin, "insurance_claim", 1).status_code == 200
    shown = client.get("/case-types/insurance_claim", headers=auth(keys[Role.AUDITOR])).json()
    assert shown["current_version"] == 1
    assert shown["versions"][0]["author"] == "test-admin"
    assert shown["versions"][0]["published_by"] == "test-admin"
    history = client.get("/case-types/insurance_claim/history", headers=auth(admin)).json()
    assert [h["type"] for h in history] == [
        "Created",
        "DraftSaved",
        "DraftValidated",
        "DraftSubmitted",
        "DraftApproved",
        "DraftValidated",
        "Published",
    ]
    assert history[1]["reason"] == "first cut"
    assert [(h["actor"], h["comment"]) for h in history[3:5]] == [
        ("test-admin", "please review"),
        ("test-reviewer", "looks right"),
    ]
    assert history[-1]["reason"] == "release 1"
    document = client.get("/case-types/insurance_claim/versions/1", headers=auth(admin)).json()
    assert document["document"] == shipped_document("insurance_claim")


def test_only_admins_administer_case_types(client: TestClient, keys: dict[Role, str]) -> None:
    for role in (Role.MANAGER, Role.HANDLER, Role.INTEGRATOR, Role.AUDITOR):
        answer = post_document(client, keys[role], shipped_document("generic"))
        assert answer.status_code == 403
        assert "allowed roles: admin" in answer.json()["detail"]
    answer = client.post(
        "/case-types/generic/versions/1/publish",
        json={"reason": "x"},
        headers=auth(keys[Role.MANAGER]),
    )
    assert answer.status_code == 403


def test_an_invalid_document_is_refused_with_each_problem_and_nothing_is_published(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    admin = keys[Role.ADMIN]
    document = shipped_document("customer_complaint")
    document["slas"][1]["deadline"] = "3 dayz"
    document["transitions"]["accept"]["to"] = "resolvd"
    before = stored_event_count(container)
    refused = post_document(client, admin, document)
    assert refused.status_code == 422
    body = refused.json()
    problems = body["problems"]
    assert "slas[1].deadline: '3 dayz' is not a duration" in " ".join(problems)
    assert any(p.startswith("transitions.accept.to: unknown state 'resolvd'") for p in problems)
    assert body["code"] == "invalid_case_type"
    assert "docs/case-types.md" in body["hint"]
    assert client.get("/case-types/customer_complaint", headers=auth(admin)).status_code == 404
    opened = client.post(
        "/cases",
        json={"case_type": "customer_complaint", "title": "x", "fields": COMPLAINT_FIELDS},
        headers=auth(admin),
    )
    assert opened.status_code == 422
    assert opened.json()["code"] == "unknown_case_type"
    assert stored_event_count(container) == before


def test_unreadable_documents_are_refused_before_anything_is_stored(
    client: TestClient, keys: dict[Role, str]
) -> None:
    admin = keys[Role.ADMIN]
    broken = post_document(client, admin, "name: x\nstates: [unclosed\n")
    assert broken.status_code == 422
    assert "line" in broken.json()["detail"]
    wrong_type = client.post(
        "/case-types", content=b"name: x", headers={**auth(admin), "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 422
    assert "application/yaml" in json.dumps(wrong_type.json())
    assert client.get("/case-types", headers=auth(admin)).json() == [
        {"name": "generic", "label": "Generic case", "current_version": 1, "latest_version": 1}
    ]


def test_publishing_a_new_version_leaves_open_cases_of_every_type_untouched(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    install(container, "insurance_claim", "customer_complaint")
    handler, admin = keys[Role.HANDLER], keys[Role.ADMIN]
    ids = [
        open_case(client, handler, "insurance_claim", CLAIM_FIELDS),
        open_case(client, handler, "customer_complaint", COMPLAINT_FIELDS),
        open_case(client, handler, "generic", {"free": "form"}),
    ]

    def snapshot() -> list[Any]:
        return [
            (
                client.get(f"/cases/{i}", headers=auth(handler)).json(),
                client.get(f"/cases/{i}/history", headers=auth(handler)).json(),
            )
            for i in ids
        ]

    before = snapshot()
    v2 = shipped_document("insurance_claim")
    v2["fields"]["loss_adjuster"] = {"type": "text", "labels": {"en": "Loss adjuster"}}
    v2["rules"] = []
    assert post_document(client, admin, v2).json()["version"] == 2
    assert publish(client, admin, "insurance_claim", 2).status_code == 200
    assert snapshot() == before

    # the old case still runs under v1: v2's new field is unknown to it
    old = client.patch(
        f"/cases/{ids[0]}/fields",
        json={"fields": {"loss_adjuster": "Ann"}},
        headers=auth(keys[Role.MANAGER]),
    )
    assert old.status_code == 422
    assert "loss_adjuster: is not a field" in old.json()["detail"]
    new_id = open_case(client, handler, "insurance_claim", CLAIM_FIELDS)
    new = client.get(f"/cases/{new_id}", headers=auth(handler)).json()
    assert (new["case_type_version"], new["queue"]) == (2, None)  # v2 has no routing rule
    assert (
        client.patch(
            f"/cases/{new_id}/fields",
            json={"fields": {"loss_adjuster": "Ann"}},
            headers=auth(keys[Role.MANAGER]),
        ).status_code
        == 200
    )


def test_diff_between_two_versions_is_a_json_patch(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    install(container, "customer_complaint")
    v2 = shipped_document("customer_complaint")
    v2["slas"][1]["deadline"] = "8d"
    del v2["fields"]["order_reference"]["max_length"]
    admin = keys[Role.ADMIN]
    assert post_document(client, admin, v2).status_code == 201  # a valid draft, v2
    diff = client.get("/case-types/customer_complaint/diff?from=1&to=2", headers=auth(admin))
    assert diff.status_code == 200
    assert diff.json()["from"] == 1
    assert sorted(diff.json()["patch"], key=lambda op: op["path"]) == [
        {"op": "remove", "path": "/fields/order_reference/max_length"},
        {"op": "replace", "path": "/slas/1/deadline", "value": "8d"},
    ]
    missing = client.get("/case-types/customer_complaint/diff?from=1&to=9", headers=auth(admin))
    assert missing.status_code == 404
    assert missing.json()["hint"] == "versions: 1, 2"


def test_migration_reports_a_dry_run_then_records_each_migrated_case(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    install(container, "customer_complaint")
    handler, admin = keys[Role.HANDLER], keys[Role.ADMIN]
    waiting, investigating, closed = (
        open_case(client, handler, "customer_complaint", COMPLAINT_FIELDS) for _ in range(3)
    )
    for case_id in (waiting, investigating):
        client.post(
            f"/cases/{case_id}/transitions",
            json={"transition": "investigate"},
            headers=auth(handler),
        )
    client.post(
        f"/cases/{waiting}/transitions", json={"transition": "ask_customer"}, headers=auth(handler)
    )
    client.post(f"/cases/{closed}/close", json={"reason": "dup"}, headers=auth(handler))
    v2 = shipped_document("customer_complaint")
    v2["states"]["analysis"] = v2["states"].pop("investigating")
    for move in v2["transitions"].values():
        move["from"] = [
            "analysis" if s == "investigating" else s
            for s in ([move["from"]] if isinstance(move["from"], str) else move["from"])
        ]
        move["to"] = "analysis" if move["to"] == "investigating" else move["to"]
    assert post_document(client, admin, v2).json()["problems"] == []
    publish(client, admin, "customer_complaint", 2)
    project(container)
    before = stored_event_count(container)

    command = {"to_version": 2, "state_map": {"investigating": "analysis"}}
    dry = client.post(
        "/case-types/customer_complaint/migrations", json=command, headers=auth(admin)
    ).json()
    assert dry["dry_run"] is True
    assert dry["counts"] == {"would migrate": 2}
    planned = {c["case_id"]: (c["from_status"], c["to_status"]) for c in dry["cases"]}
    assert planned == {
        waiting: ("waiting_customer", "waiting_customer"),
        investigating: ("investigating", "analysis"),
    }
    assert stored_event_count(container) == before

    done = client.post(
        "/case-types/customer_complaint/migrations",
        json={**command, "dry_run": False},
        headers=auth(admin),
    ).json()
    assert done["counts"] == {"migrated": 2}
    case = client.get(f"/cases/{investigating}", headers=auth(handler)).json()
    assert (case["case_type_version"], case["status"]) == (2, "analysis")
    history = client.get(f"/cases/{investigating}/history", headers=auth(handler)).json()
    migrated = next(h for h in history if h["type"] == "CaseMigrated")
    assert migrated["data"] == {
        "from_version": 1,
        "to_version": 2,
        "from_status": "investigating",
        "to_status": "analysis",
    }
    untouched = client.get(f"/cases/{closed}", headers=auth(handler)).json()
    assert (untouched["case_type_version"], untouched["status"]) == (1, "closed")
    bad_map = client.post(
        "/case-types/customer_complaint/migrations",
        json={"to_version": 2, "state_map": {"received": "nowhere"}},
        headers=auth(admin),
    )
    assert bad_map.status_code == 422
    assert "'nowhere' is not a state of v2" in bad_map.json()["detail"]


def test_labels_follow_accept_language(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    install(container, "insurance_claim")
    case_id = open_case(client, keys[Role.HANDLER], "insurance_claim", CLAIM_FIELDS)
    for header, language, status in [
        ("fr-FR,fr;q=0.9,en;q=0.5", "fr", "Déclaré"),
        ("de-DE, en;q=0.3", "en", "Submitted"),
        ("en;q=0.2, fr;q=0.8", "fr", "Déclaré"),
        ("", "en", "Submitted"),
    ]:
        answer = client.get(
            f"/cases/{case_id}", headers={**auth(keys[Role.HANDLER]), "Accept-Language": header}
        )
        assert answer.headers["Content-Language"] == language
        labels = answer.json()["labels"]
        assert labels["status"] == status
        assert labels["language"] == language
    french = client.get(
        f"/cases/{case_id}", headers={**auth(keys[Role.HANDLER]), "Accept-Language": "fr"}
    ).json()
    assert french["labels"]["case_type"] == "Déclaration de sinistre"
    assert french["labels"]["fields"]["claimed_amount"] == "Montant réclamé"
    assert {t["name"]: t["label"] for t in french["transitions"]} == {
        "start_review": "Commencer l'instruction",
    }


def test_views_shape_what_each_role_sees_and_may_edit(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    install(container, "insurance_claim")
    case_id = open_case(client, keys[Role.HANDLER], "insurance_claim", CLAIM_FIELDS)
    integrator = client.get(f"/cases/{case_id}", headers=auth(keys[Role.INTEGRATOR])).json()
    assert set(integrator["fields"]) == {
        "policy_number",
        "policy_holder",
        "incident_date",
        "category",
        "claimed_amount",
    }
    assert integrator["editable_fields"] == ["description", "photos"]
    refused = client.patch(
        f"/cases/{case_id}/fields",
        json={"fields": {"policy_number": "ZZ-1"}},
        headers=auth(keys[Role.HANDLER]),
    )
    assert refused.status_code == 403
    assert refused.json()["detail"] == "your role may not edit policy_number"
    assert "category" in refused.json()["hint"]
    bad_value = client.patch(
        f"/cases/{case_id}/fields",
        json={"fields": {"category": "flood"}},
        headers=auth(keys[Role.HANDLER]),
    )
    assert bad_value.status_code == 422
    assert (
        "fields.category: 'flood' is not one of: water_damage, fire" in bad_value.json()["detail"]
    )
    project(container)
    listed = client.get("/cases?case_type=insurance_claim", headers=auth(keys[Role.INTEGRATOR]))
    assert listed.json()["columns"] == ["title", "status", "fields.policy_number", "updated_at"]
    assert "description" not in listed.json()["cases"][0]["fields"]


def test_rules_route_new_cases_and_the_history_names_the_rule(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    install(container, "insurance_claim")
    handler = keys[Role.HANDLER]
    case_id = open_case(client, handler, "insurance_claim", CLAIM_FIELDS)
    case = client.get(f"/cases/{case_id}", headers=auth(handler)).json()
    assert (case["queue"], case["priority"]) == ("senior-property", "high")
    history = client.get(f"/cases/{case_id}/history", headers=auth(handler)).json()
    fired = next(h for h in history if h["type"] == "CaseRuleFired")
    assert fired["data"]["rule"] == "route_new_claim"
    routed = next(h for h in history if h["type"] == "CaseRoutedToQueue")
    assert routed["rule"] == "route_new_claim"
    assert routed["actor"] == {"id": "rules", "role": "system"}
    assert routed["causation_id"] is not None
    # start_review moves a big claim on to the expert, by rule
    client.post(
        f"/cases/{case_id}/transitions", json={"transition": "start_review"}, headers=auth(handler)
    )
    assert client.get(f"/cases/{case_id}", headers=auth(handler)).json()["status"] == (
        "expert_assessment"
    )


def test_a_transition_guard_is_checked_and_its_refusal_explains_itself(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    install(container, "insurance_claim")
    handler, manager = auth(keys[Role.HANDLER]), auth(keys[Role.MANAGER])
    fields = {**CLAIM_FIELDS, "claimed_amount": {"amount": 80000, "currency": "EUR"}}
    case_id = open_case(client, keys[Role.HANDLER], "insurance_claim", fields)
    for name in ("start_review", "expert_report_received"):
        assert (
            client.post(
                f"/cases/{case_id}/transitions", json={"transition": name}, headers=handler
            ).status_code
            == 200
        )
    refused = client.post(
        f"/cases/{case_id}/transitions", json={"transition": "approve"}, headers=handler
    )
    assert refused.status_code == 409
    assert "condition" in refused.json()["detail"]
    assert "actor.role" in refused.json()["detail"]
    approved = client.post(
        f"/cases/{case_id}/transitions", json={"transition": "approve"}, headers=manager
    )
    assert approved.status_code == 200
    settle = {
        "transition": "settle",
        "fields": {"settlement_amount": {"amount": 70000, "currency": "EUR"}},
    }
    assert (
        client.post(f"/cases/{case_id}/transitions", json=settle, headers=handler).status_code
        == 200
    )
    done = client.get(f"/cases/{case_id}", headers=handler).json()
    assert (done["status"], done["transitions"], done["slas"]) == ("settled", [], [])


CHILD_TYPES = """
name: incident
labels: {en: Incident}
states: {reported: {initial: true, labels: {en: Reported}}}
transitions: {}
fields: {severity: {type: number, labels: {en: Severity}}}
rules:
  - name: big_incidents_get_a_review
    on: [CaseOpened]
    if: 'fields.severity >= 4'
    do:
      - open_child:
          {case_type: incident, title: "Review of {{ case.title }}", fields: {severity: 1}}
"""


def test_a_rule_opens_a_child_case_in_the_same_save(
    client: TestClient, keys: dict[Role, str]
) -> None:
    admin = keys[Role.ADMIN]
    assert post_document(client, admin, CHILD_TYPES).json()["problems"] == []
    publish(client, admin, "incident", 1)
    parent_id = open_case(client, admin, "incident", {"severity": 5})
    parent = client.get(f"/cases/{parent_id}", headers=auth(admin)).json()
    [child_id] = parent["children"]
    child = client.get(f"/cases/{child_id}", headers=auth(admin)).json()
    assert (child["title"], child["parent_id"]) == ("Review of a incident", parent_id)
    assert child["children"] == []  # severity 1: its own rule does not fire


def test_administrators_drafting_and_publishing_at_once_all_land_or_get_a_clear_409(
    client: TestClient, keys: dict[Role, str]
) -> None:
    admin = keys[Role.ADMIN]
    document = shipped_document("patient_care")
    with ThreadPoolExecutor(8) as pool:
        drafted = list(pool.map(lambda _: post_document(client, admin, document), range(8)))
    assert sorted(d.json()["version"] for d in drafted) == list(range(1, 9))
    v8 = "/case-types/patient_care/versions/8"
    client.post(f"{v8}/submit", json={"comment": "c"}, headers=auth(admin))
    client.post(f"{v8}/approve", json={"comment": "c"}, headers=auth(keys[Role.MANAGER]))
    with ThreadPoolExecutor(4) as pool:
        published = list(
            pool.map(
                lambda _: client.post(
                    f"{v8}/publish", json={"reason": "race"}, headers=auth(admin)
                ),
                range(4),
            )
        )
    assert sorted(p.status_code for p in published) == [200, 409, 409, 409]
    refusal = next(p.json() for p in published if p.status_code == 409)
    assert refusal["detail"] == "patient_care v8 is already published"
    history = client.get("/case-types/patient_care/history", headers=auth(admin)).json()
    assert [h["type"] for h in history].count("Published") == 1


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "mention"),
    [
        ("POST", "/case-types/nope/versions/1/validate", {}, 404, "no case type is called 'nope'"),
        ("POST", "/case-types/generic/versions/7/validate", {}, 404, "has no version 7"),
        ("POST", "/case-types/generic/versions/1/publish", {"json": {}}, 422, "reason"),
        (
            "POST",
            "/case-types/generic/versions/0/publish",
            {"json": {"reason": "x"}},
            422,
            "version",
        ),
        ("POST", "/case-types/Bad-Name/versions/1/publish", {"json": {"reason": "x"}}, 422, "name"),
        ("GET", "/case-types/generic/diff?from=1", {}, 422, "to"),
        ("GET", "/case-types/generic/diff?from=1&to=1&x=2", {}, 422, "unknown query parameter"),
        (
            "POST",
            "/case-types/generic/migrations",
            {"json": {"to_version": "2"}},
            422,
            "to_version",
        ),
        ("POST", "/case-types/generic/migrations", {"json": {"to_version": 5}}, 404, "version 5"),
        (
            "POST",
            "/case-types",
            {"content": b'{"name": "x",', "headers": {"Content-Type": "application/json"}},
            422,
            "line 1",
        ),
        (
            "POST",
            "/case-types",
            {"content": b"- a\n- b\n", "headers": {"Content-Type": YAML}},
            422,
            "mapping",
        ),
        (
            "POST",
            "/case-types",
            {"content": b"name: x\n" + b"#" * 300_000, "headers": {"Content-Type": YAML}},
            422,
            "256 KiB",
        ),
        (
            "POST",
            "/case-types",
            {"content": b"name: 'Not OK'\n", "headers": {"Content-Type": YAML}},
            422,
            "not a case type name",
        ),
    ],
)
def test_bad_administration_requests_get_a_clear_4xx_and_change_nothing(
    client: TestClient,
    keys: dict[Role, str],
    container: Container,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    mention: str,
) -> None:
    admin = auth(keys[Role.ADMIN])
    history = client.get("/case-types/generic/history", headers=admin).json()
    answer = client.request(
        method, path, **{**kwargs, "headers": {**admin, **kwargs.get("headers", {})}}
    )
    assert answer.status_code == status, answer.text
    assert mention.lower() in json.dumps(answer.json()).lower()
    assert client.get("/case-types/generic/history", headers=admin).json() == history
    assert [t["name"] for t in client.get("/case-types", headers=admin).json()] == ["generic"]


# -- issue 7: durations, drafts and text that cannot be stored -------------------------------

SMALL = {
    "name": "tiny",
    "labels": {"en": "Tiny"},
    "states": {"open": {"initial": True}, "done": {"final": True}},
    "transitions": {"finish": {"from": "open", "to": "done"}},
}


def test_an_sla_that_would_run_for_millennia_is_refused_by_path_and_nothing_is_published(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    admin = keys[Role.ADMIN]
    document = {**SMALL, "slas": [{"name": "forever", "deadline": "9000000d", "warn_at": [50]}]}
    before = stored_event_count(container)
    refused = post_document(client, admin, document)
    assert refused.status_code == 422, refused.text
    assert any(p.startswith("slas[0].deadline: '9000000d'") for p in refused.json()["problems"])
    assert "slas[0].deadline" in refused.json()["detail"]
    opened = client.post(
        "/cases", json={"case_type": "tiny", "title": "t", "fields": {}}, headers=auth(admin)
    )
    assert opened.status_code == 422
    assert stored_event_count(container) == before


def discard(client: TestClient, key: str, name: str, version: int, reason: str = "obsolete") -> Any:
    return client.delete(
        f"/case-types/{name}/versions/{version}", params={"reason": reason}, headers=auth(key)
    )


def test_drafts_are_capped_and_a_discarded_draft_appears_nowhere(
    client: TestClient, keys: dict[Role, str]
) -> None:
    admin = keys[Role.ADMIN]
    for n in range(10):
        assert (
            post_document(client, admin, {**SMALL, "labels": {"en": f"Tiny {n}"}}).status_code
            == 201
        )
    refused = post_document(client, admin, SMALL)
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert "10 unpublished drafts" in body["detail"]
    assert "DELETE /case-types/tiny/versions/1" in body["hint"]
    assert "caseledger case-types discard tiny 1" in body["hint"]

    assert discard(client, keys[Role.MANAGER], "tiny", 3).status_code == 403
    gone = discard(client, admin, "tiny", 10, "typo in the labels")
    assert gone.status_code == 200, gone.text
    assert gone.json() == {
        "name": "tiny",
        "version": 10,
        "status": "discarded",
        "discarded_by": "test-admin",
        "reason": "typo in the labels",
    }
    listed = client.get("/case-types", headers=auth(keys[Role.AUDITOR])).json()
    assert next(t for t in listed if t["name"] == "tiny") == {
        "name": "tiny",
        "label": "Tiny 8",
        "current_version": None,
        "latest_version": 9,
    }
    shown = client.get("/case-types/tiny", headers=auth(admin)).json()
    assert [v["version"] for v in shown["versions"]] == list(range(1, 10))
    missing = client.get("/case-types/tiny/versions/10", headers=auth(admin))
    assert missing.status_code == 404
    assert "discarded by test-admin: typo in the labels" in missing.json()["detail"]
    assert discard(client, admin, "tiny", 10).status_code == 404
    assert discard(client, admin, "nothing_here", 1).status_code == 404
    history = client.get("/case-types/tiny/history", headers=auth(admin)).json()
    assert (history[-1]["type"], history[-1]["version"], history[-1]["reason"]) == (
        "DraftDiscarded",
        10,
        "typo in the labels",
    )

    redrafted = post_document(client, admin, SMALL)
    assert redrafted.json()["version"] == 11
    assert publish(client, admin, "tiny", 11).status_code == 200
    kept = discard(client, admin, "tiny", 11)
    assert kept.status_code == 409
    assert "published" in kept.json()["detail"]
    for version in range(1, 10):
        assert discard(client, admin, "tiny", version).status_code == 200
    listed = client.get("/case-types", headers=auth(admin)).json()
    assert next(t for t in listed if t["name"] == "tiny")["latest_version"] == 11


def test_a_type_whose_only_drafts_are_discarded_leaves_the_list(
    client: TestClient, keys: dict[Role, str]
) -> None:
    admin = keys[Role.ADMIN]
    post_document(client, admin, SMALL)
    assert discard(client, admin, "tiny", 1).status_code == 200
    assert [t["name"] for t in client.get("/case-types", headers=auth(admin)).json()] == ["generic"]
    assert client.get("/case-types/tiny", headers=auth(admin)).json()["versions"] == []


SURROGATE_JSON = (
    b'{"name": "tiny", "labels": {"en": "Tiny \\ud800"}, "states": {"a": {"initial": true}}}'
)


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "mention"),
    [
        (
            "POST",
            "/case-types",
            {"content": SURROGATE_JSON, "headers": {"Content-Type": "application/json"}},
            "labels.en: must be valid unicode text",
        ),
        (
            "POST",
            "/case-types",
            {
                "content": b'{"name": "tiny", "labels": {"\\udfff": "x"}, "states": {}}',
                "headers": {"Content-Type": "application/json"},
            },
            "labels.\\\\udfff",
        ),
        (
            "POST",
            "/case-types",
            {
                "content": b'name: tiny\nlabels: {en: "Tiny \\ud800"}\n'
                b"states: {a: {initial: true}}\n",
                "headers": {"Content-Type": YAML},
            },
            "labels.en: must be valid unicode text",
        ),
        (
            "POST",
            "/case-types",
            {
                "content": b'name: tiny\nlabels: {en: "Tiny \\0"}\nstates: {a: {initial: true}}\n',
                "headers": {"Content-Type": YAML},
            },
            "labels.en: must not contain nul",
        ),
        (
            "POST",
            "/case-types/generic/migrations",
            {"json": {"to_version": 1, "state_map": {"\ud800": "open"}}},
            "state_map",
        ),
        (
            "POST",
            "/case-types/generic/migrations",
            {"json": {"to_version": 1, "state_map": {"open": "\ud800"}}},
            "state_map",
        ),
        (
            "POST",
            "/case-types/generic/versions/1/publish",
            {"json": {"reason": "ok", "\ud800": 1}},
            "body",
        ),
        (
            "POST",
            "/case-types/generic/versions/1/publish",
            {"json": {"reason": "why \ud800"}},
            "reason",
        ),
        ("POST", "/case-types?reason=%ED%A0%80%00", {"json": SMALL}, "reason"),
    ],
)
def test_lone_surrogates_and_nul_in_administration_get_a_422_and_change_nothing(
    client: TestClient,
    keys: dict[Role, str],
    container: Container,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    mention: str,
) -> None:
    admin = auth(keys[Role.ADMIN])
    before = stored_event_count(container)
    if "json" in kwargs:  # httpx refuses to encode a lone surrogate itself
        kwargs = {
            "content": json.dumps(kwargs["json"]).encode(),
            "headers": {"Content-Type": "application/json"},
        }
    answer = client.request(
        method, path, **{**kwargs, "headers": {**admin, **kwargs.get("headers", {})}}
    )
    assert answer.status_code == 422, answer.text
    assert mention.lower() in json.dumps(answer.json()).lower()
    assert stored_event_count(container) == before
