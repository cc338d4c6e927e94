"""The view follows the event store while the broker is away, and the topic gets the
configured partitions whichever process needs it first (issue 8, items 6 and 8)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from infra.bootstrap import Container, bootstrap, build_projector
from infra.embedded import EmbeddedBroker, free_port
from infra.kafka import ensure_topic, topic_partitions, topic_state
from infra.settings import Settings
from tests.integration.helpers import open_cases, running, store_versions, view_rows, wait_until


@pytest.fixture
def broker_of_its_own(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(free_port(), tmp_path / "broker.log").start()
    yield broker
    broker.stop()


@pytest.fixture
def on_its_broker(settings: Settings, broker_of_its_own: EmbeddedBroker) -> Iterator[Container]:
    moved = settings.model_copy(
        update={
            "kafka_bootstrap_servers": broker_of_its_own.bootstrap,
            "projection_idle_sweep_s": 0.5,
        }
    )
    container = bootstrap(moved, name="broker-outage")
    yield container
    container.close()


def _converged(container: Container) -> bool:
    return {k: v[0] for k, v in view_rows(container).items()} == store_versions(container)


def test_the_view_follows_the_store_while_the_broker_is_away(
    on_its_broker: Container, broker_of_its_own: EmbeddedBroker
) -> None:
    container = on_its_broker
    with running(container.relay.run), running(build_projector(container).run):
        open_cases(container, 3)
        wait_until(lambda: _converged(container), 60, "the view, broker up")
        broker_of_its_own.stop()
        open_cases(container, 4, notes=2)  # stored while no broker answers
        wait_until(lambda: _converged(container), 30, "the view, from the store, broker away")
        broker_of_its_own.start()  # back, and empty: it kept nothing
        open_cases(container, 2, notes=1)
        wait_until(lambda: _converged(container), 60, "the view once the broker is back")
        wait_until(
            lambda: container.relay.position() == container.reader.head(),
            60,
            "the relay to publish everything again",
        )


def test_the_projector_first_creates_the_topic_with_the_configured_partitions(
    container: Container, settings: Settings
) -> None:
    with running(build_projector(container).run):
        wait_until(lambda: _partitions(settings) is not None, 60, "the topic to exist")
    assert _partitions(settings) == settings.kafka_partitions == 3


def test_a_topic_with_fewer_partitions_is_named_in_status_and_logs(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_servers)
    try:
        admin.create_topics([NewTopic(settings.kafka_topic, 1, 1)])
    finally:
        admin.close()
    with caplog.at_level(logging.WARNING, logger="infra.kafka"):
        assert ensure_topic(settings) == 1
    assert "fewer than CASELEDGER_KAFKA_PARTITIONS=3" in caplog.text
    state = topic_state(settings)
    assert (state["partitions"], state["configured"]) == (1, 3)
    assert "at most 1 projection workers" in str(state["warning"])


def _partitions(settings: Settings) -> int | None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_servers)
    try:
        return topic_partitions(admin, settings.kafka_topic)
    finally:
        admin.close()
