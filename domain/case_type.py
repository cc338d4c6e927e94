"""The versions of a case type, event-sourced: drafted, validated, published or discarded, with
author and reason. A published version never changes; cases stay pinned to the version they
opened under. A case type holds at most :data:`MAX_DRAFTS` unpublished drafts at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidCommand, InvalidTransition

_CASE_TYPE_NAMESPACE = uuid5(NAMESPACE_URL, "urn:caseledger:case-type")
MAX_DRAFTS = 10


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
        """Save ``document`` as the next version, a draft; answers its version number."""
        if document.get("name") != self.name:
            raise InvalidCommand(
                f"the document is named {document.get('name')!r}, not {self.name!r}",
                hint="a case type's documents keep its name; create a new type for a new name",
            )
        if len(drafts := self.drafts()) >= MAX_DRAFTS:
            raise TooManyDrafts(self.name, drafts)
        version = self.latest + 1
        self._on_draft_saved(version=version, document=document, reason=reason, context=context)
        return version

    def record_validation(self, version: int, problems: list[str], context: dict[str, Any]) -> None:
        self.version_record(version)
        self._on_draft_validated(version=version, problems=problems, context=context)

    def publish(self, version: int, reason: str, context: dict[str, Any]) -> None:
        """Make draft ``version`` current. It must have been validated without problems."""
        record = self.version_record(version)
        if record.status == "published":
            raise InvalidTransition(
                f"{self.name} v{version} is already published",
                hint="published versions never change; draft a new version instead",
            )
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

    def _known(self) -> str:
        return ", ".join(str(v) for v in self.versions) or "none"

    @event(DraftSaved)
    def _on_draft_saved(
        self, version: int, document: dict[str, Any], reason: str, context: dict[str, Any]
    ) -> None:
        author = str(context.get("actor_id", "unknown"))
        self.versions[version] = VersionRecord(version, document, "draft", author, reason)

    @event(DraftValidated)
    def _on_draft_validated(
        self, version: int, problems: list[str], context: dict[str, Any]
    ) -> None:
        self.versions[version].problems = list(problems)

    @event(Published)
    def _on_published(self, version: int, reason: str, context: dict[str, Any]) -> None:
        record = self.versions[version]
        record.status = "published"
        record.published_by = str(context.get("actor_id", "unknown"))
        self.current = version

    @event(DraftDiscarded)
    def _on_draft_discarded(self, version: int, reason: str, context: dict[str, Any]) -> None:
        del self.versions[version]
        author = str(context.get("actor_id", "unknown"))
        self.discarded[version] = Discarded(version, author, reason)


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


class UnknownVersion(InvalidCommand):
    """The case type has no such version."""

    code = "unknown_case_type_version"


def case_type_id(name: str) -> UUID:
    """The aggregate id of the case type called ``name``."""
    return uuid5(_CASE_TYPE_NAMESPACE, name)
