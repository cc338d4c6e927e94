"""Retrying work that lost a race: the one retry loop of the code base.

Optimistic concurrency makes a writer that saved at the same moment as another lose with the
store's ``IntegrityError``; the work is then done again on fresh state. Each use says how many
attempts it allows, how long the jittered pause between two attempts may grow, which errors
mean "lost the race" and what to raise when it gives up. It also gives up when the request's
deadline (:mod:`services.deadline`) would pass during the pause.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from eventsourcing.persistence import IntegrityError

from services.deadline import remaining

T = TypeVar("T")


@dataclass(frozen=True)
class Retry:
    """Run work again when it loses a race, up to ``attempts`` times in all.

    Before attempt ``n + 1`` it pauses a random time in ``[0, pause_s * n]``, so racers that
    collided spread out instead of colliding again.
    """

    attempts: int
    pause_s: float = 0.0
    lost: tuple[type[Exception], ...] = (IntegrityError,)

    def run(self, work: Callable[[], T], gave_up: Callable[[], Exception] | None = None) -> T:
        """The result of the first attempt of ``work`` that does not lose; when every attempt
        lost (or the deadline leaves no time for another), raises ``gave_up()`` (default: the
        last error)."""
        for attempt in range(1, self.attempts + 1):
            try:
                return work()
            except self.lost as error:
                pause = random.uniform(0, self.pause_s * attempt)
                if attempt == self.attempts or _too_late(pause):
                    if gave_up is None:
                        raise
                    raise gave_up() from error
                time.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover


def _too_late(pause: float) -> bool:
    left = remaining()
    return left is not None and left <= pause
