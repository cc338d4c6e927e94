"""Case-type administration: draft, edit, validate, review (submit, approve, reject),
publish, discard, list, show and diff versions, and the compiled definitions that cases run
under.

A document with problems is refused and stores nothing, so only a problem-free document gets
a version number; numbers only grow (a discarded draft's number is not given again).

Case types are event-sourced in their own store (``casetypes_events``), apart from case
events, so publishing configuration never shows up on the ``case-events`` topic.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

import jsonpatch
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.utils import get_topic

from domain.case_type import WAIVED, CaseType, VersionRecord, case_type_id
from domain.context import CommandContext
from domain.definition import Definition
from domain.errors import InvalidCommand, UnknownCaseType
from services.case_type_checks import Issue, issues_of
from services.case_type_document import (
    InvalidDocument,
    compile_definition,
    issues_in,
    problems_in,
)
from services.errors import CaseTypeNotFound, VersionConflict
from services.notification_targets import NotificationPolicy, credentials_in
from services.retry import Retry

#: An administrator's command that loses a race runs again on the fresh case type.
RETRY = Retry(attempts=10, pause_s=0.005)
T = TypeVar("T")
NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


class RefusedDocument(InvalidDocument):
    """A document refused when drafted, changed, submitted or published: every problem as
    text (``problems``) and at its place (``issues``: path, JSON pointer, message, hint), so
    the studio shows each where it belongs."""

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__([str(issue) for issue in issues])
        self.issues = [
            {"path": i.path, "pointer": i.pointer, "message": i.message, "hint": i.hint}
            for i in issues
        ]


@dataclass(frozen=True)
class CaseTypeSummary:
    """A case type in the list: its name, current published version, latest version."""

    name: str
    current: int | None
    latest: int
    labels: Mapping[str, str]


@dataclass
class _Listing:
    """What the list shows of one case type, kept from its events as they are stored: the
    labels of each live version (not its document), and the current version."""

    current: int = 0
    labels: dict[int, Mapping[str, str]] = field(default_factory=dict)


class CurrentCaseTypes(Mapping[str, Definition | None]):
    """Every case type a document may open a child case of (drafts included), each with its
    current published version (``None`` while it has none): what ``open_child`` fields are
    checked against. A version is looked up only when a document opens a child of its type,
    once per check; published versions are compiled once per process (the registry's cache).
    """

    def __init__(self, names: list[str], current: Callable[[str], Definition]) -> None:
        self._names, self._known = names, frozenset(names)
        self._current = current
        self._found: dict[str, Definition | None] = {}

    def __getitem__(self, name: str) -> Definition | None:
        if name not in self._known:
            raise KeyError(name)
        if name not in self._found:
            try:
                self._found[name] = self._current(name)
            except (UnknownCaseType, InvalidDocument):  # drafts only, or no longer compiles
                self._found[name] = None
        return self._found[name]

    def __contains__(self, name: object) -> bool:
        return name in self._known  # a name, without looking its version up

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class CaseTypeRegistry(Application[UUID]):
    """The case types and their versions. Published definitions are compiled once per process
    and cached: a published version never changes. The list is read from new events only,
    so listing never loads a draft's document."""

    name = "casetypes"

    def __init__(self, env: Mapping[str, str] | None = None, *, policy: NotificationPolicy) -> None:
        super().__init__(env)
        self.policy = policy  # what IT lets notifications reach (infra knows the settings)
        self._lock = threading.Lock()
        self._compiled: dict[tuple[str, int], Definition] = {}
        self._refreshing = threading.Lock()
        self._names: dict[UUID, str] = {}
        self._listings: dict[str, _Listing] = {}
        self._seen_head: int | None = None
        #: Checks of what depends on a case type and is configured apart from it (the
        #: connectors feeding it): a version they do not fit is not submitted or published.
        self.dependents: list[Callable[[Definition], list[Issue]]] = []

    # -- commands --------------------------------------------------------------------------

    def draft(
        self, document: dict[str, Any], reason: str, context: CommandContext
    ) -> tuple[str, int, list[str]]:
        """Save ``document`` as a new draft version; answers name, version and its problems
        (always none: a document with problems is refused with :class:`InvalidDocument`
        listing each, and nothing is stored)."""
        name = self._checked(document)
        version = self._change(
            name, lambda case_type: case_type.draft(document, reason, context.as_dict()), context
        )
        return name, version, []

    def edit(
        self,
        name: str,
        version: int,
        document: dict[str, Any],
        reason: str,
        context: CommandContext,
    ) -> bool:
        """Replace draft ``version``'s document (refused, storing nothing, on any problem); a
        review under way or an approval is void. Answers whether anything changed."""
        if document.get("name") != name:
            raise InvalidDocument(
                [
                    f"name: the document is named {document.get('name')!r}, not {name!r}; a "
                    "draft keeps its case type's name (draft a new type for a new name)"
                ]
            )
        self._checked(document)
        return self._change(
            name, lambda case_type: case_type.edit(version, document, reason, context.as_dict())
        )

    def submit(self, name: str, version: int, comment: str, context: CommandContext) -> None:
        """Submit draft ``version`` for review; refused (nothing stored) if it has problems,
        or if what depends on the case type would not fit it."""
        document = self.version(name, version).document
        self._checked(document)
        self._check_dependents(document, version)
        self._change(name, lambda case_type: case_type.submit(version, comment, context.as_dict()))

    def approve(self, name: str, version: int, comment: str, context: CommandContext) -> None:
        """Approve submitted draft ``version`` (not by whoever wrote or submitted it)."""
        self._change(name, lambda case_type: case_type.approve(version, comment, context.as_dict()))

    def reject(self, name: str, version: int, comment: str, context: CommandContext) -> None:
        """Send submitted draft ``version`` back to its authors with ``comment``."""
        self._change(name, lambda case_type: case_type.reject(version, comment, context.as_dict()))

    def _checked(self, document: dict[str, Any]) -> str:
        """``document``'s name if it has no problem; else :class:`InvalidDocument` with every
        problem found."""
        name = document.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise InvalidDocument(
                [
                    f"name: {name!r} is not a case type name; use lowercase letters, digits and _"
                    ", starting with a letter (e.g. insurance_claim)"
                ]
            )
        leaks = credentials_in(document)
        if leaks:  # a password in a document would be readable by every role: keep nothing
            raise InvalidDocument(leaks)
        issues = issues_in(document, self.known(), self.policy)
        if issues:  # refused drafts keep nothing, and use up no version number
            raise RefusedDocument(issues)
        return name

    def validate(self, name: str, version: int, context: CommandContext) -> list[str]:
        """Check draft ``version`` and record the result; answers the problems found."""
        problems = problems_in(self.version(name, version).document, self.known(), self.policy)

        def record(case_type: CaseType) -> None:
            if case_type.version_record(version).status == "draft":
                case_type.record_validation(version, problems, context.as_dict())

        self._change(name, record)
        return problems

    def publish(self, name: str, version: int, reason: str, context: CommandContext) -> None:
        """Validate approved draft ``version`` again and publish it; nothing is published on
        a problem, and nothing at all is stored for a draft that was not approved."""
        self.case_type(name).check_publishable(version)
        problems = self.validate(name, version, context)
        if problems:
            raise RefusedDocument(issues_of(problems))
        self._check_dependents(self.version(name, version).document, version)
        self._change(name, lambda case_type: case_type.publish(version, reason, context.as_dict()))

    def _check_dependents(self, document: Mapping[str, Any], version: int) -> None:
        """Refuse, with every problem at its place, a version that what depends on the case
        type (:attr:`dependents`) would not fit."""
        if not self.dependents:
            return
        definition = compile_definition(document, version)
        issues = [issue for check in self.dependents for issue in check(definition)]
        if issues:
            raise RefusedDocument(issues)

    def publish_unreviewed(
        self, name: str, version: int, reason: str, context: CommandContext, waiver: str
    ) -> None:
        """Publish draft ``version`` without four-eyes review, recording the waiver (who, and
        ``waiver``: why) first: for the system installer and an operator's ``--no-review``."""

        def waive(case_type: CaseType) -> None:
            if case_type.version_record(version).review != WAIVED:
                case_type.waive_review(version, waiver, context.as_dict())

        self._change(name, waive)
        self.publish(name, version, reason, context)

    def discard(self, name: str, version: int, reason: str, context: CommandContext) -> str:
        """Throw away draft ``version``; answers who discarded it."""
        self._change(name, lambda case_type: case_type.discard(version, reason, context.as_dict()))
        return context.actor_id

    def _change(
        self,
        name: str,
        command: Callable[[CaseType], T],
        create_with: CommandContext | None = None,
    ) -> T:
        """Run ``command`` on the case type and save; an administrator who saved at the same
        moment wins the race and the command runs again on the fresh case type."""

        def attempt() -> T:
            try:
                case_type: CaseType = self.repository.get(case_type_id(name))
            except AggregateNotFoundError:
                if create_with is None:
                    self.case_type(name)  # raises CaseTypeNotFound, naming the known types
                    raise
                case_type = CaseType(name=name, context=create_with.as_dict())
            result = command(case_type)
            self.save(case_type)
            return result

        return RETRY.run(
            attempt,
            gave_up=lambda: VersionConflict(
                f"case type {name!r} kept changing while this command ran",
                hint="another administrator is editing it; try again",
            ),
        )

    def install(
        self,
        document: dict[str, Any],
        reason: str,
        context: CommandContext,
        waiver: str = "installed by the system, without review",
    ) -> int:
        """Publish ``document`` unless the current version already has exactly this content;
        answers the current version. Used to load shipped and sample case types: the system
        installs them without review, and the history records the waiver."""
        current = self.current_version_of(document)
        if current is not None:
            return current
        name, version, _ = self.draft(document, reason, context)  # refused on any problem
        self.publish_unreviewed(name, version, reason, context, waiver)
        return version

    def current_version_of(self, document: dict[str, Any]) -> int | None:
        """The current version of ``document``'s case type if it has exactly this content."""
        name = str(document.get("name"))
        if name not in self.names():
            return None
        current = self.case_type(name).current
        if current is not None and self.version(name, current).document == document:
            return current
        return None

    def waiting_draft_of(self, document: dict[str, Any]) -> int | None:
        """The newest draft of ``document``'s case type with exactly this content, if any
        (loading a file twice does not draft it twice)."""
        name = str(document.get("name"))
        if name not in self.names():
            return None
        drafts = self.case_type(name).versions.values()
        same = [r.version for r in drafts if r.status == "draft" and r.document == document]
        return max(same, default=None)

    # -- queries ---------------------------------------------------------------------------

    def case_type(self, name: str) -> CaseType:
        try:
            case_type: CaseType = self.repository.get(case_type_id(name))
        except AggregateNotFoundError:
            raise CaseTypeNotFound(
                f"no case type is called {name!r}",
                hint=f"case types: {', '.join(self.names()) or 'none yet'}",
            ) from None
        return case_type

    def version(self, name: str, version: int) -> VersionRecord:
        return self.case_type(name).version_record(version)

    def history(self, name: str) -> list[CaseType.Event]:
        """Every event of the case type, oldest first."""
        self.case_type(name)
        return list(self.events.get(case_type_id(name)))  # type: ignore[arg-type]

    def known(self) -> CurrentCaseTypes:
        """What a document is checked against: every case type's name, and its current
        published version when a document opens a child case of it (``open_child``)."""
        return CurrentCaseTypes(self.names(), self.current)

    def names(self) -> list[str]:
        """Every case type with a version that was not discarded, drafts included, in the
        order they were created."""
        self._refresh()
        with self._refreshing:
            return [name for name, listing in self._listings.items() if listing.labels]

    def summaries(self) -> list[CaseTypeSummary]:
        """The list of case types, without discarded drafts, from what :meth:`_refresh` kept."""
        self._refresh()
        result = []
        with self._refreshing:
            for name, listing in self._listings.items():
                if not listing.labels:
                    continue
                latest = max(listing.labels)
                labels = listing.labels.get(listing.current) or listing.labels[latest]
                result.append(CaseTypeSummary(name, listing.current or None, latest, labels))
        return result

    def diff(self, name: str, old: int, new: int) -> list[dict[str, Any]]:
        """The JSON Patch (RFC 6902) that turns version ``old``'s document into ``new``'s."""
        case_type = self.case_type(name)
        before = case_type.version_record(old).document
        after = case_type.version_record(new).document
        return list(jsonpatch.make_patch(before, after))

    def current(self, name: str) -> Definition:
        """The published version new cases of ``name`` open under."""
        self._refresh()
        version = self._listings[name].current if name in self._listings else 0
        if not version:
            published = [n for n, listing in self._listings.items() if listing.current]
            raise UnknownCaseType(
                f"no published case type is called {name!r}",
                hint=f"published case types: {', '.join(published) or 'none'}",
            )
        return self.definition(name, version)

    def definition(self, name: str, version: int) -> Definition:
        """The compiled definition of a published version (cached)."""
        key = (name, version)
        compiled = self._compiled.get(key)
        if compiled is None:
            record = self.version(name, version)
            if record.status != "published":
                raise InvalidCommand(
                    f"{name} v{version} is a draft, not a published version",
                    hint=f"publish it first: POST /case-types/{name}/versions/{version}/publish",
                )
            # names only: a published version stays valid when a child type it opens changes
            compiled = compile_definition(record.document, version, self.names())
            with self._lock:
                self._compiled[key] = compiled
        return compiled

    def draft_definition(self, name: str, version: int) -> Definition:
        """The compiled definition of draft ``version``, to try it before it is published
        (``services.what_if``); refused for a published or discarded version, and for a draft
        with problems (each listed)."""
        record = self.version(name, version)
        if record.status != "draft":
            raise InvalidCommand(
                f"{name} v{version} is {record.status}, not a draft",
                hint="draft a new version (POST /case-types) and try that one",
            )
        problems = problems_in(record.document, self.known(), self.policy)
        if problems:
            raise InvalidDocument(problems)
        return compile_definition(record.document, version, self.names())

    def _refresh(self) -> None:
        """Apply the case-type events stored since the last look (the store commits them in
        notification order, so nothing stored earlier can appear later)."""
        with self._refreshing:
            head = self.recorder.max_notification_id()
            while head != self._seen_head:
                start = self._seen_head
                page = self.recorder.select_notifications(
                    start, 1000, topics=_LISTED, inclusive_of_start=start is None
                )
                for notification in page:
                    self._apply(self.mapper.to_domain_event(notification))
                if len(page) < 1000:
                    self._seen_head = head
                else:
                    self._seen_head = page[-1].id

    def _apply(self, event: DomainEventProtocol[UUID]) -> None:
        if isinstance(event, CaseType.Created):
            self._names[event.originator_id] = event.name
            self._listings.setdefault(event.name, _Listing())
            return
        listing = self._listings[self._names[event.originator_id]]
        if isinstance(event, CaseType.DraftSaved | CaseType.DraftEdited):
            labels = event.document.get("labels")
            listing.labels[event.version] = labels if isinstance(labels, dict) else {}
        elif isinstance(event, CaseType.Published):
            listing.current = max(listing.current, event.version)
        elif isinstance(event, CaseType.DraftDiscarded):
            listing.labels.pop(event.version, None)


_LISTED = tuple(
    get_topic(kind)
    for kind in (
        CaseType.Created,
        CaseType.DraftSaved,
        CaseType.DraftEdited,
        CaseType.Published,
        CaseType.DraftDiscarded,
    )
)
