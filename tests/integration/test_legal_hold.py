"""A legal hold on a case blocks the erasure of its subject's personal data until it is
lifted: the refusal names the held cases and erases nothing. Real PostgreSQL."""

from __future__ import annotations

from uuid import UUID

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from infra.bootstrap import Container
from infra.cli import app as cli
from infra.settings import Settings
from services.auth import Role
from tests.conftest import auth
from tests.integration.test_personal_data import ADMIN, EMAIL, NAME, PATIENT, open_patient

SUBJECT = "patient-17"


def test_a_held_case_blocks_erasure_until_its_hold_is_lifted(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    container.case_types.install(PATIENT, "test setup", ADMIN)
    admin, manager, handler = keys[Role.ADMIN], keys[Role.MANAGER], keys[Role.HANDLER]
    held = open_patient(client, handler, SUBJECT, NAME, EMAIL)
    free = open_patient(client, handler, SUBJECT, NAME, EMAIL)

    assert (
        client.post(
            f"/cases/{held}/legal-hold", json={"reason": "x"}, headers=auth(handler)
        ).status_code
        == 403
    )
    placed = client.post(
        f"/cases/{held}/legal-hold", json={"reason": "litigation 2026-17"}, headers=auth(manager)
    )
    assert placed.status_code == 200, placed.text
    assert placed.json()["legal_hold"] is True
    shown = client.get(f"/cases/{held}", headers=auth(handler)).json()["legal_hold"]
    manager_id = client.get("/me", headers=auth(manager)).json()["actor_id"]
    assert (shown["reason"], shown["placed_by"]) == ("litigation 2026-17", manager_id)
    twice = client.post(f"/cases/{held}/legal-hold", json={"reason": "again"}, headers=auth(admin))
    assert twice.status_code == 409

    refused = client.post(
        f"/subjects/{SUBJECT}/erasure", json={"reason": "asked"}, headers=auth(admin)
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "legal_hold"
    assert held in refused.json()["detail"] and free not in refused.json()["detail"]
    for case_id in (held, free):  # nothing erased, nothing recorded
        case = client.get(f"/cases/{case_id}", headers=auth(handler)).json()
        assert case["fields"]["full_name"] == NAME and case["erased"] == []

    assert (
        client.delete(f"/cases/{held}/legal-hold?reason=settled", headers=auth(manager)).status_code
        == 403
    )
    lifted = client.delete(f"/cases/{held}/legal-hold?reason=settled", headers=auth(admin))
    assert lifted.status_code == 200, lifted.text
    assert client.get(f"/cases/{held}", headers=auth(handler)).json()["legal_hold"] is None
    again = client.delete(f"/cases/{held}/legal-hold?reason=settled", headers=auth(admin))
    assert again.status_code == 409

    erased = client.post(
        f"/subjects/{SUBJECT}/erasure", json={"reason": "asked"}, headers=auth(admin)
    )
    assert erased.status_code == 200, erased.text
    assert set(erased.json()["recorded"]) == {held, free}
    history = client.get(f"/cases/{held}/history", headers=auth(keys[Role.AUDITOR])).json()
    assert [e["type"] for e in history][-3:] == [
        "CaseLegalHoldPlaced",
        "CaseLegalHoldLifted",
        "CasePersonalDataErased",
    ]
    assert history[-1]["data"]["fields"] == ["email", "full_name"]


def test_the_case_list_flags_held_cases(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    container.case_types.install(PATIENT, "test setup", ADMIN)
    held = open_patient(client, keys[Role.HANDLER], SUBJECT, NAME, EMAIL)
    placed = client.post(
        f"/cases/{held}/legal-hold", json={"reason": "audit"}, headers=auth(keys[Role.ADMIN])
    )
    assert placed.status_code == 200, placed.text
    container.projections.catch_up_from_store(container.reader.head(), 1_000)
    [listed] = client.get("/cases", headers=auth(keys[Role.HANDLER])).json()["cases"]
    assert listed["legal_hold"] is True


def test_the_cli_erases_a_subject_once_no_case_of_it_is_held(
    client: TestClient, keys: dict[Role, str], container: Container, settings: Settings
) -> None:
    container.case_types.install(PATIENT, "test setup", ADMIN)
    held = open_patient(client, keys[Role.HANDLER], SUBJECT, NAME, EMAIL)
    container.ledger.place_legal_hold(UUID(held), "litigation", ADMIN)
    runner, env = CliRunner(), settings.as_env()

    refused = runner.invoke(cli, ["subjects", "erase", SUBJECT, "--reason", "asked"], env=env)
    assert refused.exit_code == 1, refused.output
    assert f"on legal hold: {held}" in refused.output and "how to fix it" in refused.output

    container.ledger.lift_legal_hold(UUID(held), "settled", ADMIN)
    erased = runner.invoke(cli, ["subjects", "erase", SUBJECT, "--reason", "asked"], env=env)
    assert erased.exit_code == 0, erased.output
    assert "1 recorded the erasure now; destroyed its key" in erased.output
    case = client.get(f"/cases/{held}", headers=auth(keys[Role.HANDLER])).json()
    assert case["fields"]["full_name"] is None and case["erased"] == ["email", "full_name"]
