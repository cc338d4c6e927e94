"""The notifier: sends the notifications that case-type rules requested, and records on each
case whether it was delivered.

The work-queues projection keeps ``notification_outbox`` (one row per requested notification
whose outcome is not recorded yet); the notifier reads and drops its rows through the
table's owner, ``infra.work_queue_store``. The notifier claims one due row at a time (several
notifiers may run: a claimed row is hidden from the others for :data:`CLAIM_S` seconds), sends
it through the channel its message names (``adapters.channels``: e-mail over SMTP, an HTTP
webhook, a Kafka topic, as the composition root wires them), records ``NotificationSent``
(or, after the last attempt, ``NotificationFailed``) on the case and drops the row. A failed
attempt is retried after 2, 4, 8... seconds (:class:`RetryPolicy`).

Delivery is at-least-once: a notifier that dies after sending but before recording leaves the
row claimed, and it is sent again once the claim expires, so a crash repeats a message at
most once more. A row whose outcome the case already holds is dropped without sending. Every
message carries the notification id so receivers can drop a repeat.

Run it with ``caseledger notify``.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

from adapters.channels import Channel, Delivery, DeliveryError, Message
from domain.case import Case
from domain.context import CommandContext
from domain.errors import DomainError
from infra.outage import poll_forever
from services.application import CaseLedger

log = logging.getLogger(__name__)
NOTIFIER = CommandContext(actor_id="notifier", actor_role="system")
CLAIM_S = 120  # a claimed row is retried after this long: well over a send's timeouts


@dataclass(frozen=True)
class OutboxEntry:
    """A claimed outbox row: the notification, its case, its message, and how many attempts
    failed before."""

    notification_id: str
    case_id: UUID
    message: Message
    attempts: int


class NotificationOutbox(ABC):
    """The notifications waiting to be sent (the ``notification_outbox`` table)."""

    @abstractmethod
    def claim(self, hold_s: float) -> OutboxEntry | None:
        """The next due entry, hidden from other notifiers for ``hold_s`` seconds; ``None``
        when nothing is due."""

    @abstractmethod
    def retry_later(self, notification_id: str, attempts: int, error: str, delay_s: float) -> None:
        """Note a failed attempt, and make the entry due again in ``delay_s`` seconds."""

    @abstractmethod
    def drop(self, notification_id: str) -> None:
        """Forget the entry: its outcome is recorded on the case."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often a notification is tried, and how long the notifier waits between tries:
    2 s after the first failure, then 4 s, 8 s, ..."""

    max_attempts: int

    def delay_s(self, failed_attempts: int) -> float | None:
        """The wait before the next attempt, or ``None`` when the failure is final."""
        if failed_attempts >= self.max_attempts:
            return None
        return float(2**failed_attempts)


class Notifier:
    """Delivers the outbox's notifications through ``channels`` (by channel name) and
    records their outcome on the cases."""

    def __init__(
        self,
        outbox: NotificationOutbox,
        ledger: CaseLedger,
        channels: Mapping[str, Channel],
        *,
        retry: RetryPolicy,
        poll_s: float,
    ) -> None:
        self.outbox = outbox
        self.ledger = ledger
        self.channels = channels
        self.retry = retry
        self.poll_s = poll_s

    def run(self, stop: threading.Event) -> None:
        poll_forever("notifier", self.run_once, self.poll_s, stop, log)

    def run_once(self, limit: int = 100) -> int:
        """Try up to ``limit`` notifications whose next attempt is due; answers how many were
        sent."""
        sent = 0
        for _ in range(limit):
            entry = self.outbox.claim(CLAIM_S)
            if entry is None:
                break
            sent += self._attempt(entry)
        return sent

    def close(self) -> None:
        for channel in self.channels.values():
            channel.close()

    def _attempt(self, entry: OutboxEntry) -> bool:
        """Send one claimed entry and record what happened; answers whether it was sent."""
        case = self._awaiting(entry)
        if case is None:
            self.outbox.drop(entry.notification_id)  # recorded already (the view lags), or no case
            return False
        try:
            detail = self._send(Delivery(entry.notification_id, entry.message, case))
        except DeliveryError as error:
            self._failed(entry, str(error))
            return False
        except Exception as error:  # a channel's surprise fails this message, not the poll
            log.exception("notification %s: unexpected error", entry.notification_id)
            self._failed(entry, f"unexpected error ({type(error).__name__}: {error})")
            return False
        self._record(entry, None, detail)
        return True

    def _awaiting(self, entry: OutboxEntry) -> Case | None:
        """The case, when it still waits for this notification's outcome."""
        try:
            case = self.ledger.get_case(entry.case_id)
        except DomainError as problem:
            log.error("notification %s: %s", entry.notification_id, problem.message)
            return None
        return case if case.notifications.get(entry.notification_id) == "requested" else None

    def _send(self, delivery: Delivery) -> str:
        channel = self.channels.get(delivery.message.get("channel", ""))
        if channel is None:
            raise DeliveryError(
                f"unknown channel {delivery.message.get('channel')!r}; channels are "
                f"{', '.join(self.channels)}: correct the notification in its case type"
            )
        return channel.send(delivery)

    def _failed(self, entry: OutboxEntry, error: str) -> None:
        attempts = entry.attempts + 1
        log.warning(
            "notification %s failed (attempt %d of %d): %s",
            entry.notification_id,
            attempts,
            self.retry.max_attempts,
            error,
        )
        delay_s = self.retry.delay_s(attempts)
        if delay_s is None:
            self._record(entry, error, "")
        else:
            self.outbox.retry_later(entry.notification_id, attempts, error, delay_s)

    def _record(self, entry: OutboxEntry, error: str | None, detail: str) -> None:
        """Record the outcome on the case, then drop the entry (the projection would drop it
        too, when it applies the event). If recording fails, the claim expires and the
        message is sent again."""
        try:
            self.ledger.record_delivery(
                entry.case_id, entry.notification_id, error, detail, NOTIFIER
            )
        except DomainError as problem:
            log.error(
                "could not record notification %s: %s", entry.notification_id, problem.message
            )
            return
        self.outbox.drop(entry.notification_id)
