"""The notifier: sends the notifications that case-type rules requested, and records on each
case whether it was delivered.

The projection keeps ``notification_outbox`` (one row per requested notification whose outcome
is not recorded yet). The notifier claims one due row at a time (several notifiers may run:
a claimed row is hidden from the others for :data:`CLAIM_S` seconds), sends it through its
channel (e-mail over SMTP, an HTTP webhook, a Kafka topic), records ``NotificationSent`` (or,
after the last attempt, ``NotificationFailed``) on the case and drops the row. A failed attempt
is retried after 2, 4, 8... seconds.

Delivery is at-least-once: a notifier that dies after sending but before recording leaves the
row claimed, and it is sent again once the claim expires, so a crash repeats a message at
most once more. A row whose outcome the case already holds is dropped without sending. Every
message carries the notification id (``Message-ID`` and ``X-Caseledger-Notification`` of an
e-mail, the ``X-Caseledger-Notification`` header and the ``notification_id`` of a webhook's
JSON, the key and a header of a Kafka record) so receivers can drop a repeat.

Run it with ``caseledger notify``.
"""

from __future__ import annotations

import json
import logging
import smtplib
import threading
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import requests
from kafka import KafkaProducer
from kafka.errors import KafkaError
from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from domain.context import CommandContext
from domain.errors import DomainError
from infra.kafka import ensure_topic, new_producer
from infra.settings import Settings
from services.application import CaseLedger

log = logging.getLogger(__name__)
NOTIFIER = CommandContext(actor_id="notifier", actor_role="system")
Message = dict[str, Any]
CLAIM_S = 120  # a claimed row is retried after this long: well over a send's timeouts
SEND_TIMEOUT_S = 10
_CLAIM = """
UPDATE notification_outbox SET next_attempt_at = now() + make_interval(secs => %s)
WHERE notification_id = (
    SELECT notification_id FROM notification_outbox WHERE next_attempt_at <= now()
    ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING notification_id, case_id, message, attempts
"""


class DeliveryError(Exception):
    """A channel could not deliver a message; the text says why and what to do about it."""


class Notifier:
    """Delivers the outbox's notifications and records their outcome on the cases."""

    def __init__(
        self,
        settings: Settings,
        pool: ConnectionPool[Connection[DictRow]],
        ledger: CaseLedger,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.ledger = ledger
        self.role_addresses: dict[str, list[str]] = json.loads(settings.notify_role_addresses)
        self._producer: KafkaProducer | None = None
        self._topics: set[str] = set()
        self.channels: dict[str, Callable[[str, Message], str]] = {
            "email": self.send_email,
            "webhook": self.send_webhook,
            "kafka": self.send_kafka,
        }

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("notifier poll failed; retrying")
            stop.wait(self.settings.notify_poll_s)

    def run_once(self, limit: int = 100) -> int:
        """Try up to ``limit`` notifications whose next attempt is due; answers how many were
        sent."""
        sent = 0
        for _ in range(limit):
            row = self._claim()
            if row is None:
                break
            notification_id, message = str(row["notification_id"]), row["message"]
            if not self._awaited(row["case_id"], notification_id):
                self._drop(notification_id)  # recorded already (the view lags), or no case
                continue
            try:
                detail = self._send(notification_id, message)
            except DeliveryError as error:
                self._failed(row, str(error))
                continue
            except Exception as error:  # a channel's surprise fails this message, not the poll
                log.exception("notification %s: unexpected error", notification_id)
                self._failed(row, f"unexpected error ({type(error).__name__}: {error})")
                continue
            self._record(row["case_id"], notification_id, None, detail)
            sent += 1
        return sent

    def _claim(self) -> dict[str, Any] | None:
        """The next due row, hidden from other notifiers for :data:`CLAIM_S` seconds."""
        with self.pool.connection() as conn:
            return conn.execute(_CLAIM, (CLAIM_S,)).fetchone()

    def _awaited(self, case_id: UUID, notification_id: str) -> bool:
        """Whether the case still waits for this notification's outcome."""
        try:
            case = self.ledger.get_case(case_id)
        except DomainError as problem:
            log.error("notification %s: %s", notification_id, problem.message)
            return False
        return case.notifications.get(notification_id) == "requested"

    def _send(self, notification_id: str, message: Message) -> str:
        channel = self.channels.get(message.get("channel", ""))
        if channel is None:
            raise DeliveryError(
                f"unknown channel {message.get('channel')!r}; channels are "
                f"{', '.join(self.channels)}: correct the notification in its case type"
            )
        return channel(notification_id, message)

    def _failed(self, row: dict[str, Any], error: str) -> None:
        attempts = row["attempts"] + 1
        log.warning(
            "notification %s failed (attempt %d of %d): %s",
            row["notification_id"],
            attempts,
            self.settings.notify_max_attempts,
            error,
        )
        if attempts >= self.settings.notify_max_attempts:
            self._record(row["case_id"], str(row["notification_id"]), error, "")
            return
        with self.pool.connection() as conn:  # back off: 2 s, 4 s, 8 s, ...
            conn.execute(
                "UPDATE notification_outbox SET attempts = %s, last_error = %s,"
                " next_attempt_at = now() + make_interval(secs => %s)"
                " WHERE notification_id = %s",
                (attempts, error[:2000], 2**attempts, row["notification_id"]),
            )

    def _record(self, case_id: UUID, notification_id: str, error: str | None, detail: str) -> None:
        """Record the outcome on the case, then drop the row (the projection would drop it
        too, when it applies the event). If recording fails, the claim expires and the
        message is sent again."""
        try:
            self.ledger.record_delivery(case_id, notification_id, error, detail, NOTIFIER)
        except DomainError as problem:
            log.error("could not record notification %s: %s", notification_id, problem.message)
            return
        self._drop(notification_id)

    def _drop(self, notification_id: str) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "DELETE FROM notification_outbox WHERE notification_id = %s", (notification_id,)
            )

    # -- channels --------------------------------------------------------------------------

    def addresses(self, recipients: list[str]) -> list[str]:
        """E-mail addresses for the recipients; ``role:x`` is looked up in the settings."""
        found: list[str] = []
        for recipient in recipients:
            if recipient.startswith("role:"):
                found += self.role_addresses.get(recipient.removeprefix("role:"), [])
            elif "@" in recipient:
                found.append(recipient)
        return list(dict.fromkeys(found))

    def send_email(self, notification_id: str, message: Message) -> str:
        if not self.settings.smtp_url:
            raise DeliveryError(
                "no mail relay is configured: set CASELEDGER_SMTP_URL (smtp://host:port)"
            )
        to = self.addresses(message["recipients"])
        if not to:
            raise DeliveryError(
                f"no e-mail address among the recipients {message['recipients']}; give roles "
                "addresses in CASELEDGER_NOTIFY_ROLE_ADDRESSES"
            )
        mail = EmailMessage()
        mail["From"] = self.settings.mail_from
        mail["To"] = ", ".join(to)
        mail["Subject"] = message.get("subject") or message["notification"]
        mail["Message-ID"] = f"<{notification_id}@caseledger>"
        mail["X-Caseledger-Notification"] = notification_id
        mail.set_content(message["body"])
        url = urlsplit(self.settings.smtp_url)
        relay = f"{url.hostname or 'localhost'}:{url.port or 25}"
        try:
            with smtplib.SMTP(
                url.hostname or "localhost", url.port or 25, timeout=SEND_TIMEOUT_S
            ) as smtp:
                refused = smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as error:
            raise DeliveryError(
                f"SMTP: the mail relay at {relay} refused every recipient"
                f" ({_refusals(error.recipients)}); correct the addresses (roles' addresses are in"
                " CASELEDGER_NOTIFY_ROLE_ADDRESSES)"
            ) from error
        except smtplib.SMTPException as error:
            raise DeliveryError(
                f"SMTP: the mail relay at {relay} refused the message ({error}); check the"
                " relay's log, and that it accepts mail from CASELEDGER_MAIL_FROM"
            ) from error
        except OSError as error:
            raise DeliveryError(
                f"SMTP: could not reach the mail relay at {relay} ({_reason(error)}); start it, or "
                "point CASELEDGER_SMTP_URL (smtp://host:port) at a running one"
            ) from error
        delivered = [address for address in to if address not in refused]
        detail = f"mailed to {', '.join(delivered)} through {relay}"
        return f"{detail}; refused: {_refusals(refused)}" if refused else detail

    def send_webhook(self, notification_id: str, message: Message) -> str:
        url = str(message.get("target") or "")
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"  # no credentials, path
        fix = (
            f"correct the url of notification {message.get('notification')!r} in a new version "
            f"of case type {message.get('case_type')!r}"
        )
        payload = {"notification_id": notification_id, **message}
        try:
            answer = requests.post(
                url,
                json=payload,
                timeout=SEND_TIMEOUT_S,
                headers={"X-Caseledger-Notification": notification_id},
            )
        except requests.Timeout as error:
            raise DeliveryError(
                f"webhook: {origin} did not answer within {SEND_TIMEOUT_S} s; check that the "
                f"receiver is up and reachable from the notifier, or {fix}"
            ) from error
        except requests.RequestException as error:
            raise DeliveryError(
                f"webhook: could not deliver to {origin} ({_reason(error)}); check that the "
                f"receiver is up and reachable from the notifier, or {fix}"
            ) from error
        if answer.status_code >= 300:
            raise DeliveryError(
                f"webhook: {origin} answered {answer.status_code}: {answer.text[:200]!r}; the "
                f"receiver refused the message: check its log, or {fix}"
            )
        return f"webhook {origin} answered {answer.status_code}"

    def send_kafka(self, notification_id: str, message: Message) -> str:
        topic = str(message.get("target") or "")
        payload = json.dumps({"notification_id": notification_id, **message}).encode()
        try:
            if topic not in self._topics:
                ensure_topic(self.settings.model_copy(update={"kafka_topic": topic}))
                self._topics.add(topic)
            if self._producer is None:
                self._producer = new_producer(self.settings)
            meta = self._producer.send(
                topic,
                key=notification_id.encode(),
                value=payload,
                headers=[("X-Caseledger-Notification", notification_id.encode())],
            ).get(timeout=SEND_TIMEOUT_S)
        except (KafkaError, OSError) as error:
            self.close()  # a fresh producer after a broker restart (KAFKA_NOTES.md)
            raise DeliveryError(
                f"kafka: could not publish to topic {topic!r} ({_reason(error)}); check that the "
                "brokers in KAFKA_BOOTSTRAP_SERVERS run and accept the topic"
            ) from error
        return (
            f"published to Kafka topic {meta.topic} partition {meta.partition} offset {meta.offset}"
        )

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None


def _reason(error: BaseException) -> str:
    """The root cause of ``error`` in a few words (e.g. ``Connection refused``)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    return str(error) or type(error).__name__


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    return ", ".join(
        f"{address}: {code} {text.decode(errors='replace')}"
        for address, (code, text) in refused.items()
    )
