"""Drafts, review and publication over HTTP (docs/case-types.md, "Drafts, review and
publication"): refused documents use up no number, drafts are edited in place and discarded
out of every list, and a draft is published only once a second person approved it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from infra.bootstrap import Container, bootstrap, build_api
from infra.settings import Settings
from services.auth import Role
from tests.case_types import draft
from tests.conftest import auth, stored_event_count

SMALL: dict[str, Any] = {
    "name": "tiny",
    "labels": {"en": "Tiny"},
    "states": {"open": {"initial": True}, "done": {"final": True}},
    "transitions": {"finish": {"from": "open", "to": "done"}},
}
V1 = "/case-types/tiny/versions/1"


def edit(client: TestClient, key: str, version: int, document: dict[str, Any]) -> Any:
    return client.put(
        f"/case-types/tiny/versions/{version}",
        params={"reason": "relabelled"},
        content=yaml.safe_dump(document).encode(),
        headers={**auth(key), "Content-Type": "application/yaml"},
    )


def step(client: TestClient, key: str, verb: str, comment: str, path: str = V1) -> Any:
    return client.post(f"{path}/{verb}", json={"comment": comment}, headers=auth(key))


def publish(client: TestClient, key: str, path: str = V1) -> Any:
    return client.post(f"{path}/publish", json={"reason": "go live"}, headers=auth(key))


@pytest.fixture
def alice(container: Container) -> str:
    return container.keys.create(Role.ADMIN, label="alice")


@pytest.fixture
def bob(container: Container) -> str:
    return container.keys.create(Role.ADMIN, label="bob")


def test_two_admins_take_a_draft_through_review_and_every_step_is_in_the_history(
    client: TestClient, alice: str, bob: str
) -> None:
    assert draft(client, alice, SMALL, "first cut").json()["version"] == 1
    submitted = step(client, alice, "submit", "new type for the pilot")
    assert submitted.status_code == 200, submitted.text
    assert (submitted.json()["review"], submitted.json()["submitted_by"]) == ("submitted", "alice")
    again = step(client, alice, "submit", "twice")
    assert again.status_code == 409
    assert "awaits review" in again.json()["detail"]

    own = step(client, alice, "approve", "fine by me")
    assert own.status_code == 409, own.text
    assert own.json()["code"] == "own_draft"
    assert "alice wrote or submitted tiny v1 and cannot approve it" in own.json()["detail"]
    assert "ask another reviewer" in own.json()["hint"]

    approved = step(client, bob, "approve", "labels read well")
    assert approved.status_code == 200, approved.text
    assert (approved.json()["review"], approved.json()["reviewed_by"]) == ("approved", "bob")
    published = publish(client, alice)
    assert published.status_code == 200, published.text

    shown = client.get("/case-types/tiny", headers=auth(bob)).json()
    [v1] = shown["versions"]
    assert (shown["current_version"], v1["status"], v1["review"]) == (1, "published", "approved")
    assert (v1["author"], v1["reviewed_by"], v1["published_by"]) == ("alice", "bob", "alice")
    assert v1["review_comment"] == "labels read well"
    history = client.get("/case-types/tiny/history", headers=auth(bob)).json()
    assert [(h["type"], h["actor"], h["comment"] or h["reason"]) for h in history] == [
        ("Created", "alice", None),
        ("DraftSaved", "alice", "first cut"),
        ("DraftSubmitted", "alice", "new type for the pilot"),
        ("DraftApproved", "bob", "labels read well"),
        ("DraftValidated", "alice", None),
        ("Published", "alice", "go live"),
    ]


def test_publishing_without_approval_is_refused_and_stores_nothing(
    client: TestClient, container: Container, alice: str, bob: str
) -> None:
    draft(client, alice, SMALL)
    before = stored_event_count(container)
    history = client.get("/case-types/tiny/history", headers=auth(alice)).json()
    for attempt in ("draft", "submitted"):
        if attempt == "submitted":
            step(client, alice, "submit", "please")
            before, history = (
                stored_event_count(container),
                client.get("/case-types/tiny/history", headers=auth(alice)).json(),
            )
        refused = publish(client, alice)
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "review_required"
        assert "tiny v1 has not been approved" in refused.json()["detail"]
        assert "/approve" in refused.json()["hint"]
        assert stored_event_count(container) == before
        assert client.get("/case-types/tiny/history", headers=auth(alice)).json() == history
    assert client.get("/case-types/tiny", headers=auth(bob)).json()["current_version"] is None


def test_editing_an_approved_draft_voids_the_approval_and_a_rejection_sends_it_back(
    client: TestClient, alice: str, bob: str
) -> None:
    draft(client, alice, SMALL)
    step(client, alice, "submit", "please")
    step(client, bob, "approve", "ok")
    relabelled = {**SMALL, "labels": {"en": "Tiny case"}}
    edited = edit(client, alice, 1, relabelled)
    assert edited.status_code == 200, edited.text
    assert (edited.json()["version"], edited.json()["review"]) == (1, "draft")
    assert edited.json()["reviewed_by"] is None
    assert publish(client, alice).status_code == 409
    document = client.get(V1, headers=auth(bob)).json()["document"]
    assert document["labels"] == {"en": "Tiny case"}

    step(client, alice, "submit", "relabelled")
    rejected = step(client, bob, "reject", "say what a tiny case is")
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["review"], rejected.json()["review_comment"]) == (
        "rejected",
        "say what a tiny case is",
    )
    assert step(client, bob, "approve", "changed my mind").status_code == 409  # not submitted
    refused = publish(client, alice)
    assert refused.status_code == 409
    assert "rejected by bob: say what a tiny case is" in refused.json()["detail"]

    # bob edits it himself: now he is one of its writers and cannot approve it
    edit(client, bob, 1, {**SMALL, "labels": {"en": "Tiny case", "fr": "Petit dossier"}})
    step(client, alice, "submit", "with French")
    own = step(client, bob, "approve", "mine now")
    assert own.status_code == 409
    assert "bob wrote or submitted" in own.json()["detail"]
    history = client.get("/case-types/tiny/history", headers=auth(alice)).json()
    edits = [(h["actor"], h["reason"]) for h in history if h["type"] == "DraftEdited"]
    assert edits == [("alice", "relabelled"), ("bob", "relabelled")]
    rejection = next(h for h in history if h["type"] == "DraftRejected")
    assert (rejection["actor"], rejection["comment"]) == ("bob", "say what a tiny case is")


def test_refused_documents_use_up_no_version_and_a_refused_edit_stores_nothing(
    client: TestClient, container: Container, alice: str
) -> None:
    broken = {**SMALL, "transitions": {"finish": {"from": "open", "to": "dnoe"}}}
    before = stored_event_count(container)
    refused = draft(client, alice, broken)
    assert refused.status_code == 422
    assert any("unknown state 'dnoe'" in p for p in refused.json()["problems"])
    [issue] = [i for i in refused.json()["issues"] if "dnoe" in i["message"]]
    assert (issue["path"], issue["pointer"]) == ("transitions.finish.to", "/transitions/finish/to")
    assert stored_event_count(container) == before
    assert draft(client, alice, SMALL).json()["version"] == 1  # the next valid one gets 1
    assert draft(client, alice, {**SMALL, "labels": {"en": "Two"}}).json()["version"] == 2

    before = stored_event_count(container)
    bad_edit = edit(client, alice, 1, broken)
    assert bad_edit.status_code == 422
    assert any("unknown state 'dnoe'" in p for p in bad_edit.json()["problems"])
    renamed = edit(client, alice, 1, {**SMALL, "name": "other"})
    assert renamed.status_code == 422
    assert "not 'tiny'" in renamed.json()["detail"]
    same = edit(client, alice, 1, SMALL)  # the same document: nothing to record
    assert same.status_code == 200
    assert stored_event_count(container) == before
    assert client.get(V1, headers=auth(alice)).json()["document"] == SMALL


def test_a_published_version_cannot_be_edited_submitted_or_reviewed(
    client: TestClient, alice: str, bob: str
) -> None:
    path = "/case-types/generic/versions/1"  # installed by the system, review waived
    generic = client.get(path, headers=auth(alice)).json()["document"]
    assert (
        client.get("/case-types/generic", headers=auth(alice)).json()["versions"][0]["review"]
        == "waived"
    )
    history = client.get("/case-types/generic/history", headers=auth(alice)).json()
    waived = next(h for h in history if h["type"] == "ReviewWaived")
    assert (waived["actor"], waived["version"]) == ("caseledger", 1)
    changed = client.put(
        path,
        content=yaml.safe_dump({**generic, "labels": {"en": "Other"}}).encode(),
        headers={**auth(alice), "Content-Type": "application/yaml"},
    )
    assert changed.status_code == 409
    assert "published and cannot be edited" in changed.json()["detail"]
    assert step(client, alice, "submit", "x", path).status_code == 409
    assert step(client, bob, "approve", "x", path).status_code == 409


def test_a_discarded_draft_appears_in_no_list(
    client: TestClient, alice: str, bob: str, keys: dict[Role, str]
) -> None:
    draft(client, alice, {**SMALL, "labels": {"en": "Scratch"}})
    step(client, alice, "submit", "try")
    gone = client.delete(V1, params={"reason": "scratch"}, headers=auth(alice))
    assert gone.status_code == 200, gone.text
    for role in Role:
        headers = auth(keys[role])
        assert "tiny" not in [t["name"] for t in client.get("/case-types", headers=headers).json()]
        assert client.get("/case-types/tiny", headers=headers).json()["versions"] == []
        assert client.get(V1, headers=headers).status_code == 404
    assert step(client, bob, "approve", "too late").status_code == 404
    assert draft(client, alice, SMALL).json()["version"] == 2  # numbers only grow


@pytest.fixture
def auditors_review(settings: Settings) -> Iterator[tuple[Container, TestClient]]:
    """A stack where auditors (and only they) review case types, and managers author."""
    configured = settings.model_copy(
        update={"case_type_reviewers": "auditor", "case_type_authors": "admin,manager"}
    )
    built = bootstrap(configured, name="test")
    with TestClient(build_api(built)) as test_client:
        yield built, test_client
    built.close()


def test_which_roles_author_review_and_publish_is_configuration(
    auditors_review: tuple[Container, TestClient],
) -> None:
    container, client = auditors_review
    manager = container.keys.create(Role.MANAGER, label="mia")
    auditor = container.keys.create(Role.AUDITOR, label="ada")
    admin = container.keys.create(Role.ADMIN, label="alice")
    assert draft(client, manager, SMALL).status_code == 201
    assert step(client, manager, "submit", "please").status_code == 200
    refused = step(client, admin, "approve", "ok")
    assert refused.status_code == 403
    assert "'admin' may not review case types; allowed roles: auditor" in refused.json()["detail"]
    assert step(client, auditor, "approve", "ok").status_code == 200
    assert publish(client, manager).status_code == 403  # publishers: admin (the default)
    assert publish(client, admin).status_code == 200
    me = client.get("/me", headers=auth(auditor)).json()
    assert me["case_type_rights"] == ["review"]
    assert client.get("/me", headers=auth(manager)).json()["case_type_rights"] == ["author"]


def test_a_handler_may_not_review_by_default(
    client: TestClient, keys: dict[Role, str], alice: str
) -> None:
    draft(client, alice, SMALL)
    step(client, alice, "submit", "please")
    refused = step(client, keys[Role.HANDLER], "approve", "ok")
    assert refused.status_code == 403
    assert "allowed roles: admin, manager" in refused.json()["detail"]
    assert step(client, keys[Role.MANAGER], "approve", "ok").status_code == 200


def test_unknown_roles_in_the_settings_are_refused_with_the_roles_there_are() -> None:
    with pytest.raises(ValueError, match="unknown role 'reviewer'; roles are admin, manager"):
        Settings(_env_file=None, case_type_reviewers="admin,reviewer")
    with pytest.raises(ValueError, match="at least one role"):
        Settings(_env_file=None, case_type_publishers=" , ")
