"""Personal data: sealed under a key per data subject wherever it is stored, readable only
while that key exists (crypto-shredding), and erased by destroying the key.

Where values are sealed and unsealed:

- the ledger's mapper (:class:`SealingMapper`) seals the personal fields of ``CaseOpened``
  (``fields``), ``CaseFieldsUpdated`` (``changes``, rules' ``set_field`` included) and of a
  case's snapshots on their way to the store, and unseals them on the way back, so that the
  case in memory, its rules and its history hold plain values (``None`` once erased);
- everything that reads the store's bytes instead (the relay's envelopes on Kafka, the
  projections and so every read model) carries the sealed form; the read service
  (``services.case_views``) unseals for the reader with :meth:`Vault.unseal_many`.

The keys live behind the :class:`Vault` port (``infra.subject_keys``); the format of a sealed
value is ``domain.personal_data``. docs/audit.md, "Personal data and erasure", tells the rest.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic

from domain.case import Case
from domain.definition import Definition
from domain.errors import InvalidTransition
from domain.personal_data import SEALED, data_subject, is_sealed


class _Erased:
    """What an erased value unseals to (its key is destroyed)."""

    def __repr__(self) -> str:
        return "ERASED"


ERASED: Any = _Erased()
#: How an export writes an erased value (a CSV cell, the audit report), so that it is not
#: taken for an empty one.
ERASED_TEXT = "(erased)"


class SubjectErased(InvalidTransition):
    """New personal data was given for a data subject that was erased."""

    code = "subject_erased"


@dataclass(frozen=True)
class SealedValue:
    """One stored value to unseal, with what it was sealed with (its case and field)."""

    sealed: Mapping[str, str]
    case_id: UUID | str
    field: str


class Vault(Protocol):
    """Keys per data subject (``infra.subject_keys``; a KMS can stand behind it)."""

    def seal(self, subject: str, case_id: UUID, field: str, value: Any) -> dict[str, str]:
        """``value`` sealed under ``subject``'s key (created on first use, when the case is
        also indexed under the subject); :class:`SubjectErased` once the subject is erased."""
        ...

    def unseal_many(self, values: Sequence[SealedValue]) -> list[Any]:
        """Each value's plain value, or :data:`ERASED` when its key is gone."""
        ...

    def subject_of(self, case_id: UUID) -> str | None:
        """The subject a case is indexed under (``None``: it never sealed anything)."""
        ...

    def cases_of(self, subject: str) -> list[UUID]:
        """The cases holding sealed personal data of ``subject``."""
        ...

    def erase(self, subject: str, actor: str, reason: str) -> bool:
        """Destroy ``subject``'s key; ``False`` when it was destroyed already."""
        ...

    def is_erased(self, subject: str) -> bool: ...


def unseal_fields(
    vault: Vault | None, case_id: UUID | str, fields: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """``fields`` with their sealed values unsealed, and the names of those erased (shown as
    ``None``)."""
    sealed = [name for name, value in fields.items() if is_sealed(value)]
    if not sealed:
        return dict(fields), []
    if vault is None:
        return {**fields, **dict.fromkeys(sealed)}, sorted(sealed)
    plain = vault.unseal_many([SealedValue(fields[name], case_id, name) for name in sealed])
    opened = dict(fields)
    erased = []
    for name, value in zip(sealed, plain, strict=True):
        if value is ERASED:
            opened[name] = None
            erased.append(name)
        else:
            opened[name] = value
    return opened, sorted(erased)


_OPENED = get_topic(Case.Opened)
_UPDATED = get_topic(Case.FieldsUpdated)
_SNAPSHOT = get_topic(Snapshot)
_CASE = get_topic(Case)
_MARK = f'"{SEALED}"'.encode()
#: Where each kind of stored state keeps field values.
_FIELD_MAPS = {_OPENED: "fields", _UPDATED: "changes"}


class SealingMapper(Mapper[UUID]):
    """The library's mapper, sealing personal fields on the way to the store and unsealing
    them on the way back. ``definition`` finds a case type version; ``subjects`` knows the
    subject of the cases being saved (the ledger fills it), else the vault is asked."""

    def __init__(
        self,
        base: Mapper[UUID],
        vault: Vault | None,
        definition: Callable[[str, int], Definition],
    ) -> None:
        super().__init__(base.transcoder, base.compressor, base.cipher)
        self.vault = vault
        self.definition = definition
        self.subjects = _Subjects()

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        sealed = self._sealed(domain_event)
        return super().to_stored_event(domain_event if sealed is None else sealed)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        if _MARK not in stored_event.state:
            return event
        state = vars(event)
        key = _FIELD_MAPS.get(stored_event.topic)
        if key is not None:
            state[key], _ = unseal_fields(self.vault, event.originator_id, state[key])
        elif stored_event.topic == _SNAPSHOT and isinstance(state.get("state"), dict):
            inner = dict(state["state"])
            inner["fields"], _ = unseal_fields(
                self.vault, event.originator_id, inner.get("fields") or {}
            )
            state["state"] = inner
        return event

    def _sealed(self, event: Any) -> Any | None:
        """A copy of ``event`` with its personal values sealed (``None``: nothing to seal)."""
        if isinstance(event, Case.Opened):
            where, values = "fields", event.fields
            case_type, version = event.case_type, event.case_type_version
            subject = data_subject(event.party_id, event.originator_id)
        elif isinstance(event, Case.FieldsUpdated):
            where, values = "changes", event.changes
            case_type = event.context.get("case_type", "")
            version = int(event.context.get("case_type_version", 0))
            subject = ""
        elif isinstance(event, Snapshot) and event.topic == _CASE:
            return self._sealed_snapshot(event)
        else:
            return None
        names = self._personal(case_type, version, values)
        if not names:
            return None
        subject = subject or self._subject_of(event.originator_id)
        sealed = self._seal(subject, event.originator_id, values, names)
        return _with(event, **{where: sealed})

    def _sealed_snapshot(self, snapshot: Any) -> Any | None:
        state = snapshot.state
        fields = state.get("fields") or {}
        names = self._personal(state["case_type"], state["case_type_version"], fields)
        if not names:
            return None
        subject = data_subject(state.get("party_id"), snapshot.originator_id)
        sealed = self._seal(subject, snapshot.originator_id, fields, names)
        return _with(snapshot, state={**state, "fields": sealed})

    def _personal(self, case_type: str, version: int, values: Mapping[str, Any]) -> list[str]:
        personal = self.definition(case_type, version).personal_fields
        return [n for n in personal if values.get(n) is not None and not is_sealed(values[n])]

    def _seal(
        self, subject: str, case_id: UUID, values: Mapping[str, Any], names: list[str]
    ) -> dict[str, Any]:
        if self.vault is None:
            raise RuntimeError("personal fields are declared, but no vault keeps their keys")
        vault = self.vault
        return {**values, **{n: vault.seal(subject, case_id, n, values[n]) for n in names}}

    def _subject_of(self, case_id: UUID) -> str:
        known = self.subjects.get(case_id)
        if known is None and self.vault is not None:
            known = self.vault.subject_of(case_id)
        if known is None:
            raise RuntimeError(f"the data subject of case {case_id} is not known")
        return known


def _with(event: Any, **changes: Any) -> Any:
    """A copy of a library event with some attributes replaced (the event is immutable)."""
    copied = object.__new__(type(event))
    object.__setattr__(copied, "__dict__", {**vars(event), **changes})
    return copied


class _Subjects:
    """The subjects of recently saved cases, by case id (bounded; a case never changes
    subject)."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self._known: OrderedDict[UUID, str] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, case_id: UUID, subject: str) -> None:
        with self._lock:
            self._known[case_id] = subject
            self._known.move_to_end(case_id)
            if len(self._known) > self.LIMIT:
                self._known.popitem(last=False)

    def get(self, case_id: UUID) -> str | None:
        with self._lock:
            return self._known.get(case_id)
