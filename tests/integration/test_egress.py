"""Egress of notifications: webhooks reach only what IT's allowlist allows (checked when a case
type is published and again, after DNS resolution, when sending), no redirect is followed, a
receiver's answer is never stored; Kafka notifications never reach caseledger's own topics;
e-mail goes to single, strict addresses with one-line headers."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer

from domain.case import Case
from domain.context import CommandContext
from infra.bootstrap import Container, bootstrap, build_notifier
from infra.embedded import MailSink, free_port
from infra.settings import Settings
from services.auth import Role
from tests.case_types import publish_reviewed
from tests.conftest import auth
from tests.integration.helpers import CTX

ADMIN = CommandContext("tester", "admin")


class Receiver:
    """An HTTP server on 127.0.0.1 answering every POST with ``status``, ``headers`` and
    ``body``; it keeps the requests it got."""

    def __init__(self, status: int = 204, body: bytes = b"", **headers: str) -> None:
        self.status, self.body, self.headers = status, body, headers
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.requests.append((self.path, dict(self.headers), payload))
                self.send_response(receiver.status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(receiver.body)))
                self.end_headers()
                self.wfile.write(receiver.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.close()


def document(notifications: dict[str, Any], name: str = "egress") -> dict[str, Any]:
    return {
        "name": name,
        "labels": {"en": "Egress"},
        "states": {"open": {"initial": True}},
        "fields": {"email": {"type": "text"}},
        "rules": [
            {"name": "tell", "on": ["CaseOpened"], "do": [{"notify": n} for n in notifications]}
        ],
        "notifications": notifications,
    }


def hook(url: str) -> dict[str, Any]:
    return {"channel": "webhook", "url": url, "body": "case {{ case.title }}"}


def publish(client: TestClient, admin: str, notifications: dict[str, Any]) -> Any:
    """Draft then publish over HTTP (four eyes: a second admin approves); the answer of the
    publication, or of the draft when it was refused."""
    drafted = client.post("/case-types", json=document(notifications), headers=auth(admin))
    if drafted.status_code != 201:
        return drafted
    return publish_reviewed(client, admin, "egress", drafted.json()["version"], "egress test")


def sent_or_failed(container: Container, case_id: UUID) -> list[tuple[str, str]]:
    return [
        (type(e).__name__, e.detail if isinstance(e, Case.NotificationSent) else e.error)
        for e in container.ledger.history(case_id)
        if isinstance(e, Case.NotificationSent | Case.NotificationFailed)
    ]


def deliver(container: Container, settings: Settings, title: str = "Leak") -> UUID:
    """Open a case of the published type and run one notifier pass (one attempt each)."""
    case = container.ledger.open_case("egress", title, {"email": "jo@example.com"}, None, CTX)
    container.projections.catch_up_from_store(container.reader.head(), 1_000)
    notifier = build_notifier(container, settings.model_copy(update={"notify_max_attempts": 1}))
    try:
        notifier.run_once()
    finally:
        notifier.close()
    return case.id


# -- webhooks: the allowlist, checked at publication --------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:5432/", "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://[::1]:6379/", "::1 is a loopback address"),
        ("http://10.0.0.8/hook", "10.0.0.8 is a private address"),
        ("http://0.0.0.0:8000/", "0.0.0.0 is an unspecified address"),
        ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
        (
            "http://[::ffff:127.0.0.1]/",
            "::ffff:7f00:1 is an IPv6 address that embeds the IPv4 address 127.0.0.1",
        ),
        ("http://0x7f000001/", "'0x7f000001' is an IPv4 address in an unusual notation"),
        ("http://2130706433/", "'2130706433' is an IPv4 address in an unusual notation"),
        ("http://017700000001/", "'017700000001' is an IPv4 address in an unusual notation"),
        ("http://127.1/", "'127.1' is an IPv4 address in an unusual notation"),
        ("https://hooks.example.com/claims", "hooks.example.com:443 is not in the webhook allow"),
    ],
)
def test_a_webhook_to_an_internal_or_unlisted_target_is_not_published(
    client: TestClient, keys: dict[Role, str], url: str, problem: str
) -> None:
    answer = publish(client, keys[Role.ADMIN], {"hook": hook(url)})
    assert answer.status_code == 422
    assert problem in answer.text
    assert f"notifications.hook.url: {problem}" in answer.json()["detail"].replace('"', "'")
    assert client.get("/case-types/egress", headers=auth(keys[Role.ADMIN])).status_code == 404


@pytest.fixture
def allowing(settings: Settings) -> Iterator[tuple[Container, Settings]]:
    """A container whose allowlist names 127.0.0.1 (any port) and any public host."""
    configured = settings.model_copy(update={"webhook_allowlist": "127.0.0.1, *"})
    built = bootstrap(configured, name="test-egress")
    yield built, configured
    built.close()


def test_a_target_the_allowlist_names_is_published_and_gets_only_the_status_recorded(
    allowing: tuple[Container, Settings],
    receivers: list[Receiver],
    caplog: pytest.LogCaptureFixture,
) -> None:
    container, settings = allowing
    receivers += [Receiver(500, b"internal: db password is hunter2")]
    container.case_types.install(
        document({"hook": hook(f"http://127.0.0.1:{receivers[0].port}/in")}), "t", ADMIN
    )
    with caplog.at_level(logging.DEBUG):
        case_id = deliver(container, settings)
    assert [path for path, _, _ in receivers[0].requests] == ["/in"]
    [(outcome, error)] = sent_or_failed(container, case_id)
    assert outcome == "NotificationFailed"
    assert error.startswith(f"webhook: http://127.0.0.1:{receivers[0].port} answered 500;")
    assert "hunter2" not in json.dumps([str(e.__dict__) for e in container.ledger.history(case_id)])
    assert "hunter2" not in caplog.text


def test_no_redirect_is_followed(
    allowing: tuple[Container, Settings], receivers: list[Receiver]
) -> None:
    container, settings = allowing
    inside = Receiver()
    receivers += [inside, Receiver(307, Location=f"http://127.0.0.1:{inside.port}/inside")]
    container.case_types.install(
        document({"hook": hook(f"http://127.0.0.1:{receivers[1].port}/out")}), "t", ADMIN
    )
    case_id = deliver(container, settings)
    assert inside.requests == []
    [(outcome, error)] = sent_or_failed(container, case_id)
    assert outcome == "NotificationFailed"
    assert "answered 307" in error and "redirects are not followed" in error


def test_the_target_is_checked_again_after_dns_resolution_when_sending(
    allowing: tuple[Container, Settings], receivers: list[Receiver]
) -> None:
    """`*` allows any public host; `localhost` passes at publication (names are not resolved
    then) but resolves to a loopback address, which the allowlist does not name."""
    container, settings = allowing
    receivers += [Receiver()]
    container.case_types.install(
        document({"hook": hook(f"http://localhost:{receivers[0].port}/x")}), "t", ADMIN
    )
    case_id = deliver(container, settings.model_copy(update={"webhook_allowlist": "*"}))
    assert receivers[0].requests == []
    [(outcome, error)] = sent_or_failed(container, case_id)
    assert outcome == "NotificationFailed"
    assert "localhost resolves to 127.0.0.1, a loopback address" in error


# -- Kafka: never caseledger's own topics --------------------------------------------------------


@pytest.mark.parametrize(
    "topic",
    ["CASE_EVENTS", "case-events", "case-events.copy", "caseledger-x", "__consumer_offsets"],
)
def test_a_kafka_notification_to_a_caseledger_topic_is_not_published(
    client: TestClient, keys: dict[Role, str], settings: Settings, topic: str
) -> None:
    topic = settings.kafka_topic if topic == "CASE_EVENTS" else topic
    notification = {"channel": "kafka", "topic": topic, "body": "junk"}
    answer = publish(client, keys[Role.ADMIN], {"feed": notification})
    assert answer.status_code == 422
    assert "is reserved for caseledger" in answer.text


def test_a_reserved_topic_is_refused_again_when_sending(
    container: Container, settings: Settings
) -> None:
    topic = f"notices-{settings.kafka_topic}"
    feed = {"channel": "kafka", "topic": topic, "body": "junk"}
    container.case_types.install(document({"feed": feed}), "t", ADMIN)
    case_id = deliver(container, settings.model_copy(update={"kafka_topic": topic}))
    [(outcome, error)] = sent_or_failed(container, case_id)
    assert outcome == "NotificationFailed"
    assert f"topic {topic!r} is reserved for caseledger" in error
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1_000,
    )
    try:
        assert list(consumer) == []
    finally:
        consumer.close()


# -- e-mail: single addresses, one-line headers, the sink's file names ---------------------------


@pytest.mark.parametrize(
    "address",
    [
        "a@example.com, boss@example.com",
        "Boss <boss@example.com>",
        "boss@example.com\r\nBcc: all@example.com",
        '"a@b"@example.com',
    ],
)
def test_a_recipient_address_must_be_one_plain_address(
    client: TestClient, keys: dict[Role, str], address: str
) -> None:
    mail = {"channel": "email", "to": [{"address": address}], "subject": "s", "body": "b"}
    answer = publish(client, keys[Role.ADMIN], {"mail": mail})
    assert answer.status_code == 422
    assert "is not one e-mail address" in answer.text


def test_a_field_holding_several_addresses_and_a_title_with_line_breaks_still_send_one_mail(
    container: Container, settings: Settings, tmp_path: Path
) -> None:
    sink = MailSink(tmp_path / "mail", free_port()).start()
    try:
        mail = {
            "channel": "email",
            "to": [{"field": "email"}, {"address": "desk@example.com"}],
            "subject": "Case {{ case.title }}",
            "body": "X-Caseledger-Notification: ../../escaped\n{{ case.title }}",
        }
        container.case_types.install(document({"mail": mail}), "t", ADMIN)
        case = container.ledger.open_case(
            "egress", "Leak\r\nBcc: all@example.com", {"email": "a@x.com, b@y.com"}, None, CTX
        )
        container.projections.catch_up_from_store(container.reader.head(), 1_000)
        notifier = build_notifier(
            container, settings.model_copy(update={"smtp_url": sink.url, "notify_max_attempts": 1})
        )
        notifier.run_once()
        notifier.close()
    finally:
        sink.stop()
    [(outcome, detail)] = sent_or_failed(container, case.id)
    assert outcome == "NotificationSent"
    assert detail.startswith("mailed to desk@example.com through")
    assert "skipped 'a@x.com, b@y.com', which is not one e-mail address" in detail
    [requested] = [
        e for e in container.ledger.history(case.id) if isinstance(e, Case.NotificationRequested)
    ]
    files = list((tmp_path / "mail").iterdir())
    assert [f.name for f in files] == [f"{requested.notification_id}.eml"]
    received = message_from_bytes(files[0].read_bytes())
    assert received["Subject"] == "Case Leak Bcc: all@example.com"
    assert received["Bcc"] is None and received["To"] == "desk@example.com"
    assert not (tmp_path / "escaped.eml").exists()
