"""Roles and what each may do; API keys, their lifetime, and the key store port."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from domain.calendar import parse_duration
from domain.errors import DomainError, InvalidCommand


class Role(StrEnum):
    """The roles of people and systems that use caseledger."""

    ADMIN = "admin"
    MANAGER = "manager"
    HANDLER = "handler"
    INTEGRATOR = "integrator"
    AUDITOR = "auditor"


ALL_ROLES = frozenset(Role)
OPEN_CASE = frozenset({Role.ADMIN, Role.MANAGER, Role.HANDLER, Role.INTEGRATOR})
WORK_CASE = frozenset({Role.ADMIN, Role.MANAGER, Role.HANDLER})
UPDATE_CASE = frozenset({Role.ADMIN, Role.MANAGER, Role.HANDLER, Role.INTEGRATOR})
REOPEN_CASE = frozenset({Role.ADMIN, Role.MANAGER})
MANAGE_KEYS = frozenset({Role.ADMIN})

MAX_KEY_LIFETIME = timedelta(days=3650)
LIFETIME_HINT = "write days, hours or minutes, e.g. 30d, 12h or 90m (at most 3650d)"


def parse_lifetime(text: str) -> timedelta:
    """How long a new key lives, written ``30d``, ``12h``, ``1d 12h`` or ``90m``."""
    try:
        if "w" in text:
            raise ValueError("weeks are five working days elsewhere; write days here")
        lifetime = parse_duration(text, day_length=timedelta(days=1))
    except ValueError:
        raise InvalidCommand(f"{text[:40]!r} is not a key lifetime", hint=LIFETIME_HINT) from None
    if not timedelta(0) < lifetime <= MAX_KEY_LIFETIME:
        raise InvalidCommand(f"a key lifetime of {text[:40]!r} is out of range", hint=LIFETIME_HINT)
    return lifetime


class KeyNotFound(DomainError):
    """No API key has that id."""

    code = "key_not_found"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class KeyHolder:
    """An API key as caseledger knows it (never the key itself): its public id, its role,
    the label it was given, and when it was created, expires and was revoked."""

    key_id: str
    role: Role
    label: str
    created_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def actor_id(self) -> str:
        return self.label or f"key:{self.key_id}"

    def refusal(self, now: datetime) -> str | None:
        """Why the key may not be used at ``now`` (revoked, expired), or ``None``."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return (
                f"this key was revoked on {_when(self.revoked_at)}; "
                "ask an admin for a new one (`caseledger keys create`)"
            )
        if self.expires_at is not None and self.expires_at <= now:
            return f"this key expired on {_when(self.expires_at)}; create a new one"
        return None


class KeyStore(Protocol):
    """Issues, lists and revokes API keys, and finds who holds one."""

    def holder_of(self, key: str) -> KeyHolder | None:
        """The key's holder (also when revoked or expired), or ``None`` for an unknown key."""
        ...

    def cached_holder(self, key: str) -> KeyHolder | None:
        """:meth:`holder_of` if it is known without asking the database, else ``None``."""
        ...

    def issue(
        self, role: Role, label: str = "", expires_in: timedelta | None = None
    ) -> tuple[str, KeyHolder]:
        """A new key, shown once, and what is recorded of it."""
        ...

    def list(self) -> list[KeyHolder]: ...

    def revoke(self, key_id: str) -> KeyHolder:
        """Revoke the key (once; again changes nothing); :class:`KeyNotFound` if no key has
        that id."""
        ...
