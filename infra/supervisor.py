"""The supervisor of ``caseledger up``: keeps every process of the stack running.

A process that exits is started again after a pause that doubles with each quick exit
(0.5 s, 1 s, 2 s ... at most 30 s) and starts over at 0.5 s once the process has stayed up
30 s. Each exit is said in one line. Nothing else stops the stack: :meth:`Supervisor.stop`
(on Ctrl-C or SIGTERM) stops what was started, the workers before the servers they use.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from typing import Protocol


class Supervised(Protocol):
    """A process the supervisor keeps running (a worker, the broker, PostgreSQL)."""

    name: str

    def start(self) -> object:
        """Start it, and return once it serves; raise if it cannot."""
        ...

    def exited(self) -> str | None:
        """None while it runs; else how it ended (an exit code; negative: the signal)."""
        ...

    def terminate(self) -> None:
        """Ask it to stop, without waiting."""
        ...

    def wait_stopped(self) -> None:
        """Wait until it has stopped, killing it if it takes too long."""
        ...


@dataclass(frozen=True)
class Backoff:
    """Pauses before restarts: ``first``, doubling with each quick exit up to ``longest``;
    a process that stayed up ``stable_after`` seconds is back to ``first``."""

    first: float = 0.5
    longest: float = 30.0
    stable_after: float = 30.0

    def pause(self, quick_exits: int) -> float:
        return min(self.longest, self.first * 2.0**quick_exits)


@dataclass
class _Watch:
    service: Supervised
    started_at: float
    restarts: int = 0
    quick_exits: int = 0
    restart_at: float | None = None


class Supervisor:
    """Watches started processes, restarts those that exit, and stops them all on demand."""

    def __init__(
        self,
        say: Callable[[str], None],
        backoff: Backoff = Backoff(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._say = say
        self._backoff = backoff
        self._clock = clock
        self._layers: list[list[_Watch]] = []

    def keep(self, *services: Supervised) -> None:
        """Watch ``services``, already started; :meth:`stop` stops them together, before
        the services kept earlier."""
        now = self._clock()
        self._layers.append([_Watch(service, now) for service in services])

    def watch(self, stopping: threading.Event, every: float = 0.2) -> None:
        """Tend the processes until ``stopping`` is set."""
        while not stopping.wait(every):
            self.tend()

    def tend(self) -> None:
        """One round: notice the processes that exited, restart those whose pause is over."""
        now = self._clock()
        for watch in chain.from_iterable(self._layers):
            if watch.restart_at is None:
                self._notice_exit(watch, now)
            elif now >= watch.restart_at:
                self._restart(watch, now)

    def stop(self) -> None:
        """Stop every service, the latest kept first."""
        for layer in reversed(self._layers):
            for watch in layer:
                watch.service.terminate()
            for watch in layer:
                watch.service.wait_stopped()

    def _notice_exit(self, watch: _Watch, now: float) -> None:
        how = watch.service.exited()
        if how is None:
            return
        if now - watch.started_at >= self._backoff.stable_after:
            watch.quick_exits = 0
        pause = self._schedule(watch, now)
        watch.restarts += 1
        self._say(
            f"{watch.service.name} exited ({how}); restarting in {pause:.1f} s "
            f"(restart {watch.restarts})"
        )

    def _restart(self, watch: _Watch, now: float) -> None:
        try:
            watch.service.start()
        except Exception as error:  # noqa: BLE001 - whatever stopped this start, try again
            pause = self._schedule(watch, now)
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            self._say(
                f"{watch.service.name} did not start ({reason}); see its log; "
                f"trying again in {pause:.1f} s"
            )
            return
        watch.started_at, watch.restart_at = self._clock(), None

    def _schedule(self, watch: _Watch, now: float) -> float:
        pause = self._backoff.pause(watch.quick_exits)
        watch.quick_exits += 1
        watch.restart_at = now + pause
        return pause
