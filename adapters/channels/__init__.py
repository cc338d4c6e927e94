"""Outbound notification channels: the ways a case's notification leaves caseledger.

Each channel (:mod:`adapters.channels.email`, :mod:`adapters.channels.webhook`,
:mod:`adapters.channels.kafka_topic`) implements :class:`Channel`: it sends one
:class:`Delivery` and answers what happened in a few words, or raises :class:`DeliveryError`
whose text says what is wrong and what to set or correct. The notifier (``infra.notifier``)
picks the channel by the message's ``channel`` name, retries and records the outcome; the
composition root (``infra.bootstrap``) builds the channels from the settings.

Every message carries its notification id, so that a receiver can drop a repeat.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from domain.case import Case

Message = dict[str, Any]
#: The longest one connection, send or acknowledgement may take before it counts as a failure.
SEND_TIMEOUT_S = 10


class DeliveryError(Exception):
    """A channel could not deliver a message; the text says why and what to do about it."""


@dataclass(frozen=True)
class Delivery:
    """One notification to send: its id, its outbox message, and the case that asked."""

    notification_id: str
    message: Message
    case: Case


class Channel(ABC):
    """One way out for notifications (e-mail, webhook, Kafka topic)."""

    @abstractmethod
    def send(self, delivery: Delivery) -> str:
        """Deliver the message; answers what was done (it is recorded on the case), or raises
        :class:`DeliveryError` saying what to fix."""

    def close(self) -> None:  # noqa: B027 (a channel without connections has nothing to do)
        """Release the channel's connections; it opens new ones if it sends again."""


def reason(error: BaseException) -> str:
    """The root cause of ``error`` in a few words (e.g. ``Connection refused``)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    return str(error) or type(error).__name__
