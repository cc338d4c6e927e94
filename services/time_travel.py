"""Reading a case at a past moment, on either of its two time axes.

- **Recorded time** (``as_of``, or ``version``): what caseledger knew at that moment, the
  events recorded by then. The case is the aggregate at that version, loaded from the
  nearest snapshot (``CaseLedger.case_at``).
- **Effective time** (``effective_at``): what was true in the world at that moment according
  to what is known (now, or at ``as_of``): the events whose effective time is at or before
  it, applied in effective-time order (ties in version order), so a fact a silo reports late
  with an older ``occurred_at`` takes its place among the others.

The effective time of an event is its ``occurred_at`` when the command stated one (ingested
facts, integrator commands); a derived event has none of its own and is dated by its cause:
a rule's ``RuleFired`` by the event that triggered it, the rule's actions by that
``RuleFired`` (their ``causation_id``), an SLA warning or breach by the moment it fell due
(``due_at``). SLA clock starts, pauses and stops carry the context of the command that moved
the case, so they share its effective time. Anything else is dated by its recorded time.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.case import Case
from domain.envelope import event_id_for
from domain.errors import DomainError
from services.errors import CaseNotFound

__all__ = [
    "BadMoment",
    "CaseNotYetOpened",
    "EffectiveTimes",
    "Moment",
    "VersionNotFound",
    "effective_order",
    "effective_times",
    "fold_effective",
    "parse_moment",
]


class BadMoment(DomainError):
    """A moment or version to read a case at that cannot be used (answered 422, as any other
    bad query parameter)."""

    code = "bad_moment"


class CaseNotYetOpened(CaseNotFound):
    """The case did not exist yet at the moment asked for (answered 404)."""

    code = "case_not_yet_opened"


class VersionNotFound(CaseNotFound):
    """The case has not reached the version asked for (answered 404)."""

    code = "version_not_found"


@dataclass(frozen=True)
class Moment:
    """Which point of a case's history a read reflects: a recorded moment (``as_of``) or a
    ``version`` (not both), and an effective moment (``effective_at``); all ``None`` reads
    the case as it is now."""

    as_of: datetime | None = None
    version: int | None = None
    effective_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.as_of is not None and self.version is not None:
            raise BadMoment(
                "give either as_of or version, not both",
                hint="as_of reads the case as recorded at a moment, version at a version",
            )
        if self.version is not None and self.version < 1:
            raise BadMoment(
                f"version must be 1 or more, not {self.version}",
                hint="version 1 is the case as opened",
            )
        for name in ("as_of", "effective_at"):
            at = getattr(self, name)
            if at is not None and at.utcoffset() is None:
                raise BadMoment(
                    f"{name} {at.isoformat()} has no UTC offset",
                    hint=f"add an offset, e.g. {at.isoformat()}Z or {at.isoformat()}+01:00",
                )

    @property
    def is_now(self) -> bool:
        return self.as_of is None and self.version is None and self.effective_at is None


#: An offset whose "+" a query string turned into a space (``12:00:00 01:00``).
_SPACED_OFFSET = re.compile(r"(T\d\d:\d\d(?::\d\d(?:\.\d+)?)?) (\d\d(?::?\d\d)?)$")


def parse_moment(name: str, text: str | None) -> datetime | None:
    """``text`` (ISO 8601 with a UTC offset) as a moment; a ``+`` that arrived as a space,
    as it does in an unencoded query string, is read as ``+``."""
    if text is None:
        return None
    cleaned = _SPACED_OFFSET.sub(r"\1+\2", text.strip())
    try:
        at = datetime.fromisoformat(cleaned)
    except ValueError:
        raise BadMoment(
            f"{name} {text!r} is not an ISO 8601 timestamp",
            hint="write it as 2026-03-01T12:00:00Z or 2026-03-01T12:00:00+01:00 "
            "(in a URL, write + as %2B)",
        ) from None
    if at.utcoffset() is None:
        raise BadMoment(
            f"{name} {text!r} has no UTC offset, so it could be any of 24 moments",
            hint=f"add an offset: {cleaned}Z for UTC, or e.g. {cleaned}+01:00",
        )
    return at


class EffectiveTimes:
    """Dates events on the effective axis, as the module's docstring says, fed in version
    order (a cause comes before what it causes). Only the latest :data:`WINDOW` events are
    remembered as causes, so a long history is dated in constant memory: an event's causes
    are stored in the same save, a few versions before it."""

    WINDOW = 10_000

    def __init__(self) -> None:
        self._times: OrderedDict[int, datetime] = OrderedDict()
        self._by_id: dict[str, int] = {}

    def of(self, event: Case.Event) -> datetime:
        """``event``'s effective time (each event once, in version order)."""
        version = event.originator_version
        context: dict[str, Any] = getattr(event, "context", None) or {}
        at = self._effective(event, context)
        self._times[version] = at
        self._by_id[event_id_for(event.originator_id, version)] = version
        if len(self._times) > self.WINDOW:
            self._times.popitem(last=False)
            if len(self._by_id) > 2 * self.WINDOW:
                self._by_id = {k: v for k, v in self._by_id.items() if v in self._times}
        return at

    def _effective(self, event: Case.Event, context: dict[str, Any]) -> datetime:
        occurred = context.get("occurred_at")
        if occurred:
            return datetime.fromisoformat(occurred)
        if isinstance(event, Case.SlaWarned | Case.SlaBreached):
            return datetime.fromisoformat(event.due_at)
        if isinstance(event, Case.RuleFired) and event.trigger_version in self._times:
            return self._times[event.trigger_version]
        cause = self._by_id.get(str(context.get("causation_id") or ""))
        if context.get("rule") and cause is not None and cause in self._times:
            return self._times[cause]
        return event.timestamp


def effective_times(events: Iterable[Case.Event]) -> dict[int, datetime]:
    """The effective time of each event (by version); ``events`` in version order."""
    dating = EffectiveTimes()
    return {event.originator_version: dating.of(event) for event in events}


def effective_order(
    events: Sequence[Case.Event], effective_at: datetime | None
) -> list[tuple[Case.Event, datetime]]:
    """The events effective at or before ``effective_at`` (all when ``None``), each with its
    effective time, in effective-time order (ties in version order)."""
    times = effective_times(events)
    chosen = [
        (event, times[event.originator_version])
        for event in events
        if effective_at is None or times[event.originator_version] <= effective_at
    ]
    chosen.sort(key=lambda pair: (pair[1], pair[0].originator_version))
    return chosen


def fold_effective(events: Sequence[Case.Event], effective_at: datetime) -> Case | None:
    """The case as it stood in the world at ``effective_at`` according to ``events`` (all
    that is known): ``None`` when it had not been opened by then.

    The opening comes first, then the other events in effective-time order. An event that
    does not apply to the state reached so (an SLA clock paused before it started, once a
    back-dated fact moved the case) is passed over: that bookkeeping has no meaning on the
    effective axis. The case's ``version`` is the newest version among the events applied."""
    ordered = [event for event, _ in effective_order(events, effective_at)]
    opened = next((event for event in ordered if isinstance(event, Case.Opened)), None)
    if opened is None:
        return None
    case = opened.mutate(None)
    assert isinstance(case, Case)
    for event in ordered:
        if event is opened:
            continue
        newest = case.version
        case.version = event.originator_version - 1  # as a mutator reads it (a note's version)
        try:
            event.apply(case)
        except KeyError:  # an SLA clock this order has not started (or has stopped)
            pass
        else:
            if event.originator_version > newest:
                newest, case.modified_on = event.originator_version, event.timestamp
        case.version = newest
    return case
