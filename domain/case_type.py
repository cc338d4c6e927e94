"""The versions of a case type, event-sourced: drafted, edited, validated, reviewed (four
eyes), published or discarded, with actor and reason. A published version never changes; cases
stay pinned to the version they opened under. A case type holds at most :data:`MAX_DRAFTS`
unpublished drafts at a time.

Four eyes: a draft is submitted for review, then approved or rejected, with a comment, by
someone who did not write it (nobody who saved its document, nor its submitter); only an
approved draft is published. Editing a submitted or approved draft sends it back to
``draft``. The system installer (and an operator saying so) may waive the review; the
waiver is an event of its own, so the history says the version was published unreviewed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidCommand, InvalidTransition

_CASE_TYPE_NAMESPACE = uuid5(NAMESPACE_URL, "urn:caseledger:case-type")
MAX_DRAFTS = 10
# Review states of a version (VersionRecord.review).
DRAFT, SUBMITTED, APPROVED, REJECTED, WAIVED = (
    "draft", "submitted", "approved", "rejected", "waived"
)  # fmt: skip


@dataclass
class VersionRecord:
    """One version of a case type as its events make it."""

    version: int
    document: dict[str, Any]
    status: str  # "draft" or "published"
    author: str
    reason: str
    problems: list[str] | None = None  # None until validated
    published_by: str | None = None
    #: Where the four-eyes review stands: draft, submitted, approved, rejected, or waived
    #: (published without review, by the installer or an operator who said so).
    review: str = DRAFT
    #: Everyone who saved this version's document (drafted or edited it), first author first.
    editors: list[str] = field(default_factory=list)
    submitted_by: str | None = None
    #: Who approved or rejected it (or waived the review), and their comment.
    reviewed_by: str | None = None
    review_comment: str | None = None

    @property
    def contributors(self) -> list[str]:
        """Who may not approve this version: whoever wrote its document or submitted it."""
        submitter = [self.submitted_by] if self.submitted_by else []
        return list(dict.fromkeys([*self.editors, *submitter]))


@dataclass(frozen=True)
class Discarded:
    """A draft that was discarded: its number is never used again."""

    version: int
    author: str
    reason: str


class CaseType(Aggregate):
    """A case type: its live versions, which of them is the current published one, and the
    drafts that were discarded (their documents are no longer kept in memory)."""

    class Created(Aggregate.Created):
        """A case type was named for the first time."""

        name: str
        context: dict[str, Any]

    class DraftSaved(Aggregate.Event):
        """A new version was drafted from a document (YAML or JSON, stored as JSON)."""

        version: int
        document: dict[str, Any]
        reason: str
        context: dict[str, Any]

    class DraftValidated(Aggregate.Event):
        """A draft was checked; ``problems`` is empty when it is valid."""

        version: int
        problems: list[str]
        context: dict[str, Any]

    class Published(Aggregate.Event):
        """A draft became the version new cases of this type open under."""

        version: int
        reason: str
        context: dict[str, Any]

    class DraftDiscarded(Aggregate.Event):
        """An unpublished draft was thrown away; it no longer appears in any list."""

        version: int
        reason: str
        context: dict[str, Any]

    class DraftEdited(Aggregate.Event):
        """A draft's document was replaced (its number kept); a review under way is void."""

        version: int
        document: dict[str, Any]
        reason: str
        context: dict[str, Any]

    class DraftSubmitted(Aggregate.Event):
        """A draft was submitted for review."""

        version: int
        comment: str
        context: dict[str, Any]

    class DraftApproved(Aggregate.Event):
        """A reviewer who did not write the draft approved it: it may be published."""

        version: int
        comment: str
        context: dict[str, Any]

    class DraftRejected(Aggregate.Event):
        """A reviewer sent the draft back to its authors, saying why."""

        version: int
        comment: str
        context: dict[str, Any]

    class ReviewWaived(Aggregate.Event):
        """The draft is to be published without review: by the system installer, or by an
        operator who said so (``caseledger case-types load --no-review``)."""

        version: int
        reason: str
        context: dict[str, Any]

    @staticmethod
    def create_id(name: str, context: dict[str, Any] | None = None) -> UUID:
        return case_type_id(name)

    @event(Created)
    def __init__(self, name: str, context: dict[str, Any]) -> None:
        self.name = name
        self.versions: dict[int, VersionRecord] = {}
        self.discarded: dict[int, Discarded] = {}
        self.current: int | None = None

    @property
    def latest(self) -> int:
        """The highest version number given so far, discarded drafts included."""
        return max([*self.versions, *self.discarded], default=0)

    def drafts(self) -> list[int]:
        """The unpublished drafts, oldest first."""
        return [v for v, record in self.versions.items() if record.status == "draft"]

    def draft(self, document: dict[str, Any], reason: str, context: dict[str, Any]) -> int:
        """Save ``document`` as the next version, a draft; answers its version number.
        Numbers only grow: a discarded draft's number is never given again."""
        self._check_name(document)
        if len(drafts := self.drafts()) >= MAX_DRAFTS:
            raise TooManyDrafts(self.name, drafts)
        version = self.latest + 1
        self._on_draft_saved(version=version, document=document, reason=reason, context=context)
        return version

    def edit(
        self, version: int, document: dict[str, Any], reason: str, context: dict[str, Any]
    ) -> bool:
        """Replace draft ``version``'s document; a submitted or approved draft goes back to
        ``draft``. Answers False (and records nothing) when the document is the same."""
        record = self._draft_record(version, "edited")
        self._check_name(document)
        if document == record.document:
            return False
        self._on_draft_edited(version=version, document=document, reason=reason, context=context)
        return True

    def submit(self, version: int, comment: str, context: dict[str, Any]) -> None:
        """Submit draft ``version`` for review (again, after a rejection)."""
        record = self._draft_record(version, "submitted")
        if record.review == SUBMITTED:
            raise InvalidTransition(
                f"{self.name} v{version} was already submitted by {record.submitted_by} "
                "and awaits review",
                hint="ask a reviewer to approve or reject it",
            )
        if record.review == APPROVED:
            raise InvalidTransition(
                f"{self.name} v{version} is already approved by {record.reviewed_by}",
                hint=f"publish it: POST /case-types/{self.name}/versions/{version}/publish",
            )
        self._on_draft_submitted(version=version, comment=comment, context=context)

    def approve(self, version: int, comment: str, context: dict[str, Any]) -> None:
        """Approve submitted draft ``version``; refused to whoever wrote or submitted it."""
        record = self._submitted_record(version, "approved")
        self._check_second_person(record, context, "approve")
        self._on_draft_approved(version=version, comment=comment, context=context)

    def reject(self, version: int, comment: str, context: dict[str, Any]) -> None:
        """Send submitted draft ``version`` back to its authors with ``comment``."""
        record = self._submitted_record(version, "rejected")
        self._check_second_person(record, context, "reject")
        self._on_draft_rejected(version=version, comment=comment, context=context)

    def waive_review(self, version: int, reason: str, context: dict[str, Any]) -> None:
        """Let draft ``version`` be published without review (the installer; an operator who
        says so). The waiver is recorded with who and why."""
        self._draft_record(version, "published without review")
        self._on_review_waived(version=version, reason=reason, context=context)

    def check_publishable(self, version: int) -> VersionRecord:
        """The record of draft ``version`` if its review allows publishing it, else raise."""
        record = self.version_record(version)
        if record.status == "published":
            raise InvalidTransition(
                f"{self.name} v{version} is already published",
                hint="published versions never change; draft a new version instead",
            )
        if record.review not in (APPROVED, WAIVED):
            raise ReviewRequired(self.name, version, record)
        return record

    def record_validation(self, version: int, problems: list[str], context: dict[str, Any]) -> None:
        self.version_record(version)
        self._on_draft_validated(version=version, problems=problems, context=context)

    def publish(self, version: int, reason: str, context: dict[str, Any]) -> None:
        """Make draft ``version`` current. It must have been approved (or its review waived)
        and validated without problems."""
        record = self.check_publishable(version)
        if record.problems is None or record.problems:
            raise InvalidTransition(
                f"{self.name} v{version} has not passed validation",
                hint="validate the draft and fix every problem it reports, then publish",
            )
        if self.current is not None and version < self.current:
            raise InvalidTransition(
                f"{self.name} v{version} is older than the published v{self.current}",
                hint="draft a new version from the document you want to publish",
            )
        self._on_published(version=version, reason=reason, context=context)

    def discard(self, version: int, reason: str, context: dict[str, Any]) -> None:
        """Throw away draft ``version``. Published versions are kept for ever."""
        if self.version_record(version).status == "published":
            raise InvalidTransition(
                f"{self.name} v{version} is published and cannot be discarded",
                hint="published versions stay for the cases that run under them; "
                "publish a newer version instead",
            )
        self._on_draft_discarded(version=version, reason=reason, context=context)

    def version_record(self, version: int) -> VersionRecord:
        if gone := self.discarded.get(version):
            raise UnknownVersion(
                f"{self.name} v{version} was discarded by {gone.author}: {gone.reason}",
                hint=f"versions: {self._known()}",
            )
        try:
            return self.versions[version]
        except KeyError:
            raise UnknownVersion(
                f"case type {self.name!r} has no version {version}",
                hint=f"versions: {self._known()}",
            ) from None

    def _check_name(self, document: dict[str, Any]) -> None:
        if document.get("name") != self.name:
            raise InvalidCommand(
                f"the document is named {document.get('name')!r}, not {self.name!r}",
                hint="a case type's documents keep its name; create a new type for a new name",
            )

    def _draft_record(self, version: int, done: str) -> VersionRecord:
        record = self.version_record(version)
        if record.status == "published":
            raise InvalidTransition(
                f"{self.name} v{version} is published and cannot be {done}",
                hint="published versions never change; draft a new version instead",
            )
        return record

    def _submitted_record(self, version: int, done: str) -> VersionRecord:
        record = self._draft_record(version, done)
        if record.review != SUBMITTED:
            state = {APPROVED: f"already approved by {record.reviewed_by}"}.get(
                record.review, f"{record.review}, not submitted for review"
            )
            raise InvalidTransition(
                f"{self.name} v{version} is {state}",
                hint="only a draft submitted for review can be approved or rejected: "
                f"POST /case-types/{self.name}/versions/{version}/submit",
            )
        return record

    def _check_second_person(
        self, record: VersionRecord, context: dict[str, Any], verb: str
    ) -> None:
        actor = str(context.get("actor_id", "unknown"))
        if actor in record.contributors:
            raise OwnDraft(self.name, record.version, actor, verb)

    def _known(self) -> str:
        return ", ".join(str(v) for v in self.versions) or "none"

    @event(DraftSaved)
    def _on_draft_saved(
        self, version: int, document: dict[str, Any], reason: str, context: dict[str, Any]
    ) -> None:
        author = _actor(context)
        self.versions[version] = VersionRecord(
            version, document, "draft", author, reason, editors=[author]
        )

    @event(DraftEdited)
    def _on_draft_edited(
        self, version: int, document: dict[str, Any], reason: str, context: dict[str, Any]
    ) -> None:
        record = self.versions[version]
        record.document = document
        record.problems = None
        editor = _actor(context)
        if editor not in record.editors:
            record.editors.append(editor)
        _reopen(record)

    @event(DraftSubmitted)
    def _on_draft_submitted(self, version: int, comment: str, context: dict[str, Any]) -> None:
        record = self.versions[version]
        _reopen(record)
        record.review = SUBMITTED
        record.submitted_by = _actor(context)
        record.review_comment = comment

    @event(DraftApproved)
    def _on_draft_approved(self, version: int, comment: str, context: dict[str, Any]) -> None:
        self._reviewed(version, APPROVED, comment, context)

    @event(DraftRejected)
    def _on_draft_rejected(self, version: int, comment: str, context: dict[str, Any]) -> None:
        self._reviewed(version, REJECTED, comment, context)

    @event(ReviewWaived)
    def _on_review_waived(self, version: int, reason: str, context: dict[str, Any]) -> None:
        self._reviewed(version, WAIVED, reason, context)

    def _reviewed(self, version: int, review: str, comment: str, context: dict[str, Any]) -> None:
        record = self.versions[version]
        record.review = review
        record.reviewed_by = _actor(context)
        record.review_comment = comment

    @event(DraftValidated)
    def _on_draft_validated(
        self, version: int, problems: list[str], context: dict[str, Any]
    ) -> None:
        self.versions[version].problems = list(problems)

    @event(Published)
    def _on_published(self, version: int, reason: str, context: dict[str, Any]) -> None:
        record = self.versions[version]
        record.status = "published"
        record.published_by = _actor(context)
        self.current = version

    @event(DraftDiscarded)
    def _on_draft_discarded(self, version: int, reason: str, context: dict[str, Any]) -> None:
        del self.versions[version]
        self.discarded[version] = Discarded(version, _actor(context), reason)


class TooManyDrafts(InvalidTransition):
    """The case type already holds :data:`MAX_DRAFTS` unpublished drafts."""

    code = "too_many_drafts"

    def __init__(self, name: str, drafts: list[int]) -> None:
        oldest = drafts[0]
        super().__init__(
            f"case type {name!r} has {len(drafts)} unpublished drafts "
            f"(v{', v'.join(map(str, drafts))}); at most {MAX_DRAFTS} are kept",
            hint=f"publish one, or discard one you no longer need: "
            f"DELETE /case-types/{name}/versions/{oldest}?reason=... as admin, or "
            f"caseledger case-types discard {name} {oldest} --reason ...",
        )


class ReviewRequired(InvalidTransition):
    """Publishing a draft that was not approved by a second person."""

    code = "review_required"

    def __init__(self, name: str, version: int, record: VersionRecord) -> None:
        state = {
            DRAFT: "not submitted for review",
            SUBMITTED: f"submitted by {record.submitted_by} and awaits review",
            REJECTED: f"rejected by {record.reviewed_by}: {record.review_comment}",
        }.get(record.review, record.review)
        steps = {
            DRAFT: f"submit it (POST /case-types/{name}/versions/{version}/submit), then ",
            REJECTED: "fix it (PUT the document), submit it again, then ",
        }.get(record.review, "")
        super().__init__(
            f"{name} v{version} has not been approved: it is {state}",
            hint=f"{steps}have a reviewer who did not write it approve it "
            f"(POST /case-types/{name}/versions/{version}/approve); then publish",
        )


class OwnDraft(InvalidTransition):
    """A reviewer tried to approve or reject a draft they wrote or submitted."""

    code = "own_draft"

    def __init__(self, name: str, version: int, actor: str, verb: str) -> None:
        super().__init__(
            f"{actor} wrote or submitted {name} v{version} and cannot {verb} it: "
            "ask another reviewer",
            hint="four eyes: ask another reviewer (someone who neither edited nor submitted "
            "this draft)",
        )


class UnknownVersion(InvalidCommand):
    """The case type has no such version."""

    code = "unknown_case_type_version"


def _actor(context: dict[str, Any]) -> str:
    return str(context.get("actor_id", "unknown"))


def _reopen(record: VersionRecord) -> None:
    """Void a review under way or done: the draft is back to ``draft``."""
    record.review = DRAFT
    record.submitted_by = record.reviewed_by = record.review_comment = None


def case_type_id(name: str) -> UUID:
    """The aggregate id of the case type called ``name``."""
    return uuid5(_CASE_TYPE_NAMESPACE, name)
