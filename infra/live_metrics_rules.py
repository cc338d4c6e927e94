"""What one case event does to the live metrics: pure functions, no I/O.

The faust worker (``infra.live_metrics``) keeps, per case, the last version it counted and
where the case stands (its case type, its queue, open or not); :func:`count` turns that
state and the next event into the counter changes:

- ``opened``: a case was opened (counted under the queue it had then, usually none: rules
  route a case just after opening it);
- ``closed``: a case was closed, or moved into a final state of its case type;
- ``breached``: an SLA deadline of the case passed;
- the backlog: open cases per case type and queue, moved along when a case changes queue,
  closes or reopens.

An event whose case version is not newer than the one already counted is a redelivery and
changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from domain.case import Case
from domain.envelope import EventEnvelope
from domain.event_names import event_type

OPENED, CLOSED, BREACHED = "opened", "closed", "breached"
METRICS = (OPENED, CLOSED, BREACHED)
HOUR_S = 3600
#: The queue of a case that is in none (a key part must be a string).
NO_QUEUE = ""

_OPENED = event_type(Case.Opened)
_CLOSED = event_type(Case.Closed)
_REOPENED = event_type(Case.Reopened)
_ROUTED = event_type(Case.RoutedToQueue)
_BREACHED = event_type(Case.SlaBreached)
_MOVED = (event_type(Case.StatusChanged), event_type(Case.Migrated))

#: Whether ``status`` is final for version ``version`` of case type ``case_type``.
Finality = Callable[[str, int, str], bool]


@dataclass(frozen=True)
class CaseState:
    """Where one case stands, as far as the live metrics counted it."""

    version: int
    case_type: str
    queue: str = NO_QUEUE
    #: None: the worker never saw the case open, so it is not in the backlog.
    open: bool | None = None

    def as_json(self) -> dict[str, Any]:
        return {"v": self.version, "t": self.case_type, "q": self.queue, "o": self.open}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CaseState:
        return cls(version=raw["v"], case_type=raw["t"], queue=raw["q"], open=raw["o"])


@dataclass(frozen=True)
class Counted:
    """The changes one event makes: the case's new state, +1 on each of ``hourly`` in the
    hour the event was recorded, and each ``(case_type, queue, delta)`` of ``backlog``."""

    state: CaseState
    hour: float
    hourly: tuple[tuple[str, str, str], ...] = ()
    backlog: tuple[tuple[str, str, int], ...] = ()


def hour_of(moment: datetime) -> float:
    """The start of the hour ``moment`` falls in, as seconds since the epoch."""
    seconds = moment.timestamp() if moment.tzinfo else moment.replace(tzinfo=UTC).timestamp()
    return seconds - seconds % HOUR_S


def count(state: CaseState | None, event: EventEnvelope, is_final: Finality) -> Counted | None:
    """The changes ``event`` makes after ``state``; None for a redelivery (a case version
    already counted)."""
    if state is not None and event.case_version <= state.version:
        return None
    hour = hour_of(event.recorded_at)
    if event.type == _OPENED:
        opened = CaseState(event.case_version, event.case_type, NO_QUEUE, True)
        keys = ((OPENED, event.case_type, NO_QUEUE),)
        return Counted(opened, hour, keys, ((event.case_type, NO_QUEUE, 1),))
    before = state or CaseState(event.case_version, event.case_type)
    now = replace(before, version=event.case_version, case_type=event.case_type)
    if event.type == _ROUTED:
        return _routed(before, now, event.data.get("queue") or NO_QUEUE, hour)
    if event.type == _BREACHED:
        return Counted(now, hour, ((BREACHED, now.case_type, now.queue),))
    still_open = _open_after(before, event, is_final)
    if still_open is None or still_open == before.open:
        return Counted(now, hour)
    return _opened_or_closed(before, replace(now, open=still_open), hour)


def _routed(before: CaseState, now: CaseState, queue: str, hour: float) -> Counted:
    moved = replace(now, queue=queue)
    if not before.open or queue == before.queue:
        return Counted(moved, hour)
    return Counted(
        moved, hour, (), ((before.case_type, before.queue, -1), (now.case_type, queue, 1))
    )


def _opened_or_closed(before: CaseState, now: CaseState, hour: float) -> Counted:
    if now.open:  # reopened: back in the backlog (if it was counted there)
        return Counted(now, hour, (), ((now.case_type, now.queue, 1),))
    closed = ((CLOSED, now.case_type, now.queue),)
    if before.open is None:  # its opening was never counted
        return Counted(now, hour, closed)
    return Counted(now, hour, closed, ((before.case_type, before.queue, -1),))


def _open_after(before: CaseState, event: EventEnvelope, is_final: Finality) -> bool | None:
    """Whether the case is open after ``event``; None when the event does not say."""
    if event.type == _CLOSED:
        return False
    if event.type == _REOPENED:
        return True
    if event.type in _MOVED:
        return not is_final(event.case_type, event.case_type_version, event.data["to_status"])
    return None
