"""The SLA watcher: records each SLA warning and breach when it falls due, exactly once.

The projection keeps ``sla_timers`` (one row per milestone still to come); the watcher polls
the rows that are due and asks the case to record the milestone. The case itself refuses a
milestone that already fired, whose clock restarted or paused, or that is not due yet, so a
watcher killed and restarted around a deadline, or two watchers at once, record it only once.
Run it with ``caseledger sla-watch``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from domain.context import CommandContext
from domain.errors import DomainError
from infra.outage import poll_forever
from infra.work_queue_store import WorkQueueStore
from services.application import CaseLedger

log = logging.getLogger(__name__)
WATCHER = CommandContext(actor_id="sla-watcher", actor_role="system")
_RECENT_S = 30.0  # how long an issued milestone is not issued again while the view catches up


class SlaWatcher:
    """Turns due SLA timers into SlaWarned and SlaBreached events on their cases."""

    def __init__(
        self,
        ledger: CaseLedger,
        view: WorkQueueStore,
        poll_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.ledger = ledger
        self.view = view
        self.poll_s = poll_s
        self.clock = clock
        self._issued: dict[tuple[UUID, str, str, int, datetime], float] = {}

    def run(self, stop: threading.Event) -> None:
        poll_forever("SLA watcher", self.run_once, self.poll_s, stop, log)

    def run_once(self, limit: int = 200) -> int:
        """Record every milestone due now; answers how many were recorded."""
        now, recorded = self.clock(), 0
        self._forget_old()
        for timer in self.view.due_timers(now, limit):
            # The due time is part of the key: a clock paused and resumed re-times its
            # milestones, and the new time must not wait for the old attempt to be forgotten.
            case_id, sla, milestone, run = (
                timer[k] for k in ("case_id", "sla", "milestone", "run")
            )
            key = (case_id, sla, milestone, run, timer["due_at"])
            if key in self._issued:
                continue
            self._issued[key] = time.monotonic()
            try:
                done = self.ledger.reach_sla_milestone(case_id, sla, run, milestone, WATCHER)
            except DomainError as error:
                log.warning("could not record SLA milestone %s: %s", key, error.message)
                continue
            except Exception:
                del self._issued[key]  # not attempted for good: try again at the next poll
                raise
            if done:
                recorded += 1
                log.info("recorded SLA %s %s of case %s", sla, milestone, case_id)
            else:
                log.debug(
                    "SLA %s %s of case %s: nothing to record (recorded already, or its clock"
                    " moved on)",
                    sla,
                    milestone,
                    case_id,
                )
        return recorded

    def _forget_old(self) -> None:
        horizon = time.monotonic() - _RECENT_S
        self._issued = {k: t for k, t in self._issued.items() if t > horizon}
