"""Kafka topic bridge: another system's topic, read by a consumer group, becomes case history.

Run by the connector runner (``caseledger connectors run NAME``) for a connector of kind
``kafka``; see docs/connectors.md, "Kafka topics".

Guarantees, and how:
- **Offsets are committed only after the batch is stored.** The consumer never commits on its
  own (``enable_auto_commit=False``); a batch's ``settle`` (called by the runner after
  ``Ingestor.ingest`` returned) commits the offset after the last record of each partition in
  the batch. A crash before that re-reads the batch, and the dedup claims make the second
  reading a no-op: duplicates, no second event.
- **Per-key order.** Kafka keeps order within a partition, and a key stays in one partition; a
  batch lists each partition's records in offset order, and the ingestion keeps the order of
  a case's records.
- **A bad message does not stop the others.** A value that is not a JSON object becomes a
  record without data (its raw text and the problem), which the ingestion quarantines; its
  offset is committed with the batch, so the topic keeps flowing.

Why kafka-python and not faust-streaming agents (the issue asks): a faust agent acknowledges
an event when its ``async for`` loop moves past it and faust commits acknowledged offsets on a
timer (``broker_commit_every``/``broker_commit_interval``), so "committed" means "iterated",
not "stored" — to commit after our synchronous, batched store, we would have to defeat its
commit loop and hop into a thread pool for every batch. Its ``exactly_once`` guarantee relies
on Kafka transactions, which fail on the embedded broker (KAFKA_NOTES.md), and the exactly-once
effect already comes from the dedup claims stored with the events. A faust agent also ran at
about 2,000 messages/s here, against ~26,000 for a kafka-python consumer. So: one kafka-python
consumer per connector, polled by the runner, with manual commits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from uuid import uuid4

from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError

from adapters.connectors import OPENERS, Access, Batch
from services.connectors import Connector, KafkaSource
from services.ingestion import RecordOutcome, SourceRecord

POLL_MS = 1_000  # how long next_batch waits for messages before answering "nothing new now"
# Joining a group takes about half the session timeout on the embedded broker, and
# kafka-python 3 defaults to 45 s (KAFKA_NOTES.md); heartbeats run in their own thread, so a
# long ingest does not count against it (max_poll_interval_ms does).
SESSION_TIMEOUT_MS = 6_000
HEARTBEAT_MS = 2_000
MAX_RAW_CHARS = 100_000  # the raw text of an unreadable message kept in the quarantine


def default_group(connector: str) -> str:
    """The consumer group of a connector whose source names none."""
    return f"caseledger-connector-{connector}"


class KafkaTopicSource:
    """A :class:`adapters.connectors.Source` reading one topic in one consumer group."""

    def __init__(self, connector: Connector, access: Access) -> None:
        source: KafkaSource = connector.source
        servers = source.bootstrap_servers or access.kafka_bootstrap_servers
        if not servers:
            raise ValueError(
                f"connector {connector.name!r}: no Kafka bootstrap servers; set "
                "source.bootstrap_servers, or KAFKA_BOOTSTRAP_SERVERS for the shared broker"
            )
        self.topic = source.topic
        self.consumer = KafkaConsumer(
            source.topic,
            bootstrap_servers=servers.split(","),
            group_id=source.group or default_group(connector.name),
            client_id=f"caseledger-connector-{connector.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # a new group reads the topic from its start
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_MS,
        )

    def next_batch(self, limit: int) -> Batch | None:
        """The next messages (at most ``limit``), partition by partition in offset order."""
        polled = self.consumer.poll(timeout_ms=POLL_MS, max_records=limit)
        messages = [m for part in sorted(polled, key=_order) for m in polled[part]]
        if not messages:
            return None
        ends = {TopicPartition(m.topic, m.partition): m.offset + 1 for m in messages}
        return Batch(
            records=[_record(m) for m in messages],
            batch_id=f"kafka:{self.topic}:{uuid4()}",
            settle=lambda outcomes: self._commit(ends, outcomes),
        )

    def _commit(self, ends: dict[TopicPartition, int], outcomes: Sequence[RecordOutcome]) -> None:
        """Commit the batch's offsets: called only once its records are stored."""
        offsets = {tp: OffsetAndMetadata(end, "", -1) for tp, end in ends.items()}
        try:
            self.consumer.commit(offsets)
        except CommitFailedError:
            # The partitions moved to another member meanwhile: it reads the batch again from
            # the last commit, and the dedup claims make that a no-op. Nothing is lost.
            return

    def close(self) -> None:
        """Leave the group without committing: what is not settled is read again."""
        self.consumer.close(autocommit=False)


def _order(part: TopicPartition) -> tuple[str, int]:
    return part.topic, part.partition


def _record(message: ConsumerRecord) -> SourceRecord:
    """A message as a source record; one whose value is not a JSON object carries its raw
    text and the problem instead of data."""
    position = f"{message.topic}/{message.partition}@{message.offset}"
    value: bytes | None = message.value
    if value is None:
        return SourceRecord(None, position, None, "the message has no value (a tombstone)")
    try:
        data: Any = json.loads(value)
    except (UnicodeDecodeError, ValueError) as error:
        raw = value.decode("utf-8", "replace")[:MAX_RAW_CHARS]
        return SourceRecord(None, position, raw, f"the message value is not JSON: {error}")
    if not isinstance(data, dict):
        raw = value.decode("utf-8", "replace")[:MAX_RAW_CHARS]
        kind = type(data).__name__
        return SourceRecord(None, position, raw, f"the message value is JSON {kind}, not an object")
    return SourceRecord(data, position)


def open_topic(connector: Connector, position: Any, access: Access) -> KafkaTopicSource:
    """The runner's opener for kind ``kafka``; ``position`` is unused (Kafka keeps the group's
    committed offsets)."""
    return KafkaTopicSource(connector, access)


OPENERS["kafka"] = open_topic
