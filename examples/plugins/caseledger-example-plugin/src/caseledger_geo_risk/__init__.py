"""Geographic risk for caseledger: an example plugin.

Functions (usable in conditions) take plain values and return a plain value; their
annotations are their signature, which caseledger's type checker reads. Actions take the
case's facts (``case``, ``fields``, ``event``, ``actor``: JSON values) and their ``with``
settings as keyword arguments, and return actions of the case-type vocabulary, written as in
a document. Neither gets anything of caseledger's: they run in a sandbox worker.
"""

from __future__ import annotations

from typing import Any

# A real plugin would ship or load its data; this one keeps a tiny table.
_RISK_BY_AREA = {"75": 8.5, "13": 6.0, "33": 7.0, "69": 4.0}
_FLOOD_ZONES = ("33", "44", "76")


def score(postcode: str) -> float:
    """Risk from 0 (none) to 10 for a French postcode, by its department (first 2 digits)."""
    return _RISK_BY_AREA.get(postcode.strip()[:2], 2.0)


def in_flood_zone(postcode: str) -> bool:
    """Whether the postcode lies in a department with a flood-risk plan."""
    return postcode.strip()[:2] in _FLOOD_ZONES


def flag_for_review(
    facts: dict[str, Any], *, reason: str, queue: str = "risk-review"
) -> list[dict[str, Any]]:
    """Put the case in the review queue, raise its priority and record an escalation that
    says why (with the case's postcode)."""
    postcode = facts["fields"].get("postcode", "?")
    return [
        {"set_priority": "high"},
        {"escalate": {"reason": f"{reason} (postcode {postcode})", "queue": queue}},
    ]
