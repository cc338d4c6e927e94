"""``GET /live-metrics`` and ``GET /live-metrics/stream``: cases opened, closed and
SLA-breached per hour over the last 24 hours, per case type and queue, and the backlog of
open cases, as the live-metrics workers (``caseledger live-metrics``) count them from the
``case-events`` topic. Any authenticated role may read them: they hold counts, no case data.

The stream sends the same body as server-sent events (``event: live-metrics``): at once,
then whenever a figure changes, for a dashboard's ``EventSource``; a comment line keeps the
connection alive while nothing changes. A client that cannot hold a stream polls
``GET /live-metrics`` instead (every few seconds: the workers write about once a second).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from services.api.deps import authenticated, known_query_only
from services.api.errors import DATABASE_DOWN
from services.api.schemas import ErrorBody
from services.deadline import deadline_in

PATH = "/live-metrics"
STREAM_PATH = f"{PATH}/stream"
MAX_HOURS = 24
#: How long one read of the figures may take inside a stream (each poll has its own deadline:
#: a stream outlives the request deadline).
READ_BUDGET_S = 2.0
KEEP_ALIVE_S = 15.0

_errors: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (401, 422, 503)}
router = APIRouter(
    prefix=PATH,
    tags=["live metrics"],
    responses=_errors,
    dependencies=[Depends(authenticated), Depends(known_query_only)],
)


class HourBucket(BaseModel):
    """The cases of one case type and queue counted in one hour (UTC)."""

    hour: datetime = Field(description="the start of the hour, by the events' recorded time")
    case_type: str
    queue: str | None = Field(description="the queue the case was in; null: none")
    opened: int = Field(description="cases opened")
    closed: int = Field(description="cases closed, or moved into a final state")
    breached: int = Field(description="SLA deadlines that passed")


class BacklogEntry(BaseModel):
    """The cases of one case type and queue open now."""

    case_type: str
    queue: str | None = Field(description="the queue the cases are in; null: none")
    open_cases: int


class WorkerEntry(BaseModel):
    """A live-metrics worker that reported in the last minute."""

    worker: str = Field(description="host:pid")
    partitions: list[int] = Field(description="the topic partitions it counts")
    events_counted: int = Field(description="events it counted since it started")
    duplicates_skipped: int = Field(description="redelivered events it did not count again")
    updated_at: datetime


class LiveMetricsPublic(BaseModel):
    """The live metrics: per-hour counts, the backlog, and the workers that count them."""

    since: datetime = Field(description="the start of the first hour included")
    hours: list[HourBucket] = Field(description="by hour, case type and queue; empty ones left out")
    backlog: list[BacklogEntry]
    workers: list[WorkerEntry]
    updated_at: datetime | None = Field(
        description="when a worker last wrote a figure; null: no worker has run yet"
    )


class LiveMetricsSource(Protocol):
    """Where the live metrics are read (``infra.live_metrics_store``)."""

    def read(self, since: datetime) -> LiveMetricsPublic: ...


def _source(request: Request) -> LiveMetricsSource:
    source: LiveMetricsSource | None = getattr(request.app.state, "live_metrics", None)
    if source is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "live metrics are not configured in this server",
        )
    return source


Source = Annotated[LiveMetricsSource, Depends(_source)]
Hours = Annotated[
    int, Query(ge=1, le=MAX_HOURS, description="how many hours back, this one included")
]


def since(hours: int, now: datetime | None = None) -> datetime:
    """The start of the hour ``hours - 1`` hours before the current one."""
    now = now or datetime.now(UTC)
    current = now.replace(minute=0, second=0, microsecond=0)
    return current - timedelta(hours=hours - 1)


@router.get("", response_model=LiveMetricsPublic)
def live_metrics(source: Source, hours: Hours = MAX_HOURS) -> LiveMetricsPublic:
    """Cases opened, closed and breached per hour, case type and queue, and the open cases
    per case type and queue, as counted from the event topic (a second or two behind)."""
    return source.read(since(hours))


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "server-sent events, each `event: live-metrics` with the body of "
            "GET /live-metrics as its data: one at once, then one whenever a figure changes",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def live_metrics_stream(
    source: Source,
    hours: Hours = MAX_HOURS,
    interval_s: Annotated[
        float, Query(ge=0.5, le=60, description="how often to look for changes, in seconds")
    ] = 2.0,
    max_events: Annotated[
        int,
        Query(ge=1, le=100_000, description="end the stream after this many events"),
    ] = 10_000,
) -> StreamingResponse:
    """The live metrics as server-sent events, for a dashboard that updates live."""
    events = _events(lambda: source.read(since(hours)), interval_s, max_events)
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(
    read: Callable[[], LiveMetricsPublic], interval_s: float, max_events: int
) -> AsyncIterator[str]:
    """Server-sent events: the figures now, then each time they change, ``max_events`` in
    all; a comment every ``KEEP_ALIVE_S`` while nothing changes."""
    yield f"retry: {int(max(interval_s, 1.0) * 1000)}\n\n"
    sent, last, quiet_for = 0, "", 0.0
    while sent < max_events:
        try:
            body = (await _read_alone(read)).model_dump_json()
        except DATABASE_DOWN:
            body = last  # the stream waits the outage out; the client keeps what it has
            yield ": the database is unavailable; retrying\n\n"
        if body != last:
            sent, last, quiet_for = sent + 1, body, 0.0
            yield f"id: {sent}\nevent: live-metrics\ndata: {body}\n\n"
            if sent >= max_events:
                return
        elif quiet_for >= KEEP_ALIVE_S:
            quiet_for = 0.0
            yield ": nothing changed\n\n"
        await asyncio.sleep(interval_s)
        quiet_for += interval_s


async def _read_alone(read: Callable[[], LiveMetricsPublic]) -> LiveMetricsPublic:
    """``read()`` in a worker thread under a deadline of its own, outside the request's
    (which a stream outlives)."""

    def within_budget() -> LiveMetricsPublic:
        with deadline_in(READ_BUDGET_S):
            return read()

    return await run_in_threadpool(contextvars.Context().run, within_budget)
