"""Errors of the service layer, raised instead of the library's own."""

from __future__ import annotations

from domain.errors import DomainError, InvalidCommand


class CaseNotFound(DomainError):
    """No case has that id."""

    code = "case_not_found"


class VersionConflict(DomainError):
    """The case changed since the version the caller expected."""

    code = "version_conflict"


class CaseTypeNotFound(DomainError):
    """No case type (or version of it) has that name."""

    code = "case_type_not_found"


class SaveTooLarge(InvalidCommand):
    """The command would store more than an event or a save may hold (domain.values)."""

    code = "too_large"


class StoreUnavailable(DomainError):
    """The database could not be reached in time (an outage); answered 503."""

    code = "store_unavailable"


class StoreBusy(StoreUnavailable):
    """The event store could not take the write in time; nothing was stored."""

    code = "store_busy"


class OutcomeUnknown(DomainError):
    """The database went away during COMMIT and did not come back in time to say whether
    the command was stored; answered 504. Unlike 503, the command may be stored: a retry
    with the same Idempotency-Key answers its outcome and never stores it twice."""

    code = "outcome_unknown"


class RequestReplayed(DomainError):
    """A request with the same Idempotency-Key was stored by a concurrent request."""

    code = "request_replayed"


class ProjectionNotFound(DomainError):
    """No projection has that name, or the case is not held in it."""

    code = "projection_not_found"
