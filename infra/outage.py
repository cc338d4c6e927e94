"""Workers that never die of an outage: retry PostgreSQL and broker failures with backoff and
jitter, say once that a component is gone and once that it is back, and resume where the
worker was (each keeps its position in PostgreSQL or in committed offsets)."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from kafka.errors import KafkaError
from psycopg_pool import PoolTimeout

#: What an outage of PostgreSQL or the broker raises (OSError: a refused or reset socket).
TRANSIENT: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    PoolTimeout,
    OperationalError,
    InterfaceError,
    KafkaError,
    OSError,
)
FIRST_WAIT_S = 0.5
LONGEST_WAIT_S = 5.0


#: A worker that has not turned its loop for this long is stuck in a call that does not
#: return (a client library waiting on a broker that came back different): the process ends,
#: and its supervisor (`caseledger up`, systemd, the container runtime) starts it again.
STALL_S = 120.0
STALLED_EXIT_CODE = 70


class Worker(Protocol):
    def run(self, stop: threading.Event) -> None: ...


class Liveness:
    """When a worker last turned its loop."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.last = clock()

    def beat(self) -> None:
        self.last = self.clock()

    def stalled_for(self) -> float:
        return self.clock() - self.last


def watch_liveness(
    name: str,
    liveness: Liveness,
    done: threading.Event,
    log: logging.Logger,
    stall_s: float = STALL_S,
    end: Callable[[int], object] = os._exit,
) -> threading.Thread:
    """Watch ``liveness`` until ``done``; end the process when the worker stalls."""

    def watch() -> None:
        while not done.wait(min(5.0, stall_s / 4)):
            if liveness.stalled_for() > stall_s:
                log.error(
                    "%s made no progress for %.0f s; exiting so that it is started again",
                    name,
                    liveness.stalled_for(),
                )
                end(STALLED_EXIT_CODE)
                return

    thread = threading.Thread(target=watch, name=f"{name}-liveness", daemon=True)
    thread.start()
    return thread


class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


class Outage:
    """Tracks one worker's outage: how long to wait next, and what to log (once each way)."""

    def __init__(self, worker: str, log: logging.Logger) -> None:
        self.worker = worker
        self.log = log
        self.since: float | None = None
        self.attempts = 0

    def failed(self, error: BaseException) -> float:
        """Note a failure; answers how long to wait before the next attempt."""
        if self.since is None:
            self.since = time.monotonic()
            self.log.warning(
                "%s: %s; retrying with backoff until it is back", self.worker, describe(error)
            )
        self.attempts += 1
        ceiling = min(LONGEST_WAIT_S, FIRST_WAIT_S * 2 ** min(self.attempts - 1, 10))
        return random.uniform(ceiling / 2, ceiling)

    def recovered(self) -> None:
        """Note a success; logs the end of an outage once."""
        if self.since is not None:
            self.log.warning(
                "%s: back after %.1f s (%d attempts)",
                self.worker,
                time.monotonic() - self.since,
                self.attempts,
            )
        self.since, self.attempts = None, 0


def describe(error: BaseException) -> str:
    """One line naming what failed: the database or the broker, and why."""
    component = "the broker" if isinstance(error, KafkaError) else "the database"
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"{component} is unavailable ({type(error).__name__}: {text})"


def poll_forever(
    name: str,
    poll: Callable[[], object],
    interval_s: float,
    stop: threading.Event,
    log: logging.Logger,
) -> None:
    """Call ``poll`` every ``interval_s`` until ``stop`` is set. An outage is logged once and
    waited out with backoff; any other failure is a bug, logged with its traceback, and the
    next poll goes on."""
    outage = Outage(name, log)
    while not stop.is_set():
        try:
            poll()
        except TRANSIENT as error:
            stop.wait(outage.failed(error))
            continue
        except Exception:
            log.exception("%s: poll failed; retrying", name)
        else:
            outage.recovered()
        stop.wait(interval_s)


def _run_watched(name: str, worker: Worker, stop: threading.Event, log: logging.Logger) -> None:
    liveness = getattr(worker, "liveness", None)
    if not isinstance(liveness, Liveness):
        worker.run(stop)
        return
    liveness.beat()
    done = threading.Event()
    watch_liveness(name, liveness, done, log)
    try:
        worker.run(stop)
    finally:
        done.set()


def keep_running(
    name: str,
    connect: Callable[[], C],
    build: Callable[[C], Worker],
    stop: threading.Event,
    log: logging.Logger,
) -> None:
    """Run ``build(connect()).run(stop)`` until ``stop`` is set, starting again (with backoff)
    whenever PostgreSQL or the broker fails under it, or is not there at the start."""
    outage = Outage(name, log)
    while not stop.is_set():
        container: C | None = None
        try:
            container = connect()
            worker = build(container)
            outage.recovered()
            _run_watched(name, worker, stop, log)
        except TRANSIENT as error:
            stop.wait(outage.failed(error))
        finally:
            if container is not None:
                with contextlib.suppress(*TRANSIENT):
                    container.close()
