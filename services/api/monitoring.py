"""``GET /metrics`` (the Prometheus text format) and the middleware that times every request.

``/metrics`` is public, as ``/health`` is: a Prometheus server scrapes without an API key,
and the page holds no case data, only counts, positions and timings labelled by route
templates (``POST /cases/{case_id}/notes``) and outcomes. A deployment that wants it private
restricts the path at its proxy.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.deps import Deps, known_query_only
from services.api.schemas import ErrorBody
from services.metrics import CONTENT_TYPE, observe_request

PATH = "/metrics"
router = APIRouter(tags=["operations"])


@router.get(
    PATH,
    response_class=Response,
    responses={
        200: {
            "description": "the metrics, in the Prometheus text format (version 0.0.4)",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        422: {"model": ErrorBody, "description": "an unknown query parameter"},
    },
    dependencies=[Depends(known_query_only)],
)
def metrics(deps: Deps) -> Response:
    """Command and read latencies by route and outcome, commits of the event store and their
    sizes, and where the pipeline stands (read from the database at each scrape, as
    `caseledger status` reads it). When the database does not answer within a second,
    `caseledger_pipeline_figures_up` is 0 and those figures are left out."""
    return Response(deps.metrics.render(), media_type=CONTENT_TYPE)


class RequestTimer:
    """ASGI middleware: observes how long each answered request took, labelled by its
    route's template and the outcome of its status (``services.metrics``). Requests that
    match no route (or that are refused before routing) and scrapes are not observed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets should the app raise before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            if isinstance(route, Route) and route.path != PATH:
                observe_request(scope["method"], route.path, status, time.perf_counter() - started)
