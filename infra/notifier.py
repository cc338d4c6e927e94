"""The notifier: sends the notifications that case-type rules requested, and records on each
case whether it was delivered.

The projection keeps ``notification_outbox`` (one row per requested notification not yet
delivered or given up). The notifier sends each row through its channel (e-mail over SMTP, an
HTTP webhook, a Kafka topic), then records ``NotificationSent`` (or, after the last attempt,
``NotificationFailed``) on the case; the projection then removes the row. A crash between
sending and recording sends the message again: delivery is at-least-once, and every message
carries the notification id (``Message-ID``, ``X-Caseledger-Notification``, the Kafka key) so
receivers can drop a repeat. Run it with ``caseledger notify``.
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


class DeliveryError(Exception):
    """A channel could not deliver a message; the text says why."""


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
        """Try every notification whose next attempt is due; answers how many were sent."""
        sent = 0
        for row in self._due(limit):
            notification_id, message = str(row["notification_id"]), row["message"]
            try:
                detail = self.channels[message["channel"]](notification_id, message)
            except (DeliveryError, KeyError) as error:
                self._failed(row, str(error))
                continue
            self._record(row["case_id"], notification_id, None, detail)
            sent += 1
        return sent

    def _due(self, limit: int) -> list[dict[str, Any]]:
        with self.pool.connection() as conn:
            return conn.execute(
                "SELECT notification_id, case_id, message, attempts FROM notification_outbox"
                " WHERE next_attempt_at <= now() ORDER BY next_attempt_at LIMIT %s",
                (limit,),
            ).fetchall()

    def _failed(self, row: dict[str, Any], error: str) -> None:
        attempts = row["attempts"] + 1
        log.warning(
            "notification %s failed (attempt %d): %s", row["notification_id"], attempts, error
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
        try:
            self.ledger.record_delivery(case_id, notification_id, error, detail, NOTIFIER)
        except DomainError as problem:
            log.error("could not record notification %s: %s", notification_id, problem.message)
            return
        with self.pool.connection() as conn:  # don't wait for the projection to drop the row
            conn.execute(
                "UPDATE notification_outbox SET next_attempt_at = now() + interval '1 hour'"
                " WHERE notification_id = %s",
                (notification_id,),
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
        try:
            with smtplib.SMTP(url.hostname or "localhost", url.port or 25, timeout=10) as smtp:
                smtp.send_message(mail)
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryError(f"SMTP: {error}") from error
        return f"mailed to {', '.join(to)}"

    def send_webhook(self, notification_id: str, message: Message) -> str:
        payload = {"notification_id": notification_id, **message}
        try:
            answer = requests.post(
                message["target"],
                json=payload,
                timeout=10,
                headers={"X-Caseledger-Notification": notification_id},
            )
        except requests.RequestException as error:
            raise DeliveryError(f"webhook: {error}") from error
        if answer.status_code >= 300:
            raise DeliveryError(f"webhook answered {answer.status_code}: {answer.text[:200]}")
        return f"webhook answered {answer.status_code}"

    def send_kafka(self, notification_id: str, message: Message) -> str:
        topic = message["target"]
        if topic not in self._topics:
            ensure_topic(self.settings.model_copy(update={"kafka_topic": topic}))
            self._topics.add(topic)
        if self._producer is None:
            self._producer = new_producer(self.settings)
        payload = json.dumps({"notification_id": notification_id, **message}).encode()
        try:
            meta = self._producer.send(
                message["target"], key=notification_id.encode(), value=payload
            ).get(timeout=10)
        except Exception as error:
            self._producer.close()
            self._producer = None
            raise DeliveryError(f"kafka: {error}") from error
        return f"published to {meta.topic} partition {meta.partition} offset {meta.offset}"

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
