"""Kafka plumbing: producer and consumer settings, and making sure the topic exists."""

from __future__ import annotations

import logging

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from infra.settings import Settings

log = logging.getLogger(__name__)
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


def ensure_topic(settings: Settings) -> None:
    """Create the case-events topic if the broker does not have it."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_servers, request_timeout_ms=10_000)
    try:
        if settings.kafka_topic in admin.list_topics():
            return
        topic = NewTopic(settings.kafka_topic, settings.kafka_partitions, 1)
        admin.create_topics([topic])
        log.info("created topic %s", settings.kafka_topic)
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def new_producer(settings: Settings) -> KafkaProducer:
    """An idempotent producer: retries keep per-partition order and do not duplicate."""
    return KafkaProducer(
        bootstrap_servers=settings.kafka_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=256 * 1024,
        max_request_size=MAX_MESSAGE_BYTES,
        request_timeout_ms=15_000,
        client_id="caseledger-relay",
    )


def new_consumer(settings: Settings, group: str) -> KafkaConsumer:
    """A consumer in ``group`` that commits only what has been applied."""
    return KafkaConsumer(
        settings.kafka_topic,
        bootstrap_servers=settings.kafka_servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=max(1_000, settings.kafka_session_timeout_ms // 3),
        max_poll_records=settings.projection_batch_size,
        # Tansu does not wake a waiting fetch when data arrives: a short wait keeps the
        # command-to-view latency low (p50 125 ms at the default 500 ms, 27 ms at 100 ms).
        fetch_max_wait_ms=100,
        fetch_max_bytes=MAX_MESSAGE_BYTES * 2,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        client_id=f"caseledger-{group}",
    )


def broker_reachable(settings: Settings) -> tuple[bool, str]:
    """Whether the broker answers a metadata request, with what it said."""
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.kafka_servers, request_timeout_ms=3_000
        )
    except (KafkaError, OSError, RuntimeError) as error:
        return False, f"{type(error).__name__}: {error}"
    try:
        topics = admin.list_topics()
        found = "present" if settings.kafka_topic in topics else "not created yet"
        return True, f"topic {settings.kafka_topic} {found}"
    except (KafkaError, OSError) as error:
        return False, f"{type(error).__name__}: {error}"
    finally:
        admin.close()
