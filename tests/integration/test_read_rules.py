"""Read rules over HTTP, decided by one service for every entry point: what each role may do
with a case in its state (transitions with plain reasons, actions), who is calling (/me), the
case list with labels, the timeline as sentences, and hidden fields absent from every read
answer (case, list, history, timeline, CSV export). Real PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from infra.bootstrap import Container
from services.auth import Role
from tests.case_types import shipped_document
from tests.conftest import auth
from tests.integration.test_case_types_api import (
    ADMIN_CTX,
    CLAIM_FIELDS,
    install,
    open_case,
    project,
)

FR = {"Accept-Language": "fr-FR,fr;q=0.9"}
BIG_CLAIM = {**CLAIM_FIELDS, "claimed_amount": {"amount": 80000, "currency": "EUR"}}


def read(client: TestClient, key: str, path: str, **headers: str) -> Any:
    answer = client.get(path, headers={**auth(key), **headers})
    assert answer.status_code == 200, answer.text
    return answer


def move(client: TestClient, key: str, case_id: str, transition: str, **more: Any) -> None:
    body = {"transition": transition, **more}
    answer = client.post(f"/cases/{case_id}/transitions", json=body, headers=auth(key))
    assert answer.status_code == 200, answer.text


def to_review(client: TestClient, key: str, case_id: str) -> None:
    """Into review, past the expert the case type sends big claims to first."""
    move(client, key, case_id, "start_review")
    move(client, key, case_id, "expert_report_received")


def test_each_role_sees_the_transitions_it_may_take_and_why_some_are_disabled(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    install(container, "insurance_claim")
    case_id = open_case(client, keys[Role.HANDLER], "insurance_claim", BIG_CLAIM)
    to_review(client, keys[Role.HANDLER], case_id)

    french = read(client, keys[Role.HANDLER], f"/cases/{case_id}", **FR).json()
    offered = {t["name"]: t for t in french["transitions"]}
    assert set(offered) == {"request_documents", "send_to_expert", "approve"}  # reject: managers
    approve = offered["approve"]
    assert (approve["label"], approve["to"], approve["to_label"]) == (
        "Accepter",
        "approved",
        "Accepté",
    )
    assert approve["enabled"] is False
    assert approve["reason"] == "Les conditions de cette étape ne sont pas encore remplies"
    assert offered["send_to_expert"]["enabled"] and offered["send_to_expert"]["reason"] is None

    manager = read(client, keys[Role.MANAGER], f"/cases/{case_id}").json()
    by_manager = {t["name"]: t for t in manager["transitions"]}
    assert by_manager["approve"]["enabled"] is True  # the guard lets managers approve any amount
    assert "reject" in by_manager

    # the refusal the command gives matches what the view said
    refused = client.post(
        f"/cases/{case_id}/transitions",
        json={"transition": "approve"},
        headers=auth(keys[Role.HANDLER]),
    )
    assert refused.status_code == 409
    move(client, keys[Role.MANAGER], case_id, "approve")
    settle = {
        t["name"]: t
        for t in read(client, keys[Role.HANDLER], f"/cases/{case_id}").json()["transitions"]
    }
    assert settle["settle"]["enabled"] is False
    assert settle["settle"]["reason"] == "Fill in Settlement amount first"

    auditor = read(client, keys[Role.AUDITOR], f"/cases/{case_id}").json()
    assert auditor["transitions"] == []
    assert not any(auditor["actions"].values())


def test_a_case_types_own_words_explain_a_blocked_transition(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    document = shipped_document("insurance_claim")
    document["transitions"]["approve"]["blocked_reason"] = {
        "en": "Claims over 50,000 EUR are approved by a manager",
        "fr": "Au-delà de 50 000 EUR, un responsable accepte",
    }
    container.case_types.install(document, "test", ADMIN_CTX)
    case_id = open_case(client, keys[Role.HANDLER], "insurance_claim", BIG_CLAIM)
    to_review(client, keys[Role.HANDLER], case_id)
    for headers, reason in [
        ({}, "Claims over 50,000 EUR are approved by a manager"),
        (FR, "Au-delà de 50 000 EUR, un responsable accepte"),
    ]:
        seen = read(client, keys[Role.HANDLER], f"/cases/{case_id}", **headers).json()
        approve = next(t for t in seen["transitions"] if t["name"] == "approve")
        assert (approve["enabled"], approve["reason"]) == (False, reason)


def test_actions_follow_the_role_and_the_state(client: TestClient, keys: dict[Role, str]) -> None:
    body = {"case_type": "generic", "title": "Printer", "fields": {}}
    case_id = client.post("/cases", json=body, headers=auth(keys[Role.HANDLER])).json()["id"]
    open_actions = {
        role: read(client, keys[role], f"/cases/{case_id}").json()["actions"] for role in Role
    }
    closed = client.post(
        f"/cases/{case_id}/close", json={"reason": "done"}, headers=auth(keys[Role.HANDLER])
    )
    assert closed.status_code == 200
    closed_view = {role: read(client, keys[role], f"/cases/{case_id}").json() for role in Role}

    assert open_actions[Role.HANDLER] == {
        "assign": True, "close": True, "reopen": False, "edit_fields": True, "add_note": True,
    }  # fmt: skip
    assert open_actions[Role.INTEGRATOR] == {
        "assign": False, "close": False, "reopen": False, "edit_fields": True, "add_note": True,
    }  # fmt: skip
    assert not any(open_actions[Role.AUDITOR].values())
    assert closed_view[Role.MANAGER]["actions"] == {
        "assign": False, "close": False, "reopen": True, "edit_fields": False, "add_note": True,
    }  # fmt: skip
    assert closed_view[Role.HANDLER]["actions"]["reopen"] is False  # reopening is for managers
    assert not any(closed_view[Role.AUDITOR]["actions"].values())
    assert all(view["transitions"] == [] for view in closed_view.values())
    assert closed_view[Role.MANAGER]["labels"]["status"] == "Closed"
    # what the view offers, the commands accept, and what it withholds they refuse
    reopen = {"reason": "again"}
    assert (
        client.post(
            f"/cases/{case_id}/reopen", json=reopen, headers=auth(keys[Role.HANDLER])
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/cases/{case_id}/reopen", json=reopen, headers=auth(keys[Role.MANAGER])
        ).status_code
        == 200
    )


def test_me_says_who_is_calling_in_which_role(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    assert client.get("/me").status_code == 401
    french = read(client, keys[Role.HANDLER], "/me", **FR).json()
    assert french == {
        "role": "handler",
        "role_label": "Gestionnaire",
        "actor_id": "test-handler",
        "key_label": "test-handler",
        "case_type_rights": [],
    }
    assert read(client, keys[Role.AUDITOR], "/me").json()["role_label"] == "Auditor"
    unlabelled, holder = container.keys.issue(Role.MANAGER)
    me = read(client, unlabelled, "/me").json()
    assert (me["actor_id"], me["key_label"]) == (f"key:{holder.key_id}", "")


def test_the_list_puts_labels_beside_keys(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    install(container, "insurance_claim")
    open_case(client, keys[Role.HANDLER], "insurance_claim", CLAIM_FIELDS)
    project(container)
    french = read(client, keys[Role.HANDLER], "/cases?case_type=insurance_claim", **FR).json()
    row = french["cases"][0]
    assert (row["status"], row["status_label"]) == ("submitted", "Déclaré")
    assert row["case_type_label"] == "Déclaration de sinistre"
    assert (row["priority"], row["priority_label"]) in {("normal", "Normale"), ("high", "Haute")}
    english = read(client, keys[Role.HANDLER], "/cases").json()["cases"][0]
    assert (english["status_label"], english["case_type_label"]) == ("Submitted", "Insurance claim")


def test_the_timeline_tells_the_history_in_the_readers_language(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    install(container, "insurance_claim")
    case_id = open_case(client, keys[Role.HANDLER], "insurance_claim", CLAIM_FIELDS)
    move(client, keys[Role.HANDLER], case_id, "start_review", reason="complete file")
    path = f"/cases/{case_id}/timeline"

    english = read(client, keys[Role.HANDLER], path)
    assert english.headers["Content-Language"] == "en"
    entries = english.json()
    moved = next(e for e in entries if e["kind"] == "CaseStatusChanged")
    assert moved["sentence"] == (
        "test-handler moved the insurance claim from Submitted to Under review "
        "(Start review): “complete file”"
    )
    assert moved["actor"] == {"id": "test-handler", "role": "handler"}
    assert datetime.fromisoformat(moved["at"]).utcoffset() is not None
    assert moved["at"].endswith(("Z", "+00:00"))
    assert [e["version"] for e in entries] == list(range(1, len(entries) + 1))

    french = read(client, keys[Role.HANDLER], path, **FR)
    by_lang = read(client, keys[Role.HANDLER], f"{path}?lang=fr")
    assert french.headers["Content-Language"] == by_lang.headers["Content-Language"] == "fr"
    assert french.json() == by_lang.json()
    moved_fr = next(e for e in french.json() if e["kind"] == "CaseStatusChanged")
    assert moved_fr["sentence"].startswith(
        "test-handler a fait passer le dossier de « Déclaré » à « En instruction »"
    )
    opened = french.json()[0]
    assert opened["changes"][0]["before"] is None
    assert {c["field"] for c in opened["changes"]} == set(CLAIM_FIELDS)
    assert client.get(f"{path}?lang=french", headers=auth(keys[Role.HANDLER])).status_code == 422


SECRET, SECRET_2 = "penicillin-SECRET-7", "latex-SECRET-8"


def test_a_hidden_field_is_absent_from_every_read_entry_point(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    """The integrator's view of patient care hides the allergies, even though its list
    columns name them: no read answer, in any language, shows them."""
    document = shipped_document("patient_care")
    document["views"]["integrator"]["columns"] = ["title", "fields.allergies", "fields.ward"]
    container.case_types.install(document, "test", ADMIN_CTX)
    fields = {"patient": "P-1", "admission_date": "2026-11-30", "allergies": SECRET}
    case_id = open_case(client, keys[Role.HANDLER], "patient_care", fields)
    changes = {"fields": {"allergies": SECRET_2, "ward": "surgery"}}
    patched = client.patch(
        f"/cases/{case_id}/fields", json=changes, headers=auth(keys[Role.HANDLER])
    )
    assert patched.status_code == 200
    project(container)
    paths = [
        f"/cases/{case_id}",
        f"/cases/{case_id}/history",
        f"/cases/{case_id}/timeline",
        "/cases?case_type=patient_care",
        "/exports/cases.csv",
        "/exports/cases.csv?case_type=patient_care",
    ]

    def answers(role: Role) -> str:
        return " ".join(
            read(client, keys[role], path, **headers).text for path in paths for headers in ({}, FR)
        )

    assert SECRET in answers(Role.HANDLER) and SECRET_2 in answers(Role.HANDLER)
    seen_by_integrator = answers(Role.INTEGRATOR)
    assert SECRET not in seen_by_integrator and SECRET_2 not in seen_by_integrator
    assert "surgery" in seen_by_integrator
    timeline = read(client, keys[Role.INTEGRATOR], f"/cases/{case_id}/timeline").json()
    sentences = json.dumps([(e["sentence"], e["changes"]) for e in timeline])
    assert "llergies" not in sentences  # neither the name nor the label, in no sentence
    csv_header = read(
        client, keys[Role.INTEGRATOR], "/exports/cases.csv?case_type=patient_care"
    ).text.splitlines()[0]
    assert csv_header == "id,title,fields.ward,fields.ward_label"
