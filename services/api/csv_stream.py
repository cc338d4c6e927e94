"""The streamed answer of a CSV export (``GET /exports/...``): an attachment named after
what it exports, each chunk read under a deadline of its own."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator

from fastapi.responses import StreamingResponse

from services.deadline import deadline_in


def csv_response(name: str, chunks: Iterator[str], seconds: float | None) -> StreamingResponse:
    """``chunks`` streamed as the attachment ``<name>.csv``, each read within ``seconds``."""
    return StreamingResponse(
        _each_within(chunks, seconds),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _each_within(chunks: Iterator[str], seconds: float | None) -> Iterator[str]:
    """``chunks``, each read under a deadline of its own: the request's deadline covers the
    first page (read before the answer starts), and a long export is not cut off when it
    passes. Each chunk is read in a fresh context, outside the request's deadline."""
    while True:
        chunk = contextvars.Context().run(_next_within, chunks, seconds)
        if chunk is None:
            return
        yield chunk


def _next_within(chunks: Iterator[str], seconds: float | None) -> str | None:
    with deadline_in(seconds):
        return next(chunks, None)
