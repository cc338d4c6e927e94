"""The versions of a case type, event-sourced: drafted, validated, published, with author and
reason. A published version never changes; cases stay pinned to the version they opened under.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidCommand, InvalidTransition

_CASE_TYPE_NAMESPACE = uuid5(NAMESPACE_URL, "urn:caseledger:case-type")


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


class CaseType(Aggregate):
    """A case type: its versions and which of them is the current published one."""

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

    @staticmethod
    def create_id(name: str, context: dict[str, Any] | None = None) -> UUID:
        return case_type_id(name)

    @event(Created)
    def __init__(self, name: str, context: dict[str, Any]) -> None:
        self.name = name
        self.versions: dict[int, VersionRecord] = {}
        self.current: int | None = None

    def draft(self, document: dict[str, Any], reason: str, context: dict[str, Any]) -> int:
        """Save ``document`` as the next version, a draft; answers its version number."""
        if document.get("name") != self.name:
            raise InvalidCommand(
                f"the document is named {document.get('name')!r}, not {self.name!r}",
                hint="a case type's documents keep its name; create a new type for a new name",
            )
        version = max(self.versions, default=0) + 1
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

    def version_record(self, version: int) -> VersionRecord:
        try:
            return self.versions[version]
        except KeyError:
            known = ", ".join(str(v) for v in self.versions) or "none"
            raise UnknownVersion(
                f"case type {self.name!r} has no version {version}", hint=f"versions: {known}"
            ) from None

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


class UnknownVersion(InvalidCommand):
    """The case type has no such version."""

    code = "unknown_case_type_version"


def case_type_id(name: str) -> UUID:
    """The aggregate id of the case type called ``name``."""
    return uuid5(_CASE_TYPE_NAMESPACE, name)
