"""The sandbox pool: a few worker processes that evaluate the expressions that could run away
(CEL comprehensions, zen closures, template loops), each call with a hard time budget.

A call that runs past :data:`BUDGET_MS` has its worker killed and replaced in the background,
and fails with :class:`BudgetExceeded`; so does a worker that dies (out of its
:data:`WORKER_MEMORY`) and facts over :data:`MAX_FACTS_BYTES`. Evaluation happens in another
process, so a runaway never holds this interpreter (the GIL) and other requests go on.

Facts go to a worker pickled (this process trusts itself); answers come back as JSON, so a
worker can never make this process run code. Workers are :mod:`services.sandbox_worker`.
"""

from __future__ import annotations

import json
import logging
import pickle
import queue
import socket
import subprocess
import sys
import threading
from functools import cache
from multiprocessing.connection import Connection
from typing import Any

from domain.errors import BudgetExceeded

BUDGET_MS = 200
"""The longest one condition, decision table or template may run in the pool."""
MAX_FACTS_BYTES = 1_048_576
"""The most facts (pickled) one evaluation in the pool may read."""
WORKER_MEMORY = 512 * 2**20
"""The address space of a worker: beyond it, allocation fails and the evaluation with it."""
WORKER_NICENESS = 10
"""How much lower a worker's CPU priority is than the API's (``nice``)."""
WORKERS = 2
_START_TIMEOUT_S = 30.0
_SIMPLIFY = "simplify it: iterate over fewer items, nest comprehensions or loops less"

log = logging.getLogger(__name__)


class _Worker:
    """One worker process and the connection to it."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.sandbox_worker", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        self.connection = Connection(ours.detach())

    def ready(self) -> bool:
        """Wait until the worker has started; false if it did not."""
        try:
            return self.connection.poll(_START_TIMEOUT_S) and self.connection.recv_bytes() == b"ok"
        except (EOFError, OSError):
            return False

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        self.connection.close()


class SandboxPool:
    """Worker processes that evaluate one task each at a time, within :data:`BUDGET_MS`."""

    def __init__(self, size: int = WORKERS) -> None:
        self._idle: queue.Queue[_Worker] = queue.Queue()
        for _ in range(size):
            self._replace()

    def run(self, kind: str, spec: Any, facts: dict[str, Any], budget_ms: int = BUDGET_MS) -> Any:
        """The result of the task ``(kind, spec)`` on ``facts``, as the worker answered it
        within ``budget_ms`` (plugins have their own budget, ``services.plugins``)."""
        payload = pickle.dumps((kind, spec, facts), protocol=pickle.HIGHEST_PROTOCOL)
        if len(payload) > MAX_FACTS_BYTES:
            raise BudgetExceeded(
                f"reads facts of {len(payload):,} bytes; the limit is {MAX_FACTS_BYTES:,} bytes",
                hint="read fewer or smaller fields, or decide before the fields grow this large",
            )
        try:
            worker = self._idle.get(timeout=_START_TIMEOUT_S)
        except queue.Empty:
            raise BudgetExceeded(
                f"could not start: no sandbox worker was free for {_START_TIMEOUT_S:.0f} s",
                hint="retry in a moment; if it persists, the workers cannot start (see the log)",
            ) from None
        try:
            answer = _ask(worker, payload, budget_ms)
        except BudgetExceeded:
            threading.Thread(target=worker.stop, daemon=True).start()
            self._replace()
            raise
        self._idle.put(worker)
        if "limit" in answer:
            raise BudgetExceeded(answer["limit"], hint=answer["hint"])
        return answer["ok"]

    def _replace(self) -> None:
        threading.Thread(target=self._start_one, daemon=True).start()

    def _start_one(self) -> None:
        worker = _Worker()
        if worker.ready():
            self._idle.put(worker)
        else:  # pragma: no cover - a worker that cannot even start is a broken install
            log.error("a sandbox worker did not start; the pool has one worker fewer")
            worker.stop()


def _ask(worker: _Worker, payload: bytes, budget_ms: int = BUDGET_MS) -> dict[str, Any]:
    try:
        worker.connection.send_bytes(payload)
        if not worker.connection.poll(budget_ms / 1000):
            raise BudgetExceeded(f"exceeded its budget of {budget_ms} ms", hint=_SIMPLIFY)
        answer: dict[str, Any] = json.loads(worker.connection.recv_bytes())
    except (EOFError, OSError):  # the worker died: its allocations went over its memory
        raise BudgetExceeded(
            f"exceeded its memory budget of {WORKER_MEMORY // 2**20} MiB", hint=_SIMPLIFY
        ) from None
    return answer


_starting = threading.Lock()


@cache
def _the_pool() -> SandboxPool:
    return SandboxPool()


def shared_pool() -> SandboxPool:
    """The pool of this process, started on first use."""
    with _starting:
        return _the_pool()
