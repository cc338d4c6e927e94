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
import re
import smtplib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from kafka import KafkaProducer
from kafka.errors import KafkaError
from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, Timeout
from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as HTTPTimeout

from domain.case import Case
from domain.context import CommandContext
from domain.errors import DomainError
from infra.egress import EgressPolicy, EgressRefused, IPAddress, Target
from infra.kafka import ensure_topic, new_producer
from infra.outage import poll_forever
from infra.secrets import SecretStore
from infra.settings import Settings
from services.application import CaseLedger
from services.notification_targets import NOT_AN_ADDRESS, is_single_address

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


@dataclass(frozen=True)
class Delivery:
    """One notification to send: its id, its outbox message, and the case that asked."""

    notification_id: str
    message: Message
    case: Case


class Notifier:
    """Delivers the outbox's notifications and records their outcome on the cases."""

    def __init__(
        self,
        settings: Settings,
        pool: ConnectionPool[Connection[DictRow]],
        ledger: CaseLedger,
        *,
        secrets: SecretStore | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.ledger = ledger
        self.egress = EgressPolicy.from_settings(settings)
        self.secrets = secrets or SecretStore(pool)
        self.role_addresses: dict[str, list[str]] = json.loads(settings.notify_role_addresses)
        self._producer: KafkaProducer | None = None
        self._topics: set[str] = set()
        self.channels: dict[str, Callable[[Delivery], str]] = {
            "email": self.send_email,
            "webhook": self.send_webhook,
            "kafka": self.send_kafka,
        }

    def run(self, stop: threading.Event) -> None:
        poll_forever("notifier", self.run_once, self.settings.notify_poll_s, stop, log)

    def run_once(self, limit: int = 100) -> int:
        """Try up to ``limit`` notifications whose next attempt is due; answers how many were
        sent."""
        sent = 0
        for _ in range(limit):
            row = self._claim()
            if row is None:
                break
            notification_id, message = str(row["notification_id"]), row["message"]
            case = self._awaiting(row["case_id"], notification_id)
            if case is None:
                self._drop(notification_id)  # recorded already (the view lags), or no case
                continue
            try:
                detail = self._send(Delivery(notification_id, message, case))
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

    def _awaiting(self, case_id: UUID, notification_id: str) -> Case | None:
        """The case, when it still waits for this notification's outcome."""
        try:
            case = self.ledger.get_case(case_id)
        except DomainError as problem:
            log.error("notification %s: %s", notification_id, problem.message)
            return None
        return case if case.notifications.get(notification_id) == "requested" else None

    def _send(self, delivery: Delivery) -> str:
        channel = self.channels.get(delivery.message.get("channel", ""))
        if channel is None:
            raise DeliveryError(
                f"unknown channel {delivery.message.get('channel')!r}; channels are "
                f"{', '.join(self.channels)}: correct the notification in its case type"
            )
        return channel(delivery)

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

    def addresses(self, recipients: list[str]) -> tuple[list[str], list[str]]:
        """The e-mail addresses for the recipients (``role:x`` is looked up in the settings),
        and the recipients skipped for not being one plain address each."""
        found: list[str] = []
        for recipient in recipients:
            if recipient.startswith("role:"):
                found += self.role_addresses.get(recipient.removeprefix("role:"), [])
            elif "@" in recipient:
                found.append(recipient)
        unique = list(dict.fromkeys(found))
        return [a for a in unique if is_single_address(a)], [
            a for a in unique if not is_single_address(a)
        ]

    def send_email(self, delivery: Delivery) -> str:
        message = delivery.message
        if not self.settings.smtp_url:
            raise DeliveryError(
                "no mail relay is configured: set CASELEDGER_SMTP_URL (smtp://host:port)"
            )
        to, skipped = self.addresses(message["recipients"])
        skip = "; ".join(f"skipped {address[:80]!r}, which {NOT_AN_ADDRESS}" for address in skipped)
        if not to:
            raise DeliveryError(
                f"no e-mail address among the recipients {message['recipients']}; give roles "
                f"addresses in CASELEDGER_NOTIFY_ROLE_ADDRESSES{'; ' * bool(skip)}{skip}"
            )
        mail = EmailMessage()
        mail["From"] = self.settings.mail_from
        mail["To"] = ", ".join(to)
        mail["Subject"] = _one_line(message.get("subject") or message["notification"])
        mail["Message-ID"] = f"<{delivery.notification_id}@caseledger>"
        mail["X-Caseledger-Notification"] = delivery.notification_id
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
        if refused:
            detail += f"; refused: {_refusals(refused)}"
        return f"{detail}; {skip}" if skip else detail

    def send_webhook(self, delivery: Delivery) -> str:
        """POST the message as JSON to the target the egress policy allows, at the address it
        checked; a redirect is an answer like any other, and only its status is kept."""
        message = delivery.message
        url = str(message.get("target") or "")
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"  # no credentials, path
        fix = (
            f"correct the url of notification {message.get('notification')!r} in a new version "
            f"of case type {message.get('case_type')!r}"
        )
        try:
            target, address = self.egress.resolve(url)
        except EgressRefused as refused:
            raise DeliveryError(f"webhook: {refused}; or {fix}") from None
        except OSError as error:  # the name does not resolve
            raise self._unreachable(origin, fix, error) from error
        headers = {
            "Host": parts.netloc.rpartition("@")[2],
            "Content-Type": "application/json",
            "X-Caseledger-Notification": delivery.notification_id,
        } | self._authorization(delivery)
        payload = json.dumps({"notification_id": delivery.notification_id, **message})
        path = f"{parts.path or '/'}{'?' * bool(parts.query)}{parts.query}"
        try:
            status = _post(target, address, path, headers, payload.encode())
        except NewConnectionError as error:  # a subclass of the timeout below
            raise self._unreachable(origin, fix, error) from error
        except (HTTPTimeout, TimeoutError) as error:
            raise DeliveryError(
                f"webhook: {origin} did not answer within {SEND_TIMEOUT_S} s; check that the "
                f"receiver is up and reachable from the notifier, or {fix}"
            ) from error
        except (HTTPError, OSError) as error:
            raise self._unreachable(origin, fix, error) from error
        if 300 <= status < 400:
            raise DeliveryError(
                f"webhook: {origin} answered {status}; redirects are not followed: {fix} with "
                "the address the receiver redirects to"
            )
        if status >= 400:
            raise DeliveryError(
                f"webhook: {origin} answered {status}; the receiver refused the message: check "
                f"its log, or {fix}"
            )
        return f"webhook {origin} answered {status}"

    def _authorization(self, delivery: Delivery) -> dict[str, str]:
        """The Authorization header from the secret the notification names, if it names one."""
        name = delivery.message.get("notification")
        case = delivery.case
        try:
            definition = self.ledger.definitions.definition(case.case_type, case.case_type_version)
        except DomainError as problem:
            raise DeliveryError(f"webhook: {problem.message}; {problem.hint}") from None
        notification = definition.notifications.get(str(name))
        if notification is None or notification.secret is None:
            return {}
        try:
            return {"Authorization": self.secrets.value(notification.secret)}
        except DomainError:
            raise DeliveryError(
                f"webhook: no secret is called {notification.secret!r}; set it with `caseledger "
                f"secrets set {notification.secret}` (or PUT /secrets/{notification.secret})"
            ) from None

    @staticmethod
    def _unreachable(origin: str, fix: str, error: BaseException) -> DeliveryError:
        return DeliveryError(
            f"webhook: could not deliver to {origin} ({_reason(error)}); check that the "
            f"receiver is up and reachable from the notifier, or {fix}"
        )

    def send_kafka(self, delivery: Delivery) -> str:
        message = delivery.message
        topic = str(message.get("target") or "")
        reserved = self.egress.topic_problem(topic)
        if reserved is not None:
            raise DeliveryError(
                f"kafka: {reserved}, in a new version of case type {message.get('case_type')!r}"
            )
        notification_id = delivery.notification_id
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


def _post(
    target: Target, address: IPAddress, path: str, headers: dict[str, str], body: bytes
) -> int:
    """POST ``body`` to ``address`` (the checked one: no second DNS lookup), never following a
    redirect and never reading the answer's body; answers the status code."""
    tls = {"server_hostname": target.host, "assert_hostname": target.host}
    pool = (
        HTTPSConnectionPool(str(address), target.port, **tls)  # type: ignore[arg-type]
        if target.scheme == "https"
        else HTTPConnectionPool(str(address), target.port)
    )
    with pool:
        answer = pool.urlopen(
            "POST",
            path,
            body=body,
            headers=headers,
            retries=False,
            redirect=False,
            timeout=Timeout(SEND_TIMEOUT_S),
            preload_content=False,
            assert_same_host=False,
        )
        answer.release_conn()
        return int(answer.status)


def _one_line(text: str) -> str:
    """A header value: line breaks and other control characters become one space each run."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()


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
