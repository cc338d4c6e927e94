"""Which language to answer in, from the caller's ``Accept-Language`` header."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header


def parse_accept_language(header: str | None) -> tuple[str, ...]:
    """The primary language tags the caller accepts, best first: ``"fr-CH, fr;q=0.9, en;q=0.8"``
    gives ``("fr", "en")``. Malformed parts are passed over; ``*`` means no preference."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        language = tag.strip().split("-")[0].lower()
        if language.isalpha() and 0 < quality <= 1:
            ranked.append((-quality, index, language))
    return tuple(dict.fromkeys(language for _, _, language in sorted(ranked)))


def _languages(
    accept_language: Annotated[str | None, Header(max_length=500)] = None,
) -> tuple[str, ...]:
    return parse_accept_language(accept_language)


Languages = Annotated[tuple[str, ...], Depends(_languages)]
"""The languages the caller reads, best first (labels fall back to English)."""
