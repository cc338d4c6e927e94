"""Refuses request bodies over the configured size before they reach a route."""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    """ASGI middleware: a body larger than ``max_bytes`` is answered 413, nothing stored.

    A declared ``Content-Length`` over the limit is refused before the body is read. A body
    without one (``Transfer-Encoding: chunked``) is read here, counting, before the route
    runs: the route must never see a truncated body, and FastAPI would turn an error raised
    while it reads the body into a 400.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, larger: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = dict(larger or {})  # exact paths that take more (document uploads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope["path"], self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _answer(
                    send,
                    400,
                    "the Content-Length header is not a number",
                    "invalid_content_length",
                    "send the body's length in bytes",
                )
                return
            if int(declared) > limit:
                await self._refuse(send, limit)
                return
        buffered: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break  # the client went away; the app will see that
            seen += len(message.get("body", b""))
            if seen > limit:
                await self._refuse(send, limit)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            if buffered:
                return buffered.pop(0)
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, limit: int) -> None:
        await _answer(
            send,
            413,
            f"the request body is larger than {limit} bytes",
            "body_too_large",
            "send a smaller body; upload documents with POST /documents and put their "
            "reference in a field",
        )


async def _answer(send: Send, status: int, detail: str, code: str, hint: str) -> None:
    body = json.dumps({"detail": detail, "code": code, "hint": hint}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
