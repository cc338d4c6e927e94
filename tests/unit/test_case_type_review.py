"""Four-eyes review of a case type's drafts, on the aggregate alone (no store)."""

from __future__ import annotations

from typing import Any

import pytest

from domain.case_type import CaseType, OwnDraft, ReviewRequired
from domain.errors import InvalidTransition

DOC: dict[str, Any] = {"name": "tiny", "labels": {"en": "Tiny"}, "states": {"a": {"initial": True}}}


def by(actor: str) -> dict[str, Any]:
    return {"actor_id": actor}


def submitted(author: str = "alice", submitter: str = "alice") -> CaseType:
    case_type = CaseType(name="tiny", context=by(author))
    case_type.draft(DOC, "first", by(author))
    case_type.record_validation(1, [], by(author))
    case_type.submit(1, "please", by(submitter))
    return case_type


@pytest.mark.parametrize(
    ("author", "submitter", "reviewer"),
    [("alice", "alice", "alice"), ("alice", "bob", "bob"), ("alice", "bob", "alice")],
)
def test_whoever_wrote_or_submitted_a_draft_cannot_review_it(
    author: str, submitter: str, reviewer: str
) -> None:
    case_type = submitted(author, submitter)
    for verb in (case_type.approve, case_type.reject):
        with pytest.raises(OwnDraft, match="ask another reviewer") as refused:
            verb(1, "ok", by(reviewer))
        done = "approve" if verb == case_type.approve else "reject"
        assert refused.value.message == (
            f"{reviewer} wrote or submitted tiny v1 and cannot {done} it: ask another reviewer"
        )
    assert case_type.versions[1].review == "submitted"


def test_an_editor_is_a_writer_too_and_an_edit_voids_the_approval() -> None:
    case_type = submitted()
    case_type.approve(1, "ok", by("carol"))
    assert case_type.edit(1, {**DOC, "labels": {"en": "Tinier"}}, "typo", by("carol"))
    record = case_type.versions[1]
    assert (record.review, record.reviewed_by, record.editors) == (
        "draft",
        None,
        ["alice", "carol"],
    )
    with pytest.raises(ReviewRequired, match="not submitted for review"):
        case_type.publish(1, "go", by("alice"))
    case_type.submit(1, "again", by("alice"))
    with pytest.raises(OwnDraft):
        case_type.approve(1, "mine", by("carol"))
    case_type.approve(1, "ok", by("dave"))
    case_type.record_validation(1, [], by("alice"))
    case_type.publish(1, "go", by("alice"))
    assert case_type.current == 1


def test_the_same_document_is_no_edit_and_a_rejected_draft_can_be_submitted_again() -> None:
    case_type = submitted()
    assert not case_type.edit(1, dict(DOC), "same", by("alice"))
    assert case_type.versions[1].review == "submitted"
    case_type.reject(1, "say more", by("bob"))
    with pytest.raises(ReviewRequired, match="rejected by bob: say more"):
        case_type.check_publishable(1)
    case_type.submit(1, "said more", by("alice"))
    assert (case_type.versions[1].review, case_type.versions[1].reviewed_by) == ("submitted", None)


def test_review_steps_apply_only_where_they_make_sense() -> None:
    case_type = submitted()
    with pytest.raises(InvalidTransition, match="already submitted by alice"):
        case_type.submit(1, "again", by("alice"))
    case_type.approve(1, "ok", by("bob"))
    with pytest.raises(InvalidTransition, match="already approved by bob"):
        case_type.approve(1, "twice", by("carol"))
    with pytest.raises(InvalidTransition, match="already approved by bob"):
        case_type.submit(1, "again", by("alice"))
    case_type.publish(1, "go", by("alice"))
    for refused in (
        lambda: case_type.edit(1, {**DOC, "labels": {"en": "x"}}, "late", by("alice")),
        lambda: case_type.submit(1, "late", by("alice")),
        lambda: case_type.reject(1, "late", by("bob")),
        lambda: case_type.waive_review(1, "late", by("ops")),
    ):
        with pytest.raises(InvalidTransition, match="published and cannot be"):
            refused()


def test_a_waived_review_is_recorded_and_lets_the_draft_be_published() -> None:
    case_type = CaseType(name="tiny", context=by("caseledger"))
    case_type.draft(DOC, "shipped", by("caseledger"))
    case_type.record_validation(1, [], by("caseledger"))
    case_type.waive_review(1, "installed by the system", by("caseledger"))
    case_type.publish(1, "shipped", by("caseledger"))
    record = case_type.versions[1]
    assert (record.review, record.reviewed_by, record.review_comment) == (
        "waived",
        "caseledger",
        "installed by the system",
    )
    kinds = [type(e).__name__ for e in case_type.collect_events()]
    assert kinds == ["Created", "DraftSaved", "DraftValidated", "ReviewWaived", "Published"]
