"""Roles and what each may do; the key store that maps an API key to a role is a port."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


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


@dataclass(frozen=True)
class KeyHolder:
    """Who holds an API key: the key's public id, its role, and the label it was given."""

    key_id: str
    role: Role
    label: str

    @property
    def actor_id(self) -> str:
        return self.label or f"key:{self.key_id}"


class KeyStore(Protocol):
    """Looks up who holds an API key."""

    def holder_of(self, key: str) -> KeyHolder | None: ...
