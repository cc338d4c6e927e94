"""Idempotency keys: a client that sends a case command with ``Idempotency-Key`` may send it
again after a timeout, safely.

- The same key with the same request answers the first outcome: the stored command's case id
  and version, or the refusal it got.
- The same key with another request is refused with 409.
- A key is kept for a configurable time.

The claim of a stored command is written in the same transaction as its events
(``infra.recorder``), so a command is stored once however often it is retried, even by
requests that race.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class Claim:
    """The request a key was first used for: who sent it (the id of their API key: two
    clients may use the same key), the key, and a hash of the method, path and body."""

    scope: str
    key: str
    request_hash: str
    kept: bool = False
    """Kept for good (an ingested record's dedup key, a case's external id), not purged."""
    case_id: str | None = None
    """The case the claim names, when a save stores several (default: its first event's)."""
    version: int | None = None
    """That case's version after the save (with ``case_id``)."""


@dataclass(frozen=True)
class Outcome:
    """What a key's first request got: a stored command (``case_id`` and ``version``) or a
    refusal (``status`` and ``body``)."""

    request_hash: str
    case_id: str | None = None
    version: int | None = None
    status: int | None = None
    body: dict[str, Any] | None = None


class IdempotencyStore(Protocol):
    """Where claims and outcomes are kept (``infra.idempotency``)."""

    def outcome(self, scope: str, key: str) -> Outcome | None: ...

    def record_refusal(self, claim: Claim, status: int, body: dict[str, Any]) -> None: ...


def request_hash(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


_claims: ContextVar[tuple[Claim, ...]] = ContextVar("caseledger_claims", default=())


@contextmanager
def claiming(*claims: Claim) -> Iterator[None]:
    """Within the block, the event store writes ``claims`` with the events it stores (in
    the same transaction), and refuses the save if one of them is taken."""
    token = _claims.set(claims)
    try:
        yield
    finally:
        _claims.reset(token)


def current_claims() -> tuple[Claim, ...]:
    return _claims.get()
