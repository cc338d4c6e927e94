"""A deadline for the work of one request: a command that cannot be stored in time is refused
(and never stored later), a read that cannot be answered in time is refused, both with 503.

The deadline travels with the request's context (a ``ContextVar``), so the event store's
writer and reader (``infra.recorder``) see it without every call passing it along.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("caseledger_deadline", default=None)


@contextmanager
def deadline_in(seconds: float | None) -> Iterator[None]:
    """Run the block under a deadline ``seconds`` from now (none when ``None``); an outer
    deadline that falls earlier stays in force."""
    if seconds is None:
        yield
        return
    wanted = time.monotonic() + seconds
    outer = _deadline.get()
    token = _deadline.set(wanted if outer is None else min(outer, wanted))
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left before the deadline (negative once passed), or None without one."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()
