"""The published contracts hold for real messages: one case taken through every kind of event
by real commands, published by the relay to the broker, read back by a plain consumer and
checked against the schemas and the AsyncAPI document in docs/."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID

import jsonschema_rs
import pytest
import yaml
from kafka.consumer.fetcher import ConsumerRecord

from domain.case import Case
from domain.context import CommandContext
from infra.bootstrap import Container, build_notifier
from infra.settings import Settings
from services.case_type_document import read_document
from services.migrations import migrate_cases
from tests.integration.helpers import CTX, raw_records

DOCS = Path(__file__).resolve().parents[2] / "docs"
ADMIN = CommandContext("test", "admin")

# Every automatic action a case type has, on a 24/7 calendar: one case meets them all.
TOUR = """
name: contract_tour
labels: {en: LABEL}
states:
  new: {initial: true, labels: {en: New}}
  working: {labels: {en: Working}}
  on_hold: {labels: {en: On hold}}
  done: {final: true, labels: {en: Done}}
transitions:
  start: {from: new, to: working, labels: {en: Start}}
  hold: {from: working, to: on_hold, labels: {en: Hold}}
  resume: {from: on_hold, to: working, labels: {en: Resume}}
  finish: {from: working, to: done, labels: {en: Finish}}
fields:
  contact: {type: text, labels: {en: Contact}}
  cost: {type: money, currencies: [EUR], labels: {en: Cost}}
slas:
  - name: fix_time
    deadline: 2h
    warn_at: [50]
    paused_in: [on_hold]
    on_breach:
      - escalate: {reason: fix time exceeded, queue: supervisors}
rules:
  - name: triage
    on: [CaseOpened]
    do:
      - set_priority: high
      - assign: {queue: repairs}
      - notify: mail
      - notify: stream
      - open_child: {case_type: generic, title: "Parts for {{ case.title }}"}
notifications:
  mail:
    channel: email
    to: [{field: contact}]
    subject: "Repair {{ case.title }}"
    body: "Your repair is {{ case.priority }}."
  stream:
    channel: kafka
    topic: STREAM_TOPIC
    body: "opened {{ case.title }}"
"""


@dataclass
class Clock:
    """The ledger's clock, moved by the test (SLA milestones fall due without waiting)."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


def install(container: Container, topic: str, label: str) -> None:
    text = TOUR.replace("STREAM_TOPIC", topic).replace("LABEL", label)
    container.case_types.install(read_document(text.encode(), "application/yaml"), label, ADMIN)


def toured(container: Container, settings: Settings) -> UUID:
    """Install the tour's case type and take one case through it, on a test clock."""
    clock = Clock(datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    container.ledger.clock = clock
    notices = f"notices-{settings.kafka_topic}"
    install(container, notices, "Contract tour")
    return tour(container, clock, notices)


def tour(container: Container, clock: Clock, notices: str) -> UUID:
    """Take one case through every kind of case event; answers its id."""
    ledger = container.ledger
    case = ledger.open_case("contract_tour", "Boiler", {"contact": "ann@example.com"}, None, CTX)
    ledger.assign(case.id, "ann", CTX, None)
    ledger.update_fields(case.id, {"cost": {"amount": 120.0, "currency": "EUR"}}, CTX, None)
    ledger.add_note(case.id, "called the customer", CTX, None)
    for move in ("start", "hold"):
        ledger.transition(case.id, move, None, {}, CTX, None)
    clock.now += timedelta(minutes=10)
    ledger.transition(case.id, "resume", "parts arrived", {}, CTX, None)
    clock.now += timedelta(hours=3)
    sla = ledger.get_case(case.id).clocks["fix_time"]
    for milestone in sorted(sla.due, key=lambda name: name == "deadline"):
        assert ledger.reach_sla_milestone(case.id, "fix_time", sla.run, milestone, CTX)
    # Closed and reopened before it is finished: a case in a final state is locked.
    ledger.close_case(case.id, "customer moved away", CTX, None)
    ledger.reopen_case(case.id, "customer came back", CTX, None)
    ledger.transition(case.id, "start", None, {}, CTX, None)
    ledger.transition(case.id, "finish", None, {}, CTX, None)
    mail = next(
        e.notification_id
        for e in ledger.history(case.id)
        if isinstance(e, Case.NotificationRequested) and e.channel == "email"
    )
    ledger.record_delivery(case.id, mail, "mailbox full", "", CTX)
    container.projections.catch_up_from_store(container.reader.head(), 1_000)
    assert build_notifier(container).run_once() == 1  # the Kafka notification
    install(container, notices, "Contract tour v2")
    migrate_cases(
        ledger, [case.id], container.case_types.current("contract_tour"), {}, False, ADMIN
    )
    ledger.place_legal_hold(case.id, "litigation", ADMIN)  # personal data and legal hold
    ledger.lift_legal_hold(case.id, "settled", ADMIN)
    ledger.erase_personal_data(case.id, "the customer asked", ADMIN)
    return case.id


@cache
def asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DOCS / "asyncapi.yaml").read_text())
    return document


@cache
def event_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((DOCS / "events" / f"{name}.schema.json").read_text())
    return schema


def check_against_its_schema(record: ConsumerRecord) -> str:
    """Validate a case-events record against the documents; answers its event type."""
    message = json.loads(record.value)
    schema = event_schema(message["type"])
    jsonschema_rs.validator_for(schema).validate(message)
    # Nothing undocumented travels: every attribute of the envelope and of data has a schema.
    assert set(message) == set(schema["properties"])
    assert set(message["data"]) == set(schema["properties"]["data"]["properties"])
    documented = asyncapi()["components"]["messages"][message["type"]]
    headers = {name: value.decode() for name, value in record.headers}
    jsonschema_rs.validator_for(documented["headers"]).validate(headers)
    assert set(headers) == set(documented["headers"]["properties"])
    # The public names, spelled out: renaming a header breaks every consumer that filters on it.
    assert headers["event-type"] == message["type"]
    assert headers["schema-version"] == str(message["schema_version"])
    assert record.key.decode() == message["case_id"]
    return str(message["type"])


@pytest.fixture
def clock(container: Container) -> Clock:
    clock = Clock(datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    container.ledger.clock = clock
    return clock


def test_every_message_published_matches_its_documented_schema_and_headers(
    container: Container, settings: Settings, clock: Clock
) -> None:
    notices = f"notices-{settings.kafka_topic}"
    install(container, notices, "Contract tour")
    case_id = tour(container, clock, notices)
    (child,) = container.ledger.get_case(case_id).children
    stored = sum(len(container.ledger.history(case)) for case in (case_id, UUID(child)))
    container.relay.publish_available()

    records = raw_records(settings, stored)
    (notification,) = raw_records(settings.model_copy(update={"kafka_topic": notices}), 1)

    assert len(records) == stored
    seen = {check_against_its_schema(record) for record in records}
    assert seen == set(Case.event_types()), "a new event type needs a step in tour()"
    note = next(
        m for m in map(json.loads, (r.value for r in records)) if m["type"] == "CaseNoteAdded"
    )
    opened = jsonschema_rs.validator_for(event_schema("CaseOpened"))
    assert not opened.is_valid(note), "the schema of one type accepts a message of another"
    check_notification(notification)


def check_notification(record: ConsumerRecord) -> None:
    """Validate a Kafka notification against the AsyncAPI document."""
    documented = asyncapi()["components"]["messages"]["Notification"]
    message = json.loads(record.value)
    jsonschema_rs.validator_for(documented["payload"]).validate(message)
    assert set(message) == set(documented["payload"]["properties"])
    headers = {name: value.decode() for name, value in record.headers}
    jsonschema_rs.validator_for(documented["headers"]).validate(headers)
    assert record.key.decode() == message["notification_id"]
