"""Every request gets a deadline (``services.deadline``): in an outage each request is
refused with 503 when its time is up, whatever it waits on (its key, the read models, the
event store), instead of waiting out every timeout in turn."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from services.deadline import deadline_in


class RequestDeadline:
    """ASGI middleware: the request's work runs under a deadline of ``seconds``."""

    def __init__(self, app: ASGIApp, seconds: float | None) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with deadline_in(self.seconds):
            await self.app(scope, receive, send)
