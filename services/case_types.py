"""Case-type administration: draft, validate, publish, list, show and diff versions, and the
compiled definitions that cases run under.

Case types are event-sourced in their own store (``casetypes_events``), apart from case
events, so publishing configuration never shows up on the ``case-events`` topic.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import jsonpatch
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Notification

from domain.case_type import CaseType, VersionRecord, case_type_id
from domain.context import CommandContext
from domain.definition import Definition
from domain.errors import InvalidCommand, UnknownCaseType
from services.case_type_document import InvalidDocument, compile_definition, problems_in
from services.errors import CaseTypeNotFound, VersionConflict

RETRIES = 10
T = TypeVar("T")
NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class CaseTypeSummary:
    """A case type in the list: its name, current published version, latest version."""

    name: str
    current: int | None
    latest: int
    labels: Mapping[str, str]


class CaseTypeRegistry(Application[UUID]):
    """The case types and their versions. Published definitions are compiled once per process
    and cached: a published version never changes."""

    name = "casetypes"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self._lock = threading.Lock()
        self._compiled: dict[tuple[str, int], Definition] = {}
        self._current: dict[str, int] = {}
        self._seen_head: int | None = -1

    # -- commands --------------------------------------------------------------------------

    def draft(
        self, document: dict[str, Any], reason: str, context: CommandContext
    ) -> tuple[str, int, list[str]]:
        """Save ``document`` as a new draft version; answers name, version and its problems."""
        name = document.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise InvalidDocument(
                [
                    f"name: {name!r} is not a case type name; use lowercase letters, digits and _"
                    ", starting with a letter (e.g. insurance_claim)"
                ]
            )
        problems = problems_in(document, self.names())
        version = self._change(
            name, lambda case_type: case_type.draft(document, reason, context.as_dict()), context
        )
        return name, version, problems

    def validate(self, name: str, version: int, context: CommandContext) -> list[str]:
        """Check draft ``version`` and record the result; answers the problems found."""
        problems = problems_in(self.version(name, version).document, self.names())

        def record(case_type: CaseType) -> None:
            if case_type.version_record(version).status == "draft":
                case_type.record_validation(version, problems, context.as_dict())

        self._change(name, record)
        return problems

    def publish(self, name: str, version: int, reason: str, context: CommandContext) -> None:
        """Validate draft ``version`` again and publish it; nothing is published on a problem."""
        problems = self.validate(name, version, context)
        if problems:
            raise InvalidDocument(problems)
        self._change(name, lambda case_type: case_type.publish(version, reason, context.as_dict()))

    def _change(
        self,
        name: str,
        command: Callable[[CaseType], T],
        create_with: CommandContext | None = None,
    ) -> T:
        """Run ``command`` on the case type and save; an administrator who saved at the same
        moment wins the race and the command runs again on the fresh case type."""
        for _ in range(RETRIES):
            try:
                case_type: CaseType = self.repository.get(case_type_id(name))
            except AggregateNotFoundError:
                if create_with is None:
                    raise
                case_type = CaseType(name=name, context=create_with.as_dict())
            result = command(case_type)
            try:
                self.save(case_type)
            except IntegrityError:
                time.sleep(random.uniform(0, 0.01))
                continue
            return result
        raise VersionConflict(
            f"case type {name!r} kept changing while this command ran",
            hint="another administrator is editing it; try again",
        )

    def install(self, document: dict[str, Any], reason: str, context: CommandContext) -> int:
        """Publish ``document`` unless the current version already has exactly this content;
        answers the current version. Used to load shipped and sample case types."""
        name = str(document.get("name"))
        if name in self.names():
            current = self.case_type(name).current
            if current is not None and self.version(name, current).document == document:
                return current
        problems = problems_in(document, self.names())
        if problems:  # nothing is stored for a document that could not be published
            raise InvalidDocument(problems)
        name, version, _ = self.draft(document, reason, context)
        self.publish(name, version, reason, context)
        return version

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

    def names(self) -> list[str]:
        """Every case type's name, drafts included, in the order they were created."""
        self._refresh()
        return list(self._current)

    def summaries(self) -> list[CaseTypeSummary]:
        result = []
        for name in self.names():
            case_type = self.case_type(name)
            latest = max(case_type.versions)
            shown = case_type.versions[case_type.current or latest].document
            labels = shown.get("labels") if isinstance(shown.get("labels"), dict) else {}
            result.append(CaseTypeSummary(name, case_type.current, latest, labels or {}))
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
        version = self._current.get(name)
        if version is None or version == 0:
            published = [n for n, v in self._current.items() if v]
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
            compiled = compile_definition(record.document, version, self.names())
            with self._lock:
                self._compiled[key] = compiled
        return compiled

    def _refresh(self) -> None:
        """Re-read which versions are current when the store has new events."""
        head = self.recorder.max_notification_id()
        if head == self._seen_head:
            return
        names: dict[UUID, str] = {}
        current: dict[str, int] = {}
        topics = (_topic(CaseType.Created), _topic(CaseType.Published))
        selected: list[Notification] = []
        start: int | None = None
        while True:
            page = self.recorder.select_notifications(
                start, 1000, topics=topics, inclusive_of_start=start is None
            )
            selected += page
            if len(page) < 1000:
                break
            start = page[-1].id
        for notification in selected:
            event = self.mapper.to_domain_event(notification)
            if isinstance(event, CaseType.Created):
                names[event.originator_id] = event.name
                current.setdefault(event.name, 0)
            elif isinstance(event, CaseType.Published):
                name = names[event.originator_id]
                current[name] = max(current[name], event.version)
        with self._lock:
            self._current, self._seen_head = current, head


def _topic(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"
