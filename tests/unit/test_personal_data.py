"""Sealing at the storage boundary, without a database: the ledger's mapper stores personal
fields sealed (events and snapshots) and gives them back plain, or ``None`` once the subject
is erased; the case-type document declares personal fields and refuses templates that would
copy them into text stored unsealed; the domain refuses erasure on legal hold."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Snapshot

from domain.case import Case, LegalHoldBlocks
from domain.definition import Definition
from domain.errors import InvalidCommand
from domain.personal_data import is_sealed
from services.case_type_document import problems_in
from services.personal_data import (
    ERASED,
    SealedValue,
    SealingMapper,
    SubjectErased,
    unseal_fields,
)
from tests.case_types import from_yaml

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
CTX = {"actor_id": "ann", "actor_role": "handler"}
DOCUMENT = """
name: patient
labels: {en: Patient}
states: {open: {initial: true}, done: {final: true}}
fields:
  name: {type: text, personal: true}
  birth: {type: date, personal: true}
  ward: {type: text}
"""


class FakeVault:
    """Seals reversibly in memory (the real one is infra.subject_keys, tested for real)."""

    def __init__(self) -> None:
        self.erased: set[str] = set()
        self.indexed: dict[UUID, str] = {}

    def seal(self, subject: str, case_id: UUID, field: str, value: Any) -> dict[str, str]:
        if subject in self.erased:
            raise SubjectErased(f"{subject} was erased")
        self.indexed[case_id] = subject
        return {"sealed": f"v1:{subject}:{json.dumps(value)[::-1]}"}

    def unseal_many(self, values: Sequence[SealedValue]) -> list[Any]:
        opened = []
        for value in values:
            subject, _, text = value.sealed["sealed"][3:].rpartition(":")
            opened.append(ERASED if subject in self.erased else json.loads(text[::-1]))
        return opened

    def subject_of(self, case_id: UUID) -> str | None:
        return self.indexed.get(case_id)

    def cases_of(self, subject: str) -> list[UUID]:
        return [c for c, s in self.indexed.items() if s == subject]

    def erase(self, subject: str, actor: str, reason: str) -> bool:
        new = subject not in self.erased
        self.erased.add(subject)
        return new

    def is_erased(self, subject: str) -> bool:
        return subject in self.erased


def patient(_name: str = "patient", _version: int = 1) -> Definition:
    return from_yaml(DOCUMENT)


def mapper(vault: FakeVault) -> SealingMapper:
    return SealingMapper(Application[UUID]().mapper, vault, patient)


def test_personal_fields_are_stored_sealed_and_read_back_plain_until_erased() -> None:
    vault = FakeVault()
    seal = mapper(vault)
    case = Case.open(patient(), "t", {"name": "Zoë", "ward": "B2"}, "p-1", CTX, NOW)
    case.update_fields(patient(), {"birth": "1970-01-02"}, CTX, None)
    opened, updated = case.collect_events()
    assert isinstance(opened, Case.Opened)
    seal.subjects.remember(case.id, case.subject)
    stored = [seal.to_stored_event(opened), seal.to_stored_event(updated)]
    state = json.loads(stored[0].state)
    assert is_sealed(state["fields"]["name"]) and state["fields"]["ward"] == "B2"
    assert b"Zo" not in stored[0].state and b"1970-01-02" not in stored[1].state
    assert seal.to_domain_event(stored[0]).fields == {"name": "Zoë", "ward": "B2"}
    assert opened.fields["name"] == "Zoë"  # the event in memory is left as it was

    vault.erase("p-1", "admin", "asked")
    assert seal.to_domain_event(stored[0]).fields == {"name": None, "ward": "B2"}
    assert seal.to_domain_event(stored[1]).changes == {"birth": None}


def test_a_snapshot_keeps_personal_fields_sealed() -> None:
    vault = FakeVault()
    seal = mapper(vault)
    case = Case.open(patient(), "t", {"name": "Zoë"}, None, CTX, NOW)
    stored = seal.to_stored_event(Snapshot.take(case))
    assert b"Zo" not in stored.state
    assert vault.indexed[case.id] == f"case:{case.id}"  # a case without a party
    assert seal.to_domain_event(stored).state["fields"] == {"name": "Zoë"}


def test_unsealing_names_the_erased_fields() -> None:
    vault = FakeVault()
    sealed = vault.seal("p-1", UUID(int=1), "name", "Zoë")
    assert unseal_fields(vault, UUID(int=1), {"name": sealed, "ward": "B2"}) == (
        {"name": "Zoë", "ward": "B2"},
        [],
    )
    vault.erase("p-1", "admin", "asked")
    assert unseal_fields(vault, UUID(int=1), {"name": sealed}) == ({"name": None}, ["name"])


def test_erasure_is_refused_on_legal_hold_recorded_once_and_clears_the_values() -> None:
    case = Case.open(patient(), "t", {"name": "Zoë", "ward": "B2"}, "p-1", CTX, NOW)
    case.place_legal_hold("litigation", CTX)
    with pytest.raises(LegalHoldBlocks):
        case.erase_personal_data(patient(), "asked", CTX)
    case.lift_legal_hold("settled", CTX)
    assert case.erase_personal_data(patient(), "asked", CTX) is True
    assert case.erase_personal_data(patient(), "asked", CTX) is False
    assert (case.fields, case.erased) == ({"name": None, "ward": "B2"}, ("birth", "name"))


def test_a_value_shaped_like_a_sealed_one_is_refused() -> None:
    with pytest.raises(InvalidCommand, match="shape of a sealed"):
        Case.open(patient(), "t", {"ward": {"sealed": "v1:x:abc"}}, None, CTX, NOW)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("fields: {email: {type: text, personal: yes please}}", "fields.email.personal: must"),
        (
            "notifications: {hi: {channel: email, to: [{field: name}], subject: Hi, body: Hey}}",
            "notifications.hi.to[0]: would copy the personal field name",
        ),
        (
            "notifications: {hi: {channel: email, to: [{role: admin}], subject: Hi,"
            " body: '{{ fields }}'}}",
            "notifications.hi.body: would copy the personal field",
        ),
    ],
)
def test_the_document_checks_personal_fields(extra: str, problem: str) -> None:
    import yaml  # noqa: PLC0415

    document = yaml.safe_load(DOCUMENT)
    document.update(yaml.safe_load(extra))
    if "email" in document["fields"]:
        document["fields"] = {**yaml.safe_load(DOCUMENT)["fields"], **document["fields"]}
    assert any(found.startswith(problem) for found in problems_in(document)), problems_in(document)
    assert patient().personal_fields == {"name", "birth"}
