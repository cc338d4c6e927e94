"""Help texts of fields over HTTP: ``GET /cases/{id}`` answers each seen field's help text
in the reader's language (``labels.field_help``), and none for fields the role does not see.
Real PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient

from infra.bootstrap import Container
from services.auth import Role
from tests.conftest import auth
from tests.integration.test_case_types_api import CLAIM_FIELDS, install, open_case

FR = {"Accept-Language": "fr-FR,fr;q=0.9"}


def field_help(client: TestClient, key: str, case_id: str, **headers: str) -> dict[str, str]:
    answer = client.get(f"/cases/{case_id}", headers={**auth(key), **headers})
    assert answer.status_code == 200, answer.text
    shown: dict[str, str] = answer.json()["labels"]["field_help"]
    return shown


def test_a_case_answers_the_help_texts_of_the_fields_its_reader_sees_in_their_language(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    install(container, "insurance_claim")
    case_id = open_case(client, keys[Role.HANDLER], "insurance_claim", CLAIM_FIELDS)

    french = field_help(client, keys[Role.HANDLER], case_id, **FR)
    assert french["incident_date"] == "Le jour du sinistre, pas celui de sa découverte"
    assert "category" not in french  # a field without help has no entry
    english = field_help(client, keys[Role.HANDLER], case_id)
    assert english["incident_date"] == "The day the damage happened, not the day it was found"
    assert set(english) == set(french) >= {"policy_number", "claimed_amount", "contact_email"}

    # the integrator's view does not show contact_email: nor does its help
    integrator = field_help(client, keys[Role.INTEGRATOR], case_id)
    assert "contact_email" not in integrator and "policy_number" in integrator
