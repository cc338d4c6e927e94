"""SLA clocks: when they start, pause, resume and stop, and when each milestone falls due.

A clock is one run of one SLA on one case. The case keeps, per SLA, a :class:`Clock`; the
functions here decide, from the case type and the case's move from one status to another,
which clock events the case records. All arithmetic is in working time on the case type's
business calendar, so a deadline of ``4h`` opened on Friday at 16:00 falls on Monday.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.calendar import BusinessCalendar
from domain.definition import Definition, Sla


@dataclass
class Clock:
    """The state of one SLA's current run on a case (rebuilt from the case's SLA events)."""

    run: int
    """The case version that started this run: a milestone names its run, so a restarted
    clock never fires the milestones of an earlier run."""
    worked: timedelta = timedelta(0)
    """Working time counted before ``running_since`` (the time spent before the last pause)."""
    running_since: datetime | None = None
    """When the clock last started counting; ``None`` while it is paused."""
    due: dict[str, str] = field(default_factory=dict)
    """Each milestone not yet reached and its due instant (ISO 8601, UTC) while running."""
    fired: list[str] = field(default_factory=list)
    """The milestones already reached in this run."""


@dataclass(frozen=True)
class ClockChange:
    """What happens to one SLA's clock when the case changes status."""

    sla: str
    action: str  # "start", "start_paused", "pause", "resume", "stop"


def due_times(
    sla: Sla, calendar: BusinessCalendar, since: datetime, worked: timedelta, fired: list[str]
) -> dict[str, str]:
    """When each milestone not yet fired falls due, counting from ``since`` with ``worked``
    already spent (one walk over the calendar for all of them)."""
    pending = {m: o for m, o in sla.milestones().items() if m not in fired}
    remaining = [max(offset - worked, timedelta(0)) for offset in pending.values()]
    return {
        milestone: due.isoformat()
        for milestone, due in zip(pending, calendar.add_each(since, remaining), strict=True)
    }


def worked_until(calendar: BusinessCalendar, clock: Clock, now: datetime) -> timedelta:
    """The working time a clock has counted up to ``now``."""
    if clock.running_since is None:
        return clock.worked
    return clock.worked + calendar.working_time_between(clock.running_since, now)


def clock_changes(
    definition: Definition, clocks: dict[str, Clock], old: str | None, new: str
) -> list[ClockChange]:
    """The clock changes caused by a move from status ``old`` (``None`` when opening) to
    ``new``, in the order the SLAs are declared."""
    changes = []
    final = definition.is_final(new)
    for sla in definition.slas:
        clock = clocks.get(sla.name)
        if sla.state is not None:
            if clock is not None and ((old == sla.state and new != sla.state) or final):
                changes.append(ClockChange(sla.name, "stop"))
                clock = None
            if new == sla.state and old != sla.state and not final:
                changes.append(ClockChange(sla.name, "start"))
            continue
        paused = new in sla.paused_in
        if final:
            if clock is not None:
                changes.append(ClockChange(sla.name, "stop"))
        elif clock is None:
            changes.append(ClockChange(sla.name, "start_paused" if paused else "start"))
        elif paused and clock.running_since is not None:
            changes.append(ClockChange(sla.name, "pause"))
        elif not paused and clock.running_since is None:
            changes.append(ClockChange(sla.name, "resume"))
    return changes


def sla_named(definition: Definition, name: str) -> Sla | None:
    return next((s for s in definition.slas if s.name == name), None)
