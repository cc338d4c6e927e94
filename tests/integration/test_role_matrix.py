"""The role matrix: every route of the app, every role, and what each role may read.

The table below is the specification: for each route, the roles that get a 2xx (the others
get 403). The routes are enumerated from the app itself, so a new route without a line here
fails the first test. The read paths (case, list, history: what the dashboard shows) are then
checked for every role against a case type whose views hide fields.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import pytest
import yaml
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route

from domain.context import CommandContext
from infra.bootstrap import Container, build_api
from infra.content_store import PostgresContentStore
from infra.embedded import EmbeddedBroker
from services.auth import Role
from tests.case_types import shipped_document
from tests.conftest import auth
from tests.shared_stack import module_container

SETUP = CommandContext("test-setup", "admin")
EVERYONE = "admin manager handler integrator auditor"
PUBLIC = "public"  # answers without a key


@dataclass(frozen=True)
class Call:
    """A request a route answers with a 2xx when the role may make it."""

    path: str
    body: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


Prepare = Callable[[Container], Call]


def _case(container: Container, closed: bool = False) -> str:
    case = container.ledger.open_case("generic", "matrix", {"n": 1}, None, SETUP)
    if closed:
        container.ledger.close_case(case.id, "done", SETUP, None)
    return str(case.id)


def _draft(container: Container) -> int:
    """A new draft of ``generic``; the drafts earlier routes left are discarded first (a case
    type keeps at most ten, and the routes share one stack)."""
    for version in container.case_types.case_type("generic").drafts():
        container.case_types.discard("generic", version, "matrix: next route", SETUP)
    document = shipped_document("generic")
    document["labels"] = {"en": f"Generic {len(container.case_types.summaries())}"}
    document["states"]["open"]["labels"]["en"] = f"Open {id(document)}"
    _, version, problems = container.case_types.draft(document, "matrix", SETUP)
    assert not problems
    return version


def _submitted(container: Container) -> int:
    """A draft submitted for review by test-setup (whom every test key may review)."""
    version = _draft(container)
    container.case_types.submit("generic", version, "matrix", SETUP)
    return version


def _approved(container: Container) -> int:
    version = _submitted(container)
    container.case_types.approve("generic", version, "ok", CommandContext("matrix", "admin"))
    return version


def _key_id(container: Container) -> str:
    return container.keys.issue(Role.AUDITOR, "to revoke")[1].key_id


def _secret(container: Container) -> str:
    container.secrets.set("to_delete", "Bearer abc")
    return "to_delete"


def _document_case(container: Container) -> str:
    stored, _ = PostgresContentStore(container.pool).put(b"%PDF-1.4 scan", "application/pdf", "t")
    case = container.ledger.open_case("generic", "scan", {"scan": stored.ref}, None, SETUP)
    return f"/cases/{case.id}/documents/{stored.ref}"


YAML = {"Content-Type": "application/yaml"}
CONNECTOR = {
    "name": "matrix_files",
    "kind": "file",
    "source": {"folder": "/tmp/caseledger-matrix-drop"},
    "mapping": {"case_type": "generic", "record_id": "record.id", "title": "record.title"},
}


def _connector_yaml(container: Container) -> bytes:
    return yaml.safe_dump(CONNECTOR).encode()


def _connector(container: Container) -> str:
    container.connector_admin.load(CONNECTOR, "matrix")
    return "matrix_files"


def _signed_webhook(container: Container) -> Call:
    """A delivery to a webhook connector, signed with its secret (public: no key)."""
    container.secrets.set("matrix_hook", "whsec_" + base64.b64encode(b"k" * 24).decode())
    document = {
        "name": "matrix_hook",
        "kind": "webhook",
        "source": {"secret": "matrix_hook"},
        "mapping": {"case_type": "generic", "record_id": "record.id"},
    }
    container.connectors.load(document, "matrix")
    body = b'{"id": "m-1"}'
    webhook_id, stamp = f"msg_{uuid4().hex}", str(int(time.time()))
    digest = hmac.new(b"k" * 24, f"{webhook_id}.{stamp}.".encode() + body, "sha256").digest()
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }
    return Call("/connectors/matrix_hook/webhook", content=body, headers=headers)


def _subject(container: Container) -> str:
    """A data subject with personal data sealed (of a case whose save did not happen)."""
    subject = f"matrix-{uuid4().hex[:8]}"
    container.subject_keys.seal(subject, uuid4(), "name", "Ann")
    return subject


def _held_case(container: Container) -> str:
    case_id = _case(container)
    container.ledger.place_legal_hold(UUID(case_id), "litigation", SETUP)
    return case_id


def case_call(suffix: str, body: Any = None, closed: bool = False) -> Prepare:
    return lambda c: Call(f"/cases/{_case(c, closed)}{suffix}", body)


YAML_DRAFT = yaml.safe_dump(shipped_document("generic")).encode()

# (method, path) -> (roles that get a 2xx, how to make a request that succeeds)
MATRIX: dict[tuple[str, str], tuple[str, Prepare]] = {
    ("POST", "/cases"): (
        "admin manager handler integrator",
        lambda c: Call("/cases", {"case_type": "generic", "title": "t", "fields": {"n": 1}}),
    ),
    ("GET", "/cases"): (EVERYONE, lambda c: Call("/cases")),
    ("GET", "/cases/{case_id}"): (EVERYONE, case_call("")),
    ("GET", "/cases/{case_id}/history"): (EVERYONE, case_call("/history")),
    ("GET", "/cases/{case_id}/timeline"): (EVERYONE, case_call("/timeline")),
    ("GET", "/cases/{case_id}/export"): ("admin auditor", case_call("/export?format=html")),
    ("GET", "/exports/cases.csv"): (EVERYONE, lambda c: Call("/exports/cases.csv")),
    ("GET", "/me"): (EVERYONE, lambda c: Call("/me")),
    ("GET", "/read-models/counts"): (EVERYONE, lambda c: Call("/read-models/counts?by=status")),
    ("GET", "/read-models/sla-status"): (EVERYONE, lambda c: Call("/read-models/sla-status")),
    ("GET", "/read-models/cycle-times"): (EVERYONE, lambda c: Call("/read-models/cycle-times")),
    ("GET", "/read-models/throughput"): (EVERYONE, lambda c: Call("/read-models/throughput")),
    ("GET", "/read-models/workload"): (EVERYONE, lambda c: Call("/read-models/workload?by=queue")),
    ("GET", "/parties/{party_id}/cases"): (EVERYONE, lambda c: Call("/parties/p-1/cases")),
    ("GET", "/exports/counts.csv"): (EVERYONE, lambda c: Call("/exports/counts.csv?by=status")),
    ("GET", "/exports/sla-status.csv"): (EVERYONE, lambda c: Call("/exports/sla-status.csv")),
    ("GET", "/exports/cycle-times.csv"): (EVERYONE, lambda c: Call("/exports/cycle-times.csv")),
    ("GET", "/exports/throughput.csv"): (EVERYONE, lambda c: Call("/exports/throughput.csv")),
    ("GET", "/exports/workload.csv"): (EVERYONE, lambda c: Call("/exports/workload.csv?by=queue")),
    ("GET", "/live-metrics"): (EVERYONE, lambda c: Call("/live-metrics")),
    ("GET", "/live-metrics/stream"): (
        EVERYONE,
        lambda c: Call("/live-metrics/stream?max_events=1"),
    ),
    ("GET", "/projections"): ("admin manager auditor", lambda c: Call("/projections")),
    ("GET", "/projections/{name}/held"): (
        "admin manager auditor",
        lambda c: Call("/projections/work_queues/held"),
    ),
    ("GET", "/audit/checkpoints"): ("admin manager auditor", lambda c: Call("/audit/checkpoints")),
    ("POST", "/audit/checkpoints"): ("admin auditor", lambda c: Call("/audit/checkpoints")),
    ("GET", "/cases/{case_id}/evidence"): ("admin auditor", case_call("/evidence")),
    ("POST", "/projections/{name}/retry"): (
        "admin",
        lambda c: Call("/projections/case_list/retry", {}),
    ),
    ("POST", "/cases/{case_id}/assign"): (
        "admin manager handler",
        case_call("/assign", {"assignee": "bob"}),
    ),
    ("POST", "/cases/{case_id}/transitions"): (
        "admin manager handler integrator",
        case_call("/transitions", {"transition": "start_work"}),
    ),
    ("PATCH", "/cases/{case_id}/fields"): (
        "admin manager handler integrator",
        case_call("/fields", {"fields": {"n": 2}}),
    ),
    ("POST", "/cases/{case_id}/notes"): (
        "admin manager handler integrator",
        case_call("/notes", {"text": "seen"}),
    ),
    ("POST", "/cases/{case_id}/close"): (
        "admin manager handler",
        case_call("/close", {"reason": "done"}),
    ),
    ("POST", "/cases/{case_id}/reopen"): (
        "admin manager",
        case_call("/reopen", {"reason": "again"}, closed=True),
    ),
    ("POST", "/documents"): (
        "admin manager handler integrator",
        lambda c: Call(
            "/documents", content=b"%PDF-1.4", headers={"Content-Type": "application/pdf"}
        ),
    ),
    ("GET", "/cases/{case_id}/documents/{ref}"): (EVERYONE, lambda c: Call(_document_case(c))),
    ("POST", "/case-types"): (
        "admin",
        lambda c: Call(
            "/case-types", content=YAML_DRAFT, headers={"Content-Type": "application/yaml"}
        ),
    ),
    ("POST", "/case-types/check"): (  # the same roles as drafting (part A of issue 13)
        "admin",
        lambda c: Call(
            "/case-types/check", content=YAML_DRAFT, headers={"Content-Type": "application/yaml"}
        ),
    ),
    ("GET", "/case-types"): (EVERYONE, lambda c: Call("/case-types")),
    ("GET", "/case-types/{name}"): (EVERYONE, lambda c: Call("/case-types/generic")),
    ("GET", "/case-types/{name}/versions/{version}"): (
        EVERYONE,
        lambda c: Call("/case-types/generic/versions/1"),
    ),
    ("POST", "/case-types/{name}/versions/{version}/validate"): (
        "admin",
        lambda c: Call(f"/case-types/generic/versions/{_draft(c)}/validate"),
    ),
    ("POST", "/case-types/{name}/versions/{version}/publish"): (
        "admin",
        lambda c: Call(f"/case-types/generic/versions/{_approved(c)}/publish", {"reason": "r"}),
    ),
    # drafts and four-eyes review (roles: CASELEDGER_CASE_TYPE_AUTHORS, _REVIEWERS, defaults)
    ("PUT", "/case-types/{name}/versions/{version}"): (
        "admin",
        lambda c: Call(
            f"/case-types/generic/versions/{_draft(c)}",
            content=YAML_DRAFT,
            headers={"Content-Type": "application/yaml"},
        ),
    ),
    ("POST", "/case-types/{name}/versions/{version}/submit"): (
        "admin",
        lambda c: Call(f"/case-types/generic/versions/{_draft(c)}/submit", {"comment": "c"}),
    ),
    ("POST", "/case-types/{name}/versions/{version}/approve"): (
        "admin manager",
        lambda c: Call(f"/case-types/generic/versions/{_submitted(c)}/approve", {"comment": "c"}),
    ),
    ("POST", "/case-types/{name}/versions/{version}/reject"): (
        "admin manager",
        lambda c: Call(f"/case-types/generic/versions/{_submitted(c)}/reject", {"comment": "c"}),
    ),
    ("DELETE", "/case-types/{name}/versions/{version}"): (
        "admin",
        lambda c: Call(f"/case-types/generic/versions/{_draft(c)}?reason=matrix"),
    ),
    ("GET", "/case-types/{name}/diff"): (
        EVERYONE,
        lambda c: Call("/case-types/generic/diff?from=1&to=1"),
    ),
    ("GET", "/case-types/{name}/history"): (
        EVERYONE,
        lambda c: Call("/case-types/generic/history"),
    ),
    ("POST", "/case-types/{name}/versions/{version}/what-if"): (
        "admin",
        lambda c: Call(f"/case-types/generic/versions/{_draft(c)}/what-if", {"days": 1}),
    ),
    # plugins and simulation (part E of issue 13): for those who author case types
    ("GET", "/plugins"): ("admin", lambda c: Call("/plugins")),
    ("POST", "/case-types/{name}/versions/{version}/simulate"): (
        "admin",
        lambda c: Call(f"/case-types/generic/versions/{_draft(c)}/simulate", {"title": "t"}),
    ),
    ("POST", "/case-types/simulate"): (
        "admin",
        lambda c: Call(
            "/case-types/simulate",
            {"document": shipped_document("generic"), "sample": {"title": "t"}},
        ),
    ),
    ("POST", "/case-types/{name}/migrations"): (
        "admin",
        lambda c: Call("/case-types/generic/migrations", {"to_version": 1}),
    ),
    ("GET", "/keys"): ("admin", lambda c: Call("/keys")),
    # personal data: erasure, legal hold (docs/audit.md, "Personal data and erasure")
    ("POST", "/subjects/{subject}/erasure"): (
        "admin",
        lambda c: Call(f"/subjects/{_subject(c)}/erasure", {"reason": "asked"}),
    ),
    ("POST", "/cases/{case_id}/legal-hold"): (
        "admin manager",
        case_call("/legal-hold", {"reason": "litigation"}),
    ),
    ("DELETE", "/cases/{case_id}/legal-hold"): (
        "admin",
        lambda c: Call(f"/cases/{_held_case(c)}/legal-hold?reason=settled"),
    ),
    ("POST", "/keys"): ("admin", lambda c: Call("/keys", {"role": "auditor", "label": "new"})),
    ("DELETE", "/keys/{key_id}"): ("admin", lambda c: Call(f"/keys/{_key_id(c)}")),
    ("GET", "/health"): (PUBLIC, lambda c: Call("/health")),
    ("GET", "/metrics"): (PUBLIC, lambda c: Call("/metrics")),
    ("GET", "/"): (PUBLIC, lambda c: Call("/")),
    ("GET", "/secrets"): ("admin", lambda c: Call("/secrets")),
    ("PUT", "/secrets/{name}"): (
        "admin",
        lambda c: Call("/secrets/claims_webhook", {"value": "Bearer abc"}),
    ),
    ("DELETE", "/secrets/{name}"): ("admin", lambda c: Call(f"/secrets/{_secret(c)}")),
    ("POST", "/bulk/cases"): (
        "integrator",
        lambda c: Call("/bulk/cases", [{"case_type": "generic", "title": "pushed"}]),
    ),
    ("POST", "/connectors"): (
        "admin integrator",
        lambda c: Call("/connectors", content=_connector_yaml(c), headers=YAML),
    ),
    ("POST", "/connectors/{name}/validate"): (
        "admin integrator",
        lambda c: Call(
            "/connectors/matrix_files/validate", content=_connector_yaml(c), headers=YAML
        ),
    ),
    ("GET", "/connectors"): ("admin integrator auditor", lambda c: Call("/connectors")),
    ("GET", "/connectors/{name}"): (
        "admin integrator auditor",
        lambda c: Call(f"/connectors/{_connector(c)}"),
    ),
    ("GET", "/connectors/{name}/quarantine"): (
        "admin integrator auditor",
        lambda c: Call(f"/connectors/{_connector(c)}/quarantine"),
    ),
    ("POST", "/connectors/{name}/replay"): (
        "admin integrator",
        lambda c: Call(f"/connectors/{_connector(c)}/replay", {}),
    ),
    ("GET", "/docs"): (PUBLIC, lambda c: Call("/docs")),
    ("GET", "/docs/init.js"): (PUBLIC, lambda c: Call("/docs/init.js")),
    ("GET", "/openapi.json"): (PUBLIC, lambda c: Call("/openapi.json")),
    ("POST", "/connectors/{name}/webhook"): (PUBLIC, _signed_webhook),
}
MOUNTS = {"/ui", "/docs-assets"}  # static files, public


def app_routes(client: TestClient) -> set[tuple[str, str]]:
    """(method, path) of every route, those of included routers too (FastAPI keeps those
    behind an included-router object that lists its routes' effective contexts)."""
    found = set()
    for route in client.app.routes:  # type: ignore[attr-defined]
        contexts: Any = getattr(route, "effective_route_contexts", None)
        pairs = [(c.path, c.original_route) for c in contexts()] if contexts else [(None, route)]
        for path, original in pairs:
            if isinstance(original, Route):  # APIRoute included
                methods = original.methods or set()
                found |= {(m, path or original.path) for m in methods if m != "HEAD"}
    return found


def test_the_matrix_names_every_route_and_mount(client: TestClient) -> None:
    assert app_routes(client) == set(MATRIX)
    mounts = {r.path for r in client.app.routes if isinstance(r, Mount)}  # type: ignore[attr-defined]
    assert mounts == MOUNTS


def _send(client: TestClient, method: str, call: Call, headers: dict[str, str]) -> Any:
    return client.request(
        method,
        call.path,
        json=call.body,
        content=call.content,
        headers={**headers, **call.headers},
        follow_redirects=False,
    )


@dataclass(frozen=True)
class Shared:
    client: TestClient
    container: Container
    keys: dict[Role, str]


@pytest.fixture(scope="module")
def shared(
    pg_admin_dsn: str, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shared]:
    """One stack for every route: each prepares what its call needs (a case, a draft) and
    the answers depend on the role only (a stack per route took a minute of the suite)."""
    with module_container(pg_admin_dsn, broker, tmp_path_factory.mktemp("matrix")) as built:
        keys = {role: built.keys.create(role, label=f"matrix-{role.value}") for role in Role}
        with TestClient(build_api(built)) as client:
            yield Shared(client, built, keys)


@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda r: f"{r[0]} {r[1]}")
def test_each_role_gets_a_2xx_or_a_403(route: tuple[str, str], shared: Shared) -> None:
    client, container, keys = shared.client, shared.container, shared.keys
    allowed, prepare = MATRIX[route]
    method = route[0]
    if allowed == PUBLIC:
        answer = _send(client, method, prepare(container), {})
        assert answer.status_code < 400, answer.text
        return
    assert _send(client, method, prepare(container), {}).status_code == 401
    for role in Role:
        answer = _send(client, method, prepare(container), auth(keys[role]))
        if role.value in allowed.split():
            assert 200 <= answer.status_code < 300, f"{role}: {answer.text}"
        else:
            assert answer.status_code == 403, f"{role}: {answer.text}"
            assert role.value in answer.json()["detail"]


# -- read rights: hidden fields never appear in any read answer ---------------------------

SECRET = "penicillin-SECRET-7"
SECRET_2 = "latex-SECRET-8"
# Which roles the patient_care views let see allergies (admin has no view: sees everything).
SEES_ALLERGIES = {Role.ADMIN, Role.MANAGER, Role.HANDLER, Role.AUDITOR}


def _patient_care(container: Container) -> None:
    """The shipped patient care type, with a notification that quotes the allergies and a
    rule that opens a child case (whose own view hides them too)."""
    document = shipped_document("patient_care")
    document["notifications"]["allergy_alert"] = {
        "channel": "kafka",
        "topic": "care-alerts",
        "body": "Allergies of {{ fields.patient }}: {{ fields.allergies }}",
    }
    document["rules"].append(
        {"name": "alert", "on": ["CaseFieldsUpdated"], "do": [{"notify": "allergy_alert"}]}
    )
    container.case_types.install(document, "matrix", SETUP)


def _read_answers(client: TestClient, key: str, case_id: str) -> dict[str, Any]:
    headers = auth(key)
    answers = {
        "case": client.get(f"/cases/{case_id}", headers=headers),
        "list": client.get("/cases", headers=headers),
        "list of the type": client.get("/cases?case_type=patient_care", headers=headers),
        "history": client.get(f"/cases/{case_id}/history", headers=headers),
        "case as opened": client.get(f"/cases/{case_id}?version=1", headers=headers),
        "timeline as opened": client.get(f"/cases/{case_id}/timeline?version=1", headers=headers),
    }
    for name, answer in answers.items():
        assert answer.status_code == 200, f"{name}: {answer.text}"
    return {name: answer.json() for name, answer in answers.items()}


def test_hidden_fields_never_appear_in_any_read_answer(
    client: TestClient, container: Container, keys: dict[Role, str]
) -> None:
    _patient_care(container)
    fields = {"patient": "P-1", "admission_date": "2026-11-30", "allergies": SECRET}
    opened = client.post(
        "/cases",
        json={"case_type": "patient_care", "title": "Ann", "fields": fields},
        headers=auth(keys[Role.HANDLER]),
    )
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["id"]
    changed = client.patch(
        f"/cases/{case_id}/fields",
        json={"fields": {"allergies": SECRET_2, "ward": "surgery"}},
        headers=auth(keys[Role.HANDLER]),
    )
    assert changed.status_code == 200, changed.text
    container.projections.catch_up_from_store(container.reader.head(), 100_000)

    for role in Role:
        answers = _read_answers(client, keys[role], case_id)
        text = json.dumps(answers)
        if role in SEES_ALLERGIES:
            assert SECRET in text and SECRET_2 in text, role
            assert answers["case"]["fields"]["allergies"] == SECRET_2
            continue
        assert SECRET not in text and SECRET_2 not in text, f"{role} reads the allergies"
        assert "allergies" not in answers["case"]["fields"]
        assert "allergies" not in answers["case"]["labels"]["fields"]
        assert answers["case"]["fields"]["ward"] == "surgery"
        history = {h["type"]: h for h in answers["history"]}
        assert history["CaseOpened"]["withheld"] == ["allergies"]
        assert history["CaseOpened"]["data"]["fields"]["patient"] == "P-1"
        assert history["CaseFieldsUpdated"]["withheld"] == ["allergies"]
        assert history["CaseFieldsUpdated"]["data"]["changes"] == {"ward": "surgery"}
        assert "body" in history["CaseNotificationRequested"]["withheld"]
        assert "Patient P-1 admitted" in json.dumps(answers["history"])  # its own view allows


def test_opening_a_case_respects_the_roles_edit_view(
    client: TestClient, container: Container, keys: dict[Role, str]
) -> None:
    container.case_types.install(shipped_document("patient_care"), "matrix", SETUP)
    required = {"patient": "P-2", "admission_date": "2026-11-30"}
    head = container.reader.head()
    refused = client.post(
        "/cases",
        json={
            "case_type": "patient_care",
            "title": "Bob",
            "fields": {**required, "allergies": "nuts", "ward": "surgery"},
        },
        headers=auth(keys[Role.INTEGRATOR]),
    )
    assert refused.status_code == 422, refused.text
    assert "allergies" in refused.json()["detail"] and "ward" in refused.json()["detail"]
    assert "lab_report" in refused.json()["hint"]
    assert container.reader.head() == head  # nothing stored

    # the fields the case type requires at opening, and those the role edits, are accepted
    body = {"case_type": "patient_care", "title": "Bob", "fields": {**required, "lab_report": "D"}}
    accepted = client.post("/cases", json=body, headers=auth(keys[Role.INTEGRATOR]))
    assert accepted.status_code == 201, accepted.text
    UUID(accepted.json()["id"])
