"""Plugins: a real installed distribution's entry points give case types functions for their
conditions and actions for their rules; a case type naming a plugin that is not installed is
refused; a plugin that raises, answers outside its contract or loops fails the command,
naming it, and nothing is stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from domain.context import CommandContext
from infra.bootstrap import Container
from services.auth import Role
from services.case_type_document import problems_in
from services.plugins import PLUGIN_BUDGET_MS
from tests.conftest import auth, stored_event_count
from tests.integration.plugin_package import installed_test_plugin

ADMIN = CommandContext("test-admin", "admin")


@pytest.fixture(scope="module", autouse=True)
def test_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with installed_test_plugin(tmp_path_factory.mktemp("plugins")) as folder:
        yield folder


def risky(rules: list[dict[str, Any]] | None = None, **more: Any) -> dict[str, Any]:
    """A case type whose rule flags cases in a risky postcode, through the test plugin."""
    return {
        "name": "risky",
        "labels": {"en": "Risky"},
        "plugins": ["testrisk"],
        "fields": {"postcode": {"type": "text", "required": True}},
        "states": {"open": {"initial": True}, "done": {"final": True}},
        "transitions": {
            "finish": {"from": "open", "to": "done", "if": "testrisk.score(fields.postcode) < 5.0"}
        },
        "rules": rules
        if rules is not None
        else [
            {
                "name": "flag_risky",
                "on": ["CaseOpened"],
                "if": "testrisk.score(fields.postcode) > 5.0",
                "do": [{"plugin": "testrisk.flag", "with": {"reason": "high geo risk"}}],
            }
        ],
        **more,
    }


def open_case(client: TestClient, keys: dict[Role, str], postcode: str) -> Any:
    body = {"case_type": "risky", "title": f"Claim {postcode}", "fields": {"postcode": postcode}}
    return client.post("/cases", json=body, headers=auth(keys[Role.HANDLER]))


def opened(client: TestClient, keys: dict[Role, str], postcode: str) -> dict[str, Any]:
    """The case opened with ``postcode``, as ``GET /cases/{id}`` shows it."""
    answer = open_case(client, keys, postcode)
    assert answer.status_code == 201, answer.text
    case: dict[str, Any] = client.get(
        f"/cases/{answer.json()['id']}", headers=auth(keys[Role.ADMIN])
    ).json()
    return case


def test_installed_plugins_are_listed_with_their_signatures(
    client: TestClient, keys: dict[Role, str]
) -> None:
    answer = client.get("/plugins", headers=auth(keys[Role.ADMIN]))
    assert answer.status_code == 200, answer.text
    [plugin] = [p for p in answer.json() if p["name"] == "testrisk"]
    assert (plugin["package"], plugin["version"]) == ("caseledger-testplugin", "0.1")
    score = next(f for f in plugin["functions"] if f["name"] == "testrisk.score")
    assert score["signature"] == "testrisk.score(postcode: string) -> double"
    assert score["doc"].startswith("Risk from 0 to 10")
    flag = next(a for a in plugin["actions"] if a["name"] == "testrisk.flag")
    assert flag["params"] == [
        {"name": "reason", "type": "string", "required": True},
        {"name": "queue", "type": "string", "required": False},
    ]
    assert flag["returns"] is None


def test_a_new_case_follows_the_plugin_function_and_action_of_its_case_type(
    container: Container, client: TestClient, keys: dict[Role, str]
) -> None:
    container.case_types.install(risky(), "plugins", ADMIN)

    case = opened(client, keys, "75001")
    assert (case["priority"], case["queue"], case["escalations"]) == ("urgent", "review", 1)
    history = client.get(f"/cases/{case['id']}/history", headers=auth(keys[Role.ADMIN])).json()
    kinds = [e["type"] for e in history]
    assert kinds[:5] == [
        "CaseOpened", "CaseRuleFired", "CasePriorityChanged", "CaseEscalated",
        "CaseRoutedToQueue",
    ]  # fmt: skip
    escalated = next(e for e in history if e["type"] == "CaseEscalated")
    assert escalated["data"]["reason"] == "high geo risk (Claim 75001)"

    calm = opened(client, keys, "13001")
    assert (calm["priority"], calm["queue"]) == ("normal", None)
    # The transition's guard calls the plugin too: only the calm case may finish.
    finish = {"transition": "finish"}
    handler = auth(keys[Role.HANDLER])
    refused = client.post(f"/cases/{case['id']}/transitions", json=finish, headers=handler)
    assert refused.status_code in (409, 422), refused.text
    taken = client.post(f"/cases/{calm['id']}/transitions", json=finish, headers=handler)
    assert taken.status_code == 200, taken.text
    assert opened_status(client, keys, calm["id"]) == "done"


def test_a_case_type_naming_a_plugin_that_is_not_installed_is_refused(
    client: TestClient, keys: dict[Role, str]
) -> None:
    document = risky(plugins=["geo_risk"])
    del document["plugins"]
    document["plugins"] = ["geo_risk"]
    answer = client.post(
        "/case-types",
        content=yaml.safe_dump(document),
        headers={**auth(keys[Role.ADMIN]), "Content-Type": "application/yaml"},
    )
    assert answer.status_code == 422, answer.text
    problems = answer.json()["problems"]
    assert any(
        p.startswith("plugins[0]: plugin 'geo_risk' is not installed; installed plugins are")
        and "testrisk" in p
        for p in problems
    ), problems
    # testrisk is installed but not declared: its calls are refused, saying how to declare it
    assert any("declare the plugin at the top of the case type (plugins: [testrisk])" in p
               for p in problems), problems  # fmt: skip


def test_plugin_calls_are_checked_against_what_the_plugin_provides() -> None:
    document = risky(
        rules=[
            {
                "name": "checked",
                "on": ["CaseOpened"],
                "if": "testrisk.scores(fields.postcode) > 1.0",
                "do": [
                    {"plugin": "testrisk.flagg"},
                    {"plugin": "testrisk.flag", "with": {"queue": "x", "colour": "red"}},
                    {"plugin": "testrisk.flag", "with": {"reason": "x"}, "extra": 1},
                ],
            }
        ]
    )
    assert problems_in(document) == [
        "rules[0].if: plugin 'testrisk' has no function 'scores'; its functions: explode, "
        "score, spin, strange",
        "rules[0].do[0].plugin: plugin 'testrisk' has no action 'flagg'; its actions: bad, "
        "boom, flag, forever",
        "rules[0].do[1].with.colour: not a setting of testrisk.flag; "
        "testrisk.flag(reason: string, queue: string = ...)",
        "rules[0].do[1].with: reason is required; "
        "testrisk.flag(reason: string, queue: string = ...)",
        "rules[0].do[2].extra: unknown key; a plugin action has plugin and with",
    ]


def opened_status(client: TestClient, keys: dict[Role, str], case_id: str) -> str:
    status: str = client.get(f"/cases/{case_id}", headers=auth(keys[Role.ADMIN])).json()["status"]
    return status


def _with_rule(condition: str | None, action: dict[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = {"name": "misbehave", "on": ["CaseOpened"], "do": [action]}
    if condition is not None:
        rule["if"] = condition
    return risky(rules=[rule])


MISBEHAVIOURS = {
    "a function that raises": (
        _with_rule("testrisk.explode(fields.postcode)", {"set_priority": "high"}),
        "plugin function testrisk.explode raised ValueError: no risk data for 75001",
    ),
    "a function that answers a non-JSON value": (
        _with_rule("testrisk.strange(fields.postcode) == 1", {"set_priority": "high"}),
        "plugin function testrisk.strange returned a value of type object: must hold plain "
        "values only",
    ),
    "an action that answers an unknown action": (
        _with_rule(None, {"plugin": "testrisk.bad"}),
        "returned actions that are refused: [1].delete_everything: unknown action",
    ),
    "an action that raises": (
        _with_rule(None, {"plugin": "testrisk.boom"}),
        "plugin action testrisk.boom raised RuntimeError: the review service is down",
    ),
    "a function that loops": (
        _with_rule("testrisk.spin(fields.postcode)", {"set_priority": "high"}),
        f"exceeded its budget of {PLUGIN_BUDGET_MS} ms",
    ),
    "an action that loops": (
        _with_rule(None, {"plugin": "testrisk.forever"}),
        f"exceeded its budget of {PLUGIN_BUDGET_MS} ms",
    ),
}


@pytest.mark.parametrize("case", list(MISBEHAVIOURS))
def test_a_misbehaving_plugin_fails_the_command_naming_it_and_stores_nothing(
    container: Container, client: TestClient, keys: dict[Role, str], case: str
) -> None:
    document, why = MISBEHAVIOURS[case]
    container.case_types.install(document, "misbehaving plugin", ADMIN)
    before = stored_event_count(container)

    answer = open_case(client, keys, "75001")

    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == "plugin_failed"
    assert why in body["detail"], body["detail"]
    assert "rules[0]" in body["detail"]
    assert "nothing was stored" in body["hint"]
    assert stored_event_count(container) == before
    # The pool recovers: a well-behaved case type works right after.
    container.case_types.install(risky(), "well-behaved", ADMIN)
    assert opened(client, keys, "75001")["priority"] == "urgent"


def test_the_type_checker_reads_a_plugin_functions_signature() -> None:
    document = risky()
    document["fields"]["amount"] = {"type": "money"}
    document["rules"][0]["if"] = "testrisk.score(fields.amount) > 5.0"
    [problem] = problems_in(document)
    assert problem.startswith("rules[0].if: testrisk.score() takes text here"), problem
