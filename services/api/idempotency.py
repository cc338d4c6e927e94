"""``Idempotency-Key`` on case commands (``POST /cases``, ``POST /cases/{id}/...``,
``PATCH /cases/{id}/fields``), as ASGI middleware so that every command route has it.

- A first request runs with its claim in context (``services.idempotency``): the event store
  writes the claim with the command's events; a refusal (4xx) is recorded after the answer.
- The same key and request again: the first outcome is answered (``Idempotent-Replayed:
  true``), without running the command.
- The same key with another request: 409.
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.errors import DATABASE_DOWN
from services.auth import KeyStore
from services.idempotency import (
    HEADER,
    MAX_KEY_LENGTH,
    Claim,
    IdempotencyStore,
    Outcome,
    claiming,
    request_hash,
)

_COMMANDS = {
    "POST": re.compile(r"^/cases(/[^/]+/(assign|transitions|notes|close|reopen))?$"),
    "PATCH": re.compile(r"^/cases/[^/]+/fields$"),
}
_DOWN = {
    "detail": "the database is unavailable; nothing was stored",
    "code": "store_unavailable",
    "hint": "retry in a moment with the same Idempotency-Key",
}
_KEY = re.compile(rf"^[\x21-\x7e]{{1,{MAX_KEY_LENGTH}}}$")
#: Answers that are not an outcome: nothing happened, the same request may succeed later
#: (and 5xx: nothing was stored, by the command deadline).
_NOT_OUTCOMES = {401, 408, 429}


class IdempotencyKeys:
    """ASGI middleware giving case commands at-most-once effect per ``Idempotency-Key``."""

    def __init__(self, app: ASGIApp, store: IdempotencyStore, keys: KeyStore) -> None:
        self.app = app
        self.store = store
        self.keys = keys

    def _caller(self, authorization: bytes) -> str | None:
        """The id of the valid API key the request carries (keys are per API key), or None."""
        scheme, _, credentials = authorization.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return None
        holder = self.keys.holder_of(credentials.strip())
        if holder is None or holder.refusal(datetime.now(UTC)) is not None:
            return None
        return holder.key_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or []) if scope["type"] == "http" else {}
        raw_key = headers.get(HEADER.lower().encode())
        command = _COMMANDS.get(scope.get("method", ""))
        if raw_key is None or command is None or not command.match(scope["path"]):
            await self.app(scope, receive, send)  # only case commands take a key
            return
        try:
            caller = await run_in_threadpool(self._caller, headers.get(b"authorization", b""))
            if caller is None:  # the route answers 401: no key, no outcome to remember
                await self.app(scope, receive, send)
                return
            key = raw_key.decode("latin-1")
            if not _KEY.match(key):
                await _answer(send, 422, _bad_key(key))
                return
            body, replay = await _read_body(receive)
            claim = Claim(caller, key, request_hash(scope["method"], scope["path"], body))
            known = await run_in_threadpool(self.store.outcome, claim.scope, claim.key)
        except DATABASE_DOWN:
            await _answer(send, 503, _DOWN, headers=[(b"retry-after", b"1")])
            return
        if known is not None:
            await _replay(send, scope, claim, known)
            return
        answered: dict[str, Any] = {}

        async def watching(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered["status"] = message["status"]
            elif message["type"] == "http.response.body":
                answered["body"] = answered.get("body", b"") + message.get("body", b"")
            await send(message)

        with claiming(claim):
            await self.app(scope, replay, watching)
        status, refusal = answered.get("status", 500), _json(answered.get("body", b""))
        if _is_outcome(status, refusal):
            with contextlib.suppress(*DATABASE_DOWN):  # then the retry runs it again
                await run_in_threadpool(self.store.record_refusal, claim, status, refusal)


def _is_outcome(status: int, body: dict[str, Any]) -> bool:
    """Whether an answer is a refusal to answer again: a 4xx that is not about the timing."""
    replayed = body.get("code") == "request_replayed"
    return 400 <= status < 500 and status not in _NOT_OUTCOMES and not replayed


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a ``receive`` that gives it to the app again."""
    messages: list[Message] = []
    body = b""
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return body, replay


async def _replay(send: Send, scope: Scope, claim: Claim, known: Outcome) -> None:
    if known.request_hash != claim.request_hash:
        await _answer(
            send,
            409,
            {
                "detail": f"the Idempotency-Key {claim.key!r} was used for another request",
                "code": "idempotency_key_reused",
                "hint": "use a new key for a new request; resend the first request unchanged "
                "to get its outcome",
            },
        )
        return
    if known.case_id is not None:
        status = 201 if scope["path"] == "/cases" else 200
        await _answer(send, status, {"id": known.case_id, "version": known.version}, True)
        return
    await _answer(send, known.status or 400, known.body or {}, True)


def _bad_key(key: str) -> dict[str, str]:
    return {
        "detail": f"the {HEADER} header must be 1 to {MAX_KEY_LENGTH} printable ASCII "
        f"characters without spaces; got {len(key)} characters",
        "code": "invalid_idempotency_key",
        "hint": "send a UUID, e.g. the one your client generated for this command",
    }


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {"detail": body.decode(errors="replace")[:2000]}
    return value if isinstance(value, dict) else {"detail": value}


async def _answer(
    send: Send,
    status: int,
    body: dict[str, Any],
    replayed: bool = False,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    content = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
        *(headers or []),
    ]
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
