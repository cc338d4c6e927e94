"""Domain errors: each says what is wrong and how to put it right."""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every rule the case model refuses to break."""

    code = "domain_error"

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InvalidCommand(DomainError):
    """The command is well-formed but its values are not allowed (e.g. an unknown status)."""

    code = "invalid_command"


class InvalidTransition(DomainError):
    """The case is not in a state where this command applies (e.g. closing a closed case)."""

    code = "invalid_transition"


class UnknownCaseType(InvalidCommand):
    """No case type of that name is known."""

    code = "unknown_case_type"


class NotAllowed(DomainError):
    """The caller's role may not do this on cases of this type (e.g. a restricted transition)."""

    code = "forbidden"


class BudgetExceeded(InvalidCommand):
    """A command would go past a limit set to protect everyone else: a rule or template ran
    out of its time or size budget, or rules fanned out too far. The whole command fails
    (nothing is stored), unlike an ordinary rule action that does not apply and is skipped."""

    code = "budget_exceeded"
