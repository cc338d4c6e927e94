"""Secrets by reference: case types name a secret (``secret: claims_webhook``); its value is
written by an admin and never read back, except by the notifier that sends it. The table is
owned by ``infra.secrets``; this is the port the API and the CLI use."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.errors import DomainError, InvalidCommand

SECRET_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
MAX_SECRET_CHARS = 4096
_PRINTABLE = re.compile(r"[\x20-\x7e]+")


class SecretNotFound(DomainError):
    """No secret has that name."""

    code = "secret_not_found"


@dataclass(frozen=True)
class SecretEntry:
    """A secret as anyone may see it: its name and dates, never its value."""

    name: str
    created_at: datetime
    updated_at: datetime


class SecretBook(Protocol):
    """Writes secrets and lists their names; nothing here reads a value back."""

    def set(self, name: str, value: str) -> None:
        """Create or replace the secret ``name``."""
        ...

    def delete(self, name: str) -> None:
        """Remove the secret ``name``; :class:`SecretNotFound` when there is none."""
        ...

    def entries(self) -> list[SecretEntry]:
        """Every secret's name and dates, by name."""
        ...


def check_secret(name: str, value: str) -> None:
    """Refuse a name that documents could not name, and a value that cannot travel as an
    HTTP header (it is sent as a webhook's Authorization header)."""
    if not SECRET_NAME.fullmatch(name):
        raise InvalidCommand(
            f"{name[:70]!r} is not a secret name",
            hint="use lowercase letters, digits and _, starting with a letter (at most 63)",
        )
    if "\r" in value or "\n" in value:
        raise InvalidCommand(
            "the secret's value holds a line break",
            hint="it is sent as an HTTP header: give it on one line, e.g. 'Bearer abc123'",
        )
    if not value or len(value) > MAX_SECRET_CHARS or not _PRINTABLE.fullmatch(value):
        raise InvalidCommand(
            f"the secret's value must be 1 to {MAX_SECRET_CHARS} printable ASCII characters",
            hint="it is sent as the webhook's Authorization header, e.g. 'Bearer abc123' or "
            "'Basic ' followed by base64 of user:password",
        )


def not_found(name: str) -> SecretNotFound:
    return SecretNotFound(
        f"no secret is called {name!r}", hint="see the names with `caseledger secrets list`"
    )
