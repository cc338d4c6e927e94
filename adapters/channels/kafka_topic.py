"""The Kafka topic channel: a notification published as JSON to the topic its case type names.

The record's key and its ``X-Caseledger-Notification`` header are the notification id. Topics
that caseledger keeps for itself are refused (the composition root hands in the egress
policy's check); a topic is created on its first message.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from kafka import KafkaProducer
from kafka.errors import KafkaError

from adapters.channels import SEND_TIMEOUT_S, Channel, Delivery, DeliveryError, reason


class KafkaTopicChannel(Channel):
    """Publishes notifications to Kafka topics.

    ``topic_problem`` says why a topic may not be used (``None`` when it may),
    ``ensure_topic`` creates a topic that does not exist yet, and ``new_producer`` connects a
    producer to the brokers.
    """

    def __init__(
        self,
        *,
        topic_problem: Callable[[str], str | None],
        ensure_topic: Callable[[str], object],
        new_producer: Callable[[], KafkaProducer],
    ) -> None:
        self.topic_problem = topic_problem
        self.ensure_topic = ensure_topic
        self.new_producer = new_producer
        self._producer: KafkaProducer | None = None
        self._topics: set[str] = set()

    def send(self, delivery: Delivery) -> str:
        message = delivery.message
        topic = str(message.get("target") or "")
        reserved = self.topic_problem(topic)
        if reserved is not None:
            raise DeliveryError(
                f"kafka: {reserved}, in a new version of case type {message.get('case_type')!r}"
            )
        notification_id = delivery.notification_id
        payload = json.dumps({"notification_id": notification_id, **message}).encode()
        try:
            if topic not in self._topics:
                self.ensure_topic(topic)
                self._topics.add(topic)
            if self._producer is None:
                self._producer = self.new_producer()
            meta = self._producer.send(
                topic,
                key=notification_id.encode(),
                value=payload,
                headers=[("X-Caseledger-Notification", notification_id.encode())],
            ).get(timeout=SEND_TIMEOUT_S)
        except (KafkaError, OSError) as error:
            self.close()  # a fresh producer after a broker restart (KAFKA_NOTES.md)
            raise DeliveryError(
                f"kafka: could not publish to topic {topic!r} ({reason(error)}); check that the "
                "brokers in KAFKA_BOOTSTRAP_SERVERS run and accept the topic"
            ) from error
        return (
            f"published to Kafka topic {meta.topic} partition {meta.partition} offset {meta.offset}"
        )

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None
