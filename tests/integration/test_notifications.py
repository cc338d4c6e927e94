"""Notifications through real channels: an SMTP server, an HTTP webhook receiver and a Kafka
topic on the test broker. Rules request them when cases open; the projection puts them in the
outbox; the notifier (the ``caseledger notify`` process, or ``run_once`` in the test) sends
them and records the outcome on the case, once.

Delivery is at-least-once: a notifier killed after a receiver got a message but before the
case recorded it sends that message once more (with the same notification id, for receivers
to drop), and the case records it as sent once.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

import pytest
from aiosmtpd.controller import Controller
from kafka import KafkaConsumer

from domain.case import Case
from domain.context import CommandContext
from infra.bootstrap import Container, build_notifier, build_projector
from infra.embedded import free_port
from infra.settings import Settings
from tests.integration.helpers import CTX, running, spawn, stop_process, wait_until

ADMIN = CommandContext("tester", "admin")
OnReceipt = Callable[[str], None]
"""Called with a message's notification id when a receiver gets it, before it answers."""


# -- receivers -------------------------------------------------------------------------------


@dataclass
class Inbox:
    """An SMTP server (aiosmtpd) keeping every message it accepts."""

    port: int
    mails: list[tuple[list[str], Message]] = field(default_factory=list)
    on_receipt: OnReceipt | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = message_from_bytes(envelope.content)
        if self.on_receipt is not None:
            self.on_receipt(str(mail["X-Caseledger-Notification"]))
        self.mails.append((list(envelope.rcpt_tos), mail))
        return "250 OK"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    handler = Inbox(free_port())
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    controller.stop()


@dataclass
class Hook:
    """One request a webhook receiver got."""

    path: str
    notification_header: str | None
    payload: dict[str, Any]


@dataclass
class Receiver:
    """An HTTP server taking webhook posts; it answers ``statuses`` in turn, then 204."""

    port: int
    hooks: list[Hook] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    on_receipt: OnReceipt | None = None
    delay_s: float = 0.0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(free_port())
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if state.on_receipt is not None:
                state.on_receipt(str(payload["notification_id"]))
            time.sleep(state.delay_s)
            with lock:
                header = self.headers["X-Caseledger-Notification"]
                state.hooks.append(Hook(self.path, header, payload))
                status = state.statuses.pop(0) if state.statuses else 204
            try:
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"try again later" if status >= 300 else b"")
            except OSError:
                pass  # the notifier was killed while waiting for the answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", state.port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


# -- case types, outcomes, the outbox -----------------------------------------------------------

MAIL = {
    "channel": "email",
    "to": [{"field": "email"}, {"role": "manager"}, {"address": "desk@example.com"}],
    "subject": "Case {{ case.title }} opened",
    "body": "Hello, case {{ case.title }} is {{ case.status }} ({{ case.priority }} priority).",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The receivers listen on 127.0.0.1: IT names it in the webhook allowlist."""
    return settings.model_copy(update={"webhook_allowlist": "127.0.0.1"})


def hook_to(url: str) -> dict[str, Any]:
    return {
        "channel": "webhook",
        "url": url,
        "body": '{"case": "{{ case.id }}", "title": "{{ case.title }}"}',
    }


def install(container: Container, notifications: dict[str, dict[str, Any]]) -> None:
    """A case type whose cases send ``notifications`` when they open."""
    document = {
        "name": "notifying",
        "labels": {"en": "Notifying"},
        "states": {"open": {"initial": True}},
        "fields": {"email": {"type": "text"}},
        "rules": [
            {"name": "tell", "on": ["CaseOpened"], "do": [{"notify": n} for n in notifications]}
        ],
        "notifications": notifications,
    }
    container.case_types.install(document, "notification test", ADMIN)


def open_case(container: Container, title: str) -> UUID:
    return container.ledger.open_case("notifying", title, {"email": "jo@example.com"}, None, CTX).id


def requested(container: Container, case_id: UUID) -> dict[str, Case.NotificationRequested]:
    """The case's requested notifications by name."""
    return {
        e.notification: e
        for e in container.ledger.history(case_id)
        if isinstance(e, Case.NotificationRequested)
    }


def outcomes(container: Container, case_id: UUID) -> dict[str, list[tuple[str, str]]]:
    """Notification id -> the outcomes the case recorded: (Sent, detail) or (Failed, error)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for event in container.ledger.history(case_id):
        if isinstance(event, Case.NotificationSent):
            found.setdefault(event.notification_id, []).append(("Sent", event.detail))
        elif isinstance(event, Case.NotificationFailed):
            found.setdefault(event.notification_id, []).append(("Failed", event.error))
    return found


def sent_count(container: Container, case_id: UUID) -> int:
    return sum(o == "Sent" for each in outcomes(container, case_id).values() for o, _ in each)


def outbox(container: Container) -> dict[str, dict[str, Any]]:
    """notification id -> its outbox row (attempts, last_error, seconds until next attempt)."""
    with container.pool.connection() as conn:
        rows = conn.execute(
            "SELECT notification_id, attempts, last_error,"
            " extract(epoch FROM next_attempt_at - now()) AS wait_s FROM notification_outbox"
        ).fetchall()
    return {str(r["notification_id"]): r for r in rows}


def make_due(container: Container) -> None:
    """Skip the back-off (or an expired claim's wait): every row is due now."""
    with container.pool.connection() as conn:
        conn.execute("UPDATE notification_outbox SET next_attempt_at = now()")


def sync_view(container: Container) -> None:
    container.projections.catch_up_from_store(container.reader.head(), 10_000)


def read_records(settings: Settings, topic: str, expected: int) -> list[Any]:
    """Every record on ``topic`` once ``expected`` arrived (and a last look for more)."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    records: list[Any] = []
    try:
        give_up = time.monotonic() + 30
        while len(records) < expected and time.monotonic() < give_up:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    finally:
        consumer.close()
    return records


# -- delivery through each channel ------------------------------------------------------------


def test_each_channel_delivers_the_rendered_message_and_the_case_records_it_once(
    container: Container, settings: Settings, inbox: Inbox, receiver: Receiver
) -> None:
    topic = f"notices-{settings.kafka_topic}"
    install(
        container,
        {
            "mail": MAIL,
            "hook": hook_to(receiver.url("/hooks/cases")),
            "stream": {"channel": "kafka", "topic": topic, "body": "{{ case.title }} opened"},
        },
    )
    configured = settings.model_copy(
        update={
            "smtp_url": inbox.url,
            "notify_role_addresses": json.dumps({"manager": ["boss@example.com"]}),
            "notify_poll_s": 0.1,
        }
    )
    notifier = spawn("notify", configured)
    try:
        with running(container.relay.run), running(build_projector(container).run):
            first = open_case(container, "Leak in room 12")
            wait_until(lambda: sent_count(container, first) == 3, 60, "three deliveries")
            # a second case: by the time it is delivered, the notifier has polled many times
            # since recording the first, and must not have sent the first case's again
            second = open_case(container, "Broken door")
            wait_until(lambda: sent_count(container, second) == 3, 60, "three more")
            wait_until(lambda: not outbox(container), 30, "the projection to empty the outbox")
    finally:
        stop_process(notifier)

    ids = {name: e.notification_id for name, e in requested(container, first).items()}
    later = {name: e.notification_id for name, e in requested(container, second).items()}
    assert [mail["X-Caseledger-Notification"] for _, mail in inbox.mails] == [
        ids["mail"],
        later["mail"],
    ]
    recipients, mail = inbox.mails[0]
    assert recipients == ["jo@example.com", "boss@example.com", "desk@example.com"]
    assert mail["To"] == "jo@example.com, boss@example.com, desk@example.com"
    assert mail["From"] == configured.mail_from
    assert mail["Subject"] == "Case Leak in room 12 opened"
    assert mail["Message-ID"] == f"<{ids['mail']}@caseledger>"
    assert (
        str(mail.get_payload()).strip() == "Hello, case Leak in room 12 is open (normal priority)."
    )

    assert [hook.notification_header for hook in receiver.hooks] == [ids["hook"], later["hook"]]
    hook = receiver.hooks[0]
    assert hook.path == "/hooks/cases"
    assert hook.payload["notification_id"] == ids["hook"]
    assert (hook.payload["case_type"], hook.payload["notification"]) == ("notifying", "hook")
    assert json.loads(hook.payload["body"]) == {"case": str(first), "title": "Leak in room 12"}

    records = read_records(settings, topic, 2)
    assert sorted(r.key.decode() for r in records) == sorted([ids["stream"], later["stream"]])
    [record] = [r for r in records if r.key.decode() == ids["stream"]]
    assert dict(record.headers) == {"X-Caseledger-Notification": ids["stream"].encode()}
    assert json.loads(record.value)["body"] == "Leak in room 12 opened"

    recorded = outcomes(container, first)
    assert recorded == {
        ids["mail"]: [
            (
                "Sent",
                "mailed to jo@example.com, boss@example.com, desk@example.com"
                f" through 127.0.0.1:{inbox.port}",
            )
        ],
        ids["hook"]: [("Sent", f"webhook http://127.0.0.1:{receiver.port} answered 204")],
        ids["stream"]: [
            (
                "Sent",
                f"published to Kafka topic {topic} partition {record.partition}"
                f" offset {record.offset}",
            )
        ],
    }


# -- failures: retried with back-off, then recorded with a way forward ---------------------------


def test_unreachable_channels_are_retried_then_recorded_as_failed_with_how_to_fix_it(
    container: Container, settings: Settings, receiver: Receiver
) -> None:
    nobody = free_port()  # nothing listens here: neither the mail relay nor the webhook
    receiver.statuses = [503]  # the flaky receiver refuses once, then takes the message
    install(
        container,
        {
            "mail": MAIL,
            "hook": hook_to(f"http://127.0.0.1:{nobody}/hooks"),
            "flaky": hook_to(receiver.url("/flaky")),
        },
    )
    configured = settings.model_copy(
        update={"smtp_url": f"smtp://127.0.0.1:{nobody}", "notify_max_attempts": 3}
    )
    notifier = build_notifier(container, configured)
    case_id = open_case(container, "Leak")
    ids = {name: e.notification_id for name, e in requested(container, case_id).items()}
    sync_view(container)

    assert notifier.run_once() == 0  # attempt 1 of each fails
    rows = outbox(container)
    assert {ids[n]: rows[ids[n]]["attempts"] for n in ids} == {ids[n]: 1 for n in ids}
    assert all(1 < row["wait_s"] <= 2 for row in rows.values())  # back off 2 s
    assert rows[ids["flaky"]]["last_error"].startswith(
        f"webhook: http://127.0.0.1:{receiver.port} answered 503; the receiver refused"
    )
    assert "try again later" not in rows[ids["flaky"]]["last_error"]  # never the answer's body
    assert notifier.run_once() == 0  # nothing is due during the back-off
    assert len(receiver.hooks) == 1
    assert outcomes(container, case_id) == {}

    make_due(container)
    assert notifier.run_once() == 1  # the flaky receiver takes it; the others fail again
    rows = outbox(container)
    assert {n: rows[ids[n]]["attempts"] for n in ("mail", "hook")} == {"mail": 2, "hook": 2}
    assert all(3 < rows[ids[n]]["wait_s"] <= 4 for n in ("mail", "hook"))  # then 4 s
    assert list(outcomes(container, case_id)) == [ids["flaky"]]

    make_due(container)
    assert notifier.run_once() == 0  # the last attempt: recorded as failed
    notifier.close()
    recorded = outcomes(container, case_id)
    assert recorded == {
        ids["flaky"]: [("Sent", f"webhook http://127.0.0.1:{receiver.port} answered 204")],
        ids["mail"]: [
            (
                "Failed",
                f"SMTP: could not reach the mail relay at 127.0.0.1:{nobody} (Connection refused);"
                " start it, or point CASELEDGER_SMTP_URL (smtp://host:port) at a running one",
            )
        ],
        ids["hook"]: [
            (
                "Failed",
                f"webhook: could not deliver to http://127.0.0.1:{nobody} (Connection refused);"
                " check that the receiver is up and reachable from the notifier, or correct"
                " the url of notification 'hook' in a new version of case type 'notifying'",
            )
        ],
    }
    assert outbox(container) == {}
    sync_view(container)  # the projection applies the outcomes: nothing comes back
    assert outbox(container) == {}
    assert notifier.run_once() == 0


# -- crashes and concurrency: at-least-once, each outcome recorded once -------------------------


@dataclass
class KillOnFirstReceipt:
    """Kills the running notifier the first time a receiver gets each message, before the
    receiver answers: the message has arrived, but the notifier cannot record it."""

    notifier: subprocess.Popen[bytes] | None = None
    seen: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, notification_id: str) -> None:
        with self.lock:
            self.seen[notification_id] += 1
            if self.seen[notification_id] == 1 and self.notifier is not None:
                self.notifier.send_signal(signal.SIGKILL)
                self.kills += 1


def test_a_notifier_killed_after_sending_sends_once_more_and_records_once(
    container: Container, settings: Settings, inbox: Inbox, receiver: Receiver
) -> None:
    install(container, {"mail": MAIL, "hook": hook_to(receiver.url("/hooks"))})
    configured = settings.model_copy(update={"smtp_url": inbox.url, "notify_poll_s": 0.1})
    killer = KillOnFirstReceipt()
    inbox.on_receipt = receiver.on_receipt = killer
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with running(container.relay.run), running(build_projector(container).run):
            case_id = open_case(container, "Leak")
            wait_until(lambda: len(outbox(container)) == 2, 30, "the outbox")
            while sent_count(container, case_id) < 2:
                assert len(processes) < 5, "the notifier never delivered both"
                processes.append(spawn("notify", configured))
                killer.notifier = processes[-1]
                wait_until(
                    lambda: processes[-1].poll() is not None or sent_count(container, case_id) == 2,
                    60,
                    "a kill or both deliveries",
                )
                if processes[-1].poll() is not None:
                    claimed = outbox(container)
                    assert any(row["wait_s"] > 60 for row in claimed.values())  # a 2-min claim
                    assert sent_count(container, case_id) < 2  # it died before recording
                    make_due(container)  # as if the claim expired
            wait_until(lambda: not outbox(container), 30, "the projection to empty the outbox")
    finally:
        for process in processes:
            stop_process(process)

    ids = {name: e.notification_id for name, e in requested(container, case_id).items()}
    assert killer.kills == 2
    assert killer.seen == {ids["mail"]: 2, ids["hook"]: 2}  # each arrived twice, same id
    assert [mail["Message-ID"] for _, mail in inbox.mails] == [f"<{ids['mail']}@caseledger>"] * 2
    assert {n: [o for o, _ in outcomes(container, case_id)[ids[n]]] for n in ids} == {
        "mail": ["Sent"],
        "hook": ["Sent"],
    }


def test_two_notifiers_at_once_send_each_message_once(
    container: Container, settings: Settings, receiver: Receiver
) -> None:
    receiver.delay_s = 0.05  # slow answers: the notifiers overlap on the outbox
    install(container, {"hook": hook_to(receiver.url("/hooks"))})
    configured = settings.model_copy(update={"notify_poll_s": 0.02})
    cases = [open_case(container, f"case {i}") for i in range(20)]
    sync_view(container)
    pair = [build_notifier(container, configured) for _ in range(2)]
    with running(pair[0].run), running(pair[1].run):
        wait_until(lambda: all(sent_count(container, c) == 1 for c in cases), 60, "deliveries")
    sent = Counter(hook.notification_header for hook in receiver.hooks)
    assert len(sent) == 20
    assert set(sent.values()) == {1}
    details = {d for c in cases for each in outcomes(container, c).values() for _, d in each}
    assert details == {f"webhook http://127.0.0.1:{receiver.port} answered 204"}
