"""The audit export of case histories, shaped for an auditor: one JSON line per event (the
event's envelope with the rule that decided an automatic step, what the role may not see,
and its effective time), or a readable report (self-contained HTML, which ``infra`` prints to
PDF). Pure shaping: histories come from :meth:`CaseViews.audit_trail` a page at a time, and
both forms are written as they are read, so memory does not grow with a history's length.

What is shown is what the exporting role sees (``services.case_views``): an export made as
``auditor`` leaves out the fields the auditor's view hides, and says so in ``withheld``.
A personal value erased with its subject is ``null``, named in ``erased``, and reads
"(erased)" in the report.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.case_views import CaseViews, Reader, ToldEvent, ToldHistory
from services.personal_data import ERASED_TEXT

TEMPLATES = Path(__file__).parent / "audit_templates"
FORMATS = ("jsonl", "html", "pdf")

PositionLookup = Callable[[UUID, int, int], dict[int, int]]
"""The global position of each event of a case with ``after < version <= upto``."""

_ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class ExportScope:
    """What an export holds and for whom: one case, or the cases touched in a period (by
    recorded time), as ``role`` sees them, made by ``made_by`` at ``made_at``."""

    role: str
    made_by: str
    made_at: datetime
    case_id: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def title(self) -> str:
        if self.case_id is not None:
            return f"Audit export of case {self.case_id}"
        since = self.since.isoformat() if self.since else "the beginning"
        until = self.until.isoformat() if self.until else "now"
        return f"Audit export of the cases changed from {since} until {until}"


class AuditExport:
    """Exports case histories as ``reader``'s role sees them, ``page_size`` events read at a
    time: as JSON Lines (:meth:`jsonl`) or as an HTML report (:meth:`html`)."""

    PAGE_SIZE = 500

    def __init__(self, views: CaseViews, page_size: int = PAGE_SIZE) -> None:
        self.views = views
        self.page_size = page_size

    def trails(self, case_ids: Iterable[UUID], reader: Reader) -> Iterator[ToldHistory]:
        """Each case with its history, read as it is iterated."""
        for case_id in case_ids:
            yield self.views.audit_trail(case_id, reader, self.page_size)

    def jsonl(self, trails: Iterable[ToldHistory]) -> Iterator[bytes]:
        """Every event of every case, one JSON line each, case after case."""
        for trail in trails:
            yield from jsonl_lines(trail, self.views.ledger.positions)

    def html(self, scope: ExportScope, trails: Iterable[ToldHistory]) -> Iterator[str]:
        """The readable report of every case."""
        return html_chunks(scope, trails)


def event_record(told: ToldEvent, position: int) -> dict[str, Any]:
    """One event as a JSON Lines record: its envelope (global position included) with
    ``rule``, ``withheld``, ``erased`` (the fields whose values it set were erased with
    their subject: ``null`` in ``data``) and ``effective_at``."""
    seen = told.seen
    envelope = replace(seen.envelope, global_position=position)
    record: dict[str, Any] = json.loads(envelope.to_json())
    context: dict[str, Any] = getattr(seen.event, "context", None) or {}
    record["rule"] = context.get("rule")
    record["withheld"] = list(seen.withheld)
    record["erased"] = list(told.erased)
    record["effective_at"] = seen.effective_at.isoformat() if seen.effective_at else None
    return record


def jsonl_lines(trail: ToldHistory, positions: PositionLookup) -> Iterator[bytes]:
    """The case's history as JSON Lines, one event a line, oldest first."""
    case_id = trail.seen.case.id
    for page in trail.pages:
        first, last = page[0].entry.version, page[-1].entry.version
        where = positions(case_id, first - 1, last)
        for told in page:
            record = event_record(told, where.get(told.entry.version, 0))
            yield json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def html_chunks(scope: ExportScope, trails: Iterable[ToldHistory]) -> Iterator[str]:
    """The readable report of ``trails`` as HTML, written as the histories are read."""
    template = _ENV.get_template("report.html")
    return template.generate(scope=scope, trails=trails, utc=_utc, source=_source, shown=_shown)


def _utc(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else ""


def _source(told: ToldEvent) -> str:
    source = told.seen.envelope.source
    if source is None:
        return ""
    parts = [source.system, source.record_id, source.connector]
    return " / ".join(str(part) for part in parts if part)


def _shown(value: Any, erased: bool = False) -> str:
    if value is None:
        return ERASED_TEXT if erased else "(empty)"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)
