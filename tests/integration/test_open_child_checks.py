"""A draft whose rule would open a child case with fields the child case type refuses is
refused, each problem at its place with a hint, and nothing is stored: the rule would
otherwise fire and silently open nothing (tests/unit/test_open_child_checks.py has the cases)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from domain.context import CommandContext
from infra.bootstrap import Container
from services.auth import Role
from services.case_type_document import read_document
from tests.conftest import auth
from tests.unit.test_open_child_checks import PAYMENT

CLAIM = """
name: claim
labels: {en: Claim}
states: {open: {initial: true}}
rules:
  - name: pay
    on: [CaseOpened]
    do:
      - open_child: {case_type: payment, title: "Pay {{ case.title }}", fields: FIELDS}
"""
YAML = {"Content-Type": "application/yaml"}


def test_a_draft_opening_a_child_with_refused_fields_is_refused_and_stores_nothing(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    document = read_document(PAYMENT.encode(), "application/yaml")
    container.case_types.install(document, "test setup", CommandContext("setup", "admin"))
    admin = {**auth(keys[Role.ADMIN]), **YAML}
    wrong = CLAIM.replace("FIELDS", '{amount: "12 EUR", amont: 3}').encode()
    refused = client.post("/case-types?reason=r", content=wrong, headers=admin)
    assert refused.status_code == 422, refused.text
    where = "rules[0].do[0].open_child.fields"
    assert [(i["path"], i["pointer"], i["hint"]) for i in refused.json()["issues"]] == [
        (f"{where}.amount", "/rules/0/do/0/open_child/fields/amount", ""),
        (
            f"{where}.amont",
            "/rules/0/do/0/open_child/fields/amont",
            "did you mean 'amount'? fields of case type 'payment' v1: amount (money, "
            "required), due_on (date), note (text)",
        ),
    ]
    assert refused.json()["issues"][0]["message"].endswith(
        "(field 'amount' of case type 'payment' v1 is money)"
    )
    assert client.get("/case-types/claim", headers=admin).status_code == 404
    fixed = CLAIM.replace("FIELDS", "{amount: {amount: 12, currency: EUR}}").encode()
    assert client.post("/case-types?reason=r", content=fixed, headers=admin).status_code == 201
