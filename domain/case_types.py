"""Case-type definitions. For now one built-in type, ``generic``; later they become data."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import InvalidCommand, UnknownCaseType

CLOSED = "closed"


@dataclass(frozen=True)
class CaseType:
    """A kind of case: the statuses a case of this type may take while open."""

    name: str
    version: int
    statuses: tuple[str, ...]
    initial_status: str

    def check_status(self, status: str) -> None:
        if status not in self.statuses:
            allowed = ", ".join(self.statuses)
            raise InvalidCommand(
                f"unknown status {status!r} for case type {self.name!r}",
                hint=f"use one of: {allowed}; to close a case use its close endpoint",
            )


GENERIC = CaseType(
    name="generic",
    version=1,
    statuses=("open", "in_progress", "waiting", "resolved"),
    initial_status="open",
)

BUILT_IN: dict[str, CaseType] = {GENERIC.name: GENERIC}


def case_type_named(name: str) -> CaseType:
    """The current version of the case type called ``name``."""
    try:
        return BUILT_IN[name]
    except KeyError:
        known = ", ".join(sorted(BUILT_IN))
        raise UnknownCaseType(
            f"unknown case type {name!r}", hint=f"known case types: {known}"
        ) from None
