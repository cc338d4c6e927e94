"""Notifications through real channels: an SMTP server, an HTTP webhook, a Kafka topic; each
delivery (or its failure, after the last attempt) is recorded once on the case."""

from __future__ import annotations

import json
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any
from uuid import UUID

import pytest
from aiosmtpd.controller import Controller
from kafka import KafkaConsumer

from domain.case import Case
from domain.context import CommandContext
from infra.bootstrap import Container, build_notifier
from infra.embedded import free_port
from infra.notifier import Notifier
from infra.settings import Settings
from services.case_type_document import read_document
from tests.integration.helpers import CTX
from tests.integration.receivers import WebhookReceiver, webhook_receiver

NOTIFYING = """
name: notifying
labels: {en: Notifying}
states: {open: {initial: true, labels: {en: Open}}}
transitions: {}
fields:
  email: {type: text, labels: {en: E-mail}}
rules:
  - name: tell_everyone
    on: [CaseOpened]
    do: [{notify: mail}, {notify: hook}, {notify: stream}]
notifications:
  mail:
    channel: email
    to: [{field: email}, {role: manager}]
    subject: "Case {{ case.title }} opened"
    body: "Hello, case {{ case.title }} is {{ case.status }}."
  hook:
    channel: webhook
    url: HOOK_URL
    body: "opened {{ case.title }}"
  stream:
    channel: kafka
    topic: STREAM_TOPIC
    body: "opened {{ case.title }}"
"""


class Inbox:
    """An SMTP server's handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.original_content)
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler, port = Inbox(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The receivers listen on 127.0.0.1: IT names it in the webhook allowlist."""
    return settings.model_copy(update={"webhook_allowlist": "127.0.0.1"})


def install(container: Container, settings: Settings, hook_port: int) -> str:
    topic = f"notices-{settings.kafka_topic}"
    text = NOTIFYING.replace("HOOK_URL", f"http://127.0.0.1:{hook_port}/hook")
    text = text.replace("STREAM_TOPIC", topic)
    document = read_document(text.encode(), "application/yaml")
    container.case_types.install(document, "test", CommandContext("test", "admin"))
    return topic


def outcomes(container: Container, case_id: UUID) -> list[str]:
    return [
        type(e).__name__
        for e in container.ledger.history(case_id)
        if isinstance(e, Case.NotificationSent | Case.NotificationFailed)
    ]


def deliver(container: Container, notifier: Notifier) -> None:
    container.projections.catch_up_from_store(container.reader.head(), 1_000)
    notifier.run_once()
    container.projections.catch_up_from_store(container.reader.head(), 1_000)


def test_each_channel_delivers_and_the_case_records_it_once(
    container: Container,
    settings: Settings,
    inbox: tuple[Inbox, int],
    webhook: WebhookReceiver,
) -> None:
    mailbox, smtp_port = inbox
    topic = install(container, settings, webhook.port)
    configured = settings.model_copy(
        update={
            "smtp_url": f"smtp://127.0.0.1:{smtp_port}",
            "notify_role_addresses": json.dumps({"manager": ["boss@example.com"]}),
        }
    )
    notifier = build_notifier(container, configured)
    case = container.ledger.open_case("notifying", "Leak", {"email": "jo@example.com"}, None, CTX)
    deliver(container, notifier)
    deliver(container, notifier)  # nothing is sent twice once recorded
    notifier.close()

    requested = {
        e.notification: e.notification_id
        for e in container.ledger.history(case.id)
        if isinstance(e, Case.NotificationRequested)
    }
    [mail] = [message_from_bytes(m) for m in mailbox.messages]
    assert mail["Subject"] == "Case Leak opened"
    assert mail["To"] == "jo@example.com, boss@example.com"
    assert mail["Message-ID"] == f"<{requested['mail']}@caseledger>"
    assert str(mail.get_payload()).strip() == "Hello, case Leak is open."
    [hook] = webhook.posts
    assert (hook.json()["body"], hook.notification_id) == ("opened Leak", requested["hook"])
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5_000,
    )
    try:
        [record] = list(consumer)
    finally:
        consumer.close()
    assert record.key.decode() == requested["stream"]
    assert json.loads(record.value)["body"] == "opened Leak"
    assert outcomes(container, case.id) == ["NotificationSent"] * 3
    with container.pool.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM notification_outbox").fetchone() == {"n": 0}


def test_an_unreachable_channel_is_retried_then_recorded_as_failed_with_a_way_forward(
    container: Container, settings: Settings
) -> None:
    install(container, settings, free_port())  # nothing listens on the webhook's port
    configured = settings.model_copy(update={"notify_max_attempts": 3})
    notifier = build_notifier(container, configured)
    case = container.ledger.open_case("notifying", "Leak", {"email": "jo@example.com"}, None, CTX)
    for _ in range(3):
        deliver(container, notifier)
        with container.pool.connection() as conn:  # skip the back-off wait
            conn.execute(
                "UPDATE notification_outbox SET next_attempt_at = now() WHERE attempts > 0"
            )
    notifier.close()
    failures = {
        e.notification_id: e.error
        for e in container.ledger.history(case.id)
        if isinstance(e, Case.NotificationFailed)
    }
    errors = sorted(failures.values())
    assert len(errors) == 2  # the e-mail and the webhook; the Kafka topic took its message
    assert "set CASELEDGER_SMTP_URL" in errors[1] or "set CASELEDGER_SMTP_URL" in errors[0]
    assert any(error.startswith("webhook: ") for error in errors)
    assert outcomes(container, case.id).count("NotificationSent") == 1
