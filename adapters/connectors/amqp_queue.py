"""AMQP queues: consume another system's RabbitMQ queue (AMQP 0-9-1, with pika).

A batch is the messages received until the queue is quiet for a moment (at most ``limit``,
and at most ``source.prefetch`` unacknowledged at a time). Each body is a JSON object; the
record is that object plus ``_properties`` (message_id, correlation_id, timestamp, type,
app_id, content_type and the publisher's headers), so a mapping may use
``record._properties.message_id`` as the record id. A body that is not a JSON object is
quarantined with its raw text.

``settle`` acknowledges a message only after its command is stored (ingested or duplicate)
and rejects the quarantined and held ones without requeueing them (``basic_nack``), so
RabbitMQ dead-letters them to the queue's ``x-dead-letter-exchange``. The queue belongs to
the other system: caseledger never declares or changes it; it must exist, and it needs that
argument (or a policy setting ``dead-letter-exchange``) for rejected messages to be kept on
the RabbitMQ side too. Their records are kept in caseledger's quarantine either way. When the
connector names ``dead_letter_exchange``, it must exist: a typo is refused when the source
opens.

A failure closes the connection and raises (the runner backs off and opens the source again);
the messages not yet acknowledged are delivered again by RabbitMQ, and are duplicates.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit
from uuid import uuid4

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import ChannelClosedByBroker
from pika.spec import Basic, BasicProperties

from adapters.connectors import OPENERS, Access, Batch
from services.connectors import AmqpSource, Connector
from services.ingestion import RecordOutcome, SourceRecord

STORED = ("ingested", "duplicate")
BROKER_HEADERS = ("x-death", "x-first-death-", "x-last-death-", "x-delivery-count", "x-received")
"""Headers RabbitMQ adds on redelivery or dead-lettering: left out of the record, so a
redelivered message hashes the same and is a duplicate."""


class QueueUnavailable(Exception):
    """The queue or dead-letter exchange a connector names does not exist."""


@dataclass(frozen=True)
class _Message:
    tag: int
    record: SourceRecord


class AmqpQueue:
    """The :class:`~adapters.connectors.Source` of an ``amqp`` connector."""

    def __init__(
        self, source: AmqpSource, access: Access, *, wait: float = 1.0, quiet: float = 0.05
    ) -> None:
        self.source = source
        self.parameters = _parameters(source, access)
        self.wait, self.quiet = wait, quiet  # for a first message; then for a quiet queue
        self.connection: pika.BlockingConnection | None = None
        self.channel: BlockingChannel | None = None
        self.received: list[_Message] = []

    def next_batch(self, limit: int) -> Batch | None:
        try:
            channel = self._channel()
            self._receive(min(limit, self.source.prefetch))
        except Exception:
            self.close()
            raise
        if not self.received:
            return None
        taken, self.received = self.received[:limit], self.received[limit:]

        def settle(outcomes: Sequence[RecordOutcome]) -> None:
            self._settle(channel, taken, outcomes)

        return Batch([m.record for m in taken], f"amqp:{uuid4()}", None, settle)

    def close(self) -> None:
        """Close the connection: RabbitMQ delivers the unacknowledged messages again."""
        connection, self.connection, self.channel, self.received = self.connection, None, None, []
        if connection is not None and connection.is_open:
            with contextlib.suppress(Exception):
                connection.close()

    def _channel(self) -> BlockingChannel:
        if self.channel is not None and self.channel.is_open:
            return self.channel
        self.close()
        self.connection = pika.BlockingConnection(self.parameters)
        channel = self.connection.channel()
        self._check(channel)
        channel.basic_qos(prefetch_count=self.source.prefetch)
        channel.basic_consume(self.source.queue, self._on_message)
        self.channel = channel
        return channel

    def _check(self, channel: BlockingChannel) -> None:
        """Refuse a queue or dead-letter exchange that does not exist, saying which."""
        try:
            channel.queue_declare(self.source.queue, passive=True)
        except ChannelClosedByBroker as error:
            raise QueueUnavailable(
                f"source.queue: RabbitMQ has no queue {self.source.queue!r} ({error.reply_text});"
                " the system that publishes to it declares it: check the name and the virtual "
                "host in source.url"
            ) from None
        if self.source.dead_letter_exchange:
            checked = channel.connection.channel()
            try:
                checked.exchange_declare(self.source.dead_letter_exchange, passive=True)
            except ChannelClosedByBroker as error:
                raise QueueUnavailable(
                    f"source.dead_letter_exchange: RabbitMQ has no exchange "
                    f"{self.source.dead_letter_exchange!r} ({error.reply_text}); declare it, "
                    "and name it as the queue's x-dead-letter-exchange"
                ) from None
            checked.close()

    def _receive(self, cap: int) -> None:
        """Wait up to ``wait`` for a first message, then take more until ``cap`` or a pause."""
        assert self.connection is not None
        deadline = time.monotonic() + self.wait
        while not self.received and (left := deadline - time.monotonic()) > 0:
            self.connection.process_data_events(time_limit=min(left, 0.1))
        while self.received and len(self.received) < cap:
            before = len(self.received)
            self.connection.process_data_events(time_limit=self.quiet)
            if len(self.received) == before:
                break

    def _on_message(
        self,
        channel: BlockingChannel,
        method: Basic.Deliver,
        properties: BasicProperties,
        body: bytes,
    ) -> None:
        tag = int(method.delivery_tag or 0)
        self.received.append(_Message(tag, record_of(self.source.queue, tag, properties, body)))

    def _settle(
        self, channel: BlockingChannel, taken: list[_Message], outcomes: Sequence[RecordOutcome]
    ) -> None:
        current = self.channel
        if current is None or current is not channel or not current.is_open:
            raise ConnectionError(
                "the channel that delivered these messages is closed; RabbitMQ delivers them "
                "again, and they are duplicates then"
            )
        for message, outcome in zip(taken, outcomes, strict=True):
            if outcome.verdict in STORED:
                current.basic_ack(message.tag)
            else:  # dead-lettered by RabbitMQ, kept in caseledger's quarantine
                current.basic_nack(message.tag, requeue=False)


def _parameters(source: AmqpSource, access: Access) -> pika.URLParameters:
    """Where to connect: ``source.url``, with the password named by ``password_secret``
    (the URL then names only the user: ``amqp://claims@rabbit:5672/vhost``)."""
    parts = urlsplit(source.url)
    without_user = parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1])
    parameters = pika.URLParameters(urlunsplit(without_user))
    if parts.username is not None or source.password_secret is not None:
        user = unquote(parts.username or "guest")
        password = unquote(parts.password or "")
        if source.password_secret is not None:
            password = access.secret(source.password_secret)
        parameters.credentials = pika.PlainCredentials(user, password)
    return parameters


def record_of(queue: str, tag: int, properties: BasicProperties, body: bytes) -> SourceRecord:
    """The source record of one message (its JSON object and ``_properties``)."""
    name = properties.message_id or str(tag)
    position = f"amqp:{queue}:{name}"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raw = body.decode("utf-8", "replace")
        problem = (
            f"message {name}: the body is not UTF-8 text ({error.reason} at byte "
            f"{error.start}); publish JSON encoded in UTF-8"
        )
        return SourceRecord(None, position, raw, problem)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        problem = (
            f"message {name}: the body is not JSON ({error.msg} at line {error.lineno} column "
            f"{error.colno}); publish one JSON object per message"
        )
        return SourceRecord(None, position, text, problem)
    if not isinstance(value, dict):
        kind = type(value).__name__.replace("list", "array")
        problem = f"message {name}: the body is a JSON {kind}; publish one JSON object per message"
        return SourceRecord(None, position, text, problem)
    value.setdefault("_properties", _properties(properties))
    return SourceRecord(value, position, text)


def _properties(properties: BasicProperties) -> dict[str, Any]:
    headers = {
        key: _plain(value)
        for key, value in (properties.headers or {}).items()
        if not key.startswith(BROKER_HEADERS)
    }
    return {
        "message_id": properties.message_id,
        "correlation_id": properties.correlation_id,
        "timestamp": properties.timestamp,
        "type": properties.type,
        "app_id": properties.app_id,
        "content_type": properties.content_type,
        "headers": headers,
    }


def _plain(value: Any) -> Any:
    """A header value as JSON has it (AMQP tables also hold bytes, decimals and times)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def open_amqp_source(connector: Connector, position: Any, access: Access) -> AmqpQueue:
    """The queue of ``connector`` (RabbitMQ keeps the position: what is not acknowledged)."""
    return AmqpQueue(connector.source, access)


OPENERS["amqp"] = open_amqp_source
