"""The notifier's retry policy, driven through the real Notifier with a fake channel, an
in-memory outbox on a clock the test moves, and the case ledger on in-memory persistence:
a failed attempt waits 2, 4, 8, 16 s, the fifth failure is recorded as ``NotificationFailed``
on the case, and a channel that recovers is recorded as sent, once."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from uuid import UUID

import pytest

from adapters.channels import Channel, Delivery, DeliveryError
from domain.case import Case
from domain.context import CommandContext
from domain.definition import Definition
from domain.envelope import envelope_for
from infra.notifier import NotificationOutbox, Notifier, OutboxEntry, RetryPolicy
from projections.work_queues import outbox_change
from services.application import CaseLedger
from tests.case_types import from_yaml

ALERTS = """
name: alerts
labels: {en: Alerts}
states: {open: {initial: true, labels: {en: Open}}}
rules:
  - name: tell
    on: [CaseOpened]
    do: [{notify: hook}, {notify: mail}]
notifications:
  hook:
    channel: webhook
    url: https://hooks.example.com/alerts
    body: "opened {{ case.title }}"
  mail:
    channel: email
    to: [{address: desk@example.com}]
    subject: "Case {{ case.title }}"
    body: "opened {{ case.title }}"
"""
CTX = CommandContext("tester", "handler")
DOWN = "hooks.example.com refused the connection: start the receiver"


class OneCaseType:
    """The case-type registry, holding one compiled case type."""

    def __init__(self, definition: Definition) -> None:
        self.compiled = definition

    def current(self, name: str) -> Definition:
        return self.compiled

    def definition(self, name: str, version: int) -> Definition:
        return self.compiled


@dataclass
class Waiting:
    entry: OutboxEntry
    due_at: float


@dataclass
class InMemoryOutbox(NotificationOutbox):
    """The outbox as the projection fills it, on a clock the test moves (``now``, in s)."""

    now: float = 0.0
    waiting: dict[str, Waiting] = field(default_factory=dict)

    def add(self, ledger: CaseLedger, case_id: UUID) -> None:
        """Put the case's requested notifications in, as the projection does."""
        for position, event in enumerate(ledger.history(case_id), start=1):
            change = outbox_change(envelope_for(event, position))
            if change is not None and change.message is not None:
                entry = OutboxEntry(change.notification_id, UUID(change.case_id), change.message, 0)
                self.waiting[entry.notification_id] = Waiting(entry, self.now)

    def claim(self, hold_s: float) -> OutboxEntry | None:
        due = [w for w in self.waiting.values() if w.due_at <= self.now]
        if not due:
            return None
        first = min(due, key=lambda waiting: waiting.due_at)
        first.due_at = self.now + hold_s
        return first.entry

    def retry_later(self, notification_id: str, attempts: int, error: str, delay_s: float) -> None:
        waiting = self.waiting[notification_id]
        waiting.entry = replace(waiting.entry, attempts=attempts)
        waiting.due_at = self.now + delay_s

    def drop(self, notification_id: str) -> None:
        self.waiting.pop(notification_id, None)


class FlakyChannel(Channel):
    """Refuses its first ``failures`` sends, then delivers; keeps the ids it was given."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.tried: list[str] = []

    def send(self, delivery: Delivery) -> str:
        self.tried.append(delivery.notification_id)
        if len(self.tried) <= self.failures:
            raise DeliveryError(DOWN)
        return f"delivered {delivery.message['notification']}"


class SurprisingChannel(Channel):
    """Fails with an error no channel should raise."""

    def send(self, delivery: Delivery) -> str:
        raise RuntimeError("the receiver's certificate store is corrupt")


@pytest.fixture
def ledger() -> CaseLedger:
    return CaseLedger(
        OneCaseType(from_yaml(ALERTS)), env={"PERSISTENCE_MODULE": "eventsourcing.popo"}
    )


def open_alert(ledger: CaseLedger, outbox: InMemoryOutbox) -> dict[str, str]:
    """Open a case, fill the outbox from it; answers its notification ids by name."""
    case = ledger.open_case("alerts", "Leak", {}, None, CTX)
    outbox.add(ledger, case.id)
    return {
        e.notification: e.notification_id
        for e in ledger.history(case.id)
        if isinstance(e, Case.NotificationRequested)
    }


def outcomes(ledger: CaseLedger, case_id: UUID) -> dict[str, tuple[str, str]]:
    """notification id -> (outcome, detail or error), as the case records them."""
    return {
        e.notification_id: ("sent", e.detail)
        if isinstance(e, Case.NotificationSent)
        else ("failed", e.error)
        for e in ledger.history(case_id)
        if isinstance(e, Case.NotificationSent | Case.NotificationFailed)
    }


def notifier(
    outbox: InMemoryOutbox, ledger: CaseLedger, channels: dict[str, Channel], attempts: int = 5
) -> Notifier:
    return Notifier(outbox, ledger, channels, retry=RetryPolicy(attempts), poll_s=1.0)


def test_a_failing_channel_is_retried_after_2_4_8_16_s_and_the_fifth_failure_is_recorded(
    ledger: CaseLedger,
) -> None:
    outbox, hooks, mails = InMemoryOutbox(), FlakyChannel(failures=99), FlakyChannel(0)
    ids = open_alert(ledger, outbox)
    hook = ids["hook"]
    sender = notifier(outbox, ledger, {"webhook": hooks, "email": mails})
    case_id = outbox.waiting[hook].entry.case_id

    assert sender.run_once() == 1  # the mail goes; the webhook fails its first attempt
    for attempt, wait_s in enumerate([2, 4, 8, 16], start=1):
        assert outbox.waiting[hook].entry.attempts == attempt
        outbox.now += wait_s - 0.5
        assert sender.run_once() == 0
        assert len(hooks.tried) == attempt  # not due yet during the back-off
        outbox.now += 0.5
        assert sender.run_once() == 0
        assert len(hooks.tried) == attempt + 1

    assert outcomes(ledger, case_id) == {
        ids["mail"]: ("sent", "delivered mail"),
        hook: ("failed", DOWN),
    }
    assert outbox.waiting == {}
    outbox.now += 3_600
    assert sender.run_once() == 0
    assert len(hooks.tried) == 5


def test_a_channel_that_recovers_is_recorded_as_sent_once(ledger: CaseLedger) -> None:
    outbox, hooks = InMemoryOutbox(), FlakyChannel(failures=2)
    ids = open_alert(ledger, outbox)
    case_id = outbox.waiting[ids["hook"]].entry.case_id
    sender = notifier(outbox, ledger, {"webhook": hooks, "email": FlakyChannel(0)})

    for wait_s in (0, 2, 4):
        outbox.now += wait_s
        sender.run_once()
    outbox.now += 3_600
    assert sender.run_once() == 0

    assert hooks.tried == [ids["hook"]] * 3
    assert outcomes(ledger, case_id)[ids["hook"]] == ("sent", "delivered hook")
    assert outbox.waiting == {}


def test_an_unknown_channel_or_a_surprise_fails_only_its_own_message_saying_why(
    ledger: CaseLedger,
) -> None:
    outbox = InMemoryOutbox()
    ids = open_alert(ledger, outbox)
    case_id = outbox.waiting[ids["hook"]].entry.case_id
    sender = notifier(outbox, ledger, {"email": SurprisingChannel()}, attempts=1)

    assert sender.run_once() == 0
    recorded = outcomes(ledger, case_id)
    assert recorded[ids["hook"]][1].startswith("unknown channel 'webhook'; channels are email")
    assert recorded[ids["mail"]][1].startswith("unexpected error (RuntimeError: ")
    assert outbox.waiting == {}


def test_a_notification_the_case_recorded_already_is_dropped_without_sending(
    ledger: CaseLedger,
) -> None:
    outbox, hooks = InMemoryOutbox(), FlakyChannel(0)
    ids = open_alert(ledger, outbox)
    case_id = outbox.waiting[ids["hook"]].entry.case_id
    ledger.record_delivery(case_id, ids["hook"], None, "sent by a notifier that died", CTX)
    sender = notifier(outbox, ledger, {"webhook": hooks, "email": FlakyChannel(0)})

    assert sender.run_once() == 1  # the mail only
    assert hooks.tried == []
    assert outbox.waiting == {}


@pytest.mark.parametrize(
    ("failed", "wait_s"), [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, None), (6, None)]
)
def test_the_retry_policy_doubles_the_wait_until_the_last_attempt(
    failed: int, wait_s: float | None
) -> None:
    assert RetryPolicy(max_attempts=5).delay_s(failed) == wait_s
