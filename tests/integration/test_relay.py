"""The relay publishes every stored event to Kafka, keyed by case id, in per-case order."""

from __future__ import annotations

import json
import signal
import time
from collections import defaultdict

import jsonschema_rs

from domain.envelope import EventEnvelope, event_id_for
from infra.bootstrap import Container
from infra.kafka import new_producer
from infra.settings import Settings
from services.contract import envelope_json_schema
from tests.integration.helpers import (
    open_cases,
    raw_records,
    read_topic,
    running,
    spawn,
    stop_process,
    wait_until,
)


def versions_per_case(envelopes: list[EventEnvelope]) -> dict[str, list[int]]:
    per_case: dict[str, list[int]] = defaultdict(list)
    for e in envelopes:
        per_case[e.case_id].append(e.case_version)
    return per_case


def test_every_stored_event_reaches_the_topic_as_a_documented_envelope(
    container: Container, settings: Settings
) -> None:
    ids = open_cases(container, 5, notes=3)
    with running(container.relay.run):
        wait_until(lambda: container.relay.position() >= container.reader.head(), 30, "relay")
    envelopes = read_topic(settings, expected=20)
    assert len(envelopes) == 20
    assert set(versions_per_case(envelopes)) == set(ids)
    for versions in versions_per_case(envelopes).values():
        assert versions == [1, 2, 3, 4]
    first = next(e for e in envelopes if e.case_version == 1)
    assert first.type == "CaseOpened"
    assert first.case_type == "generic"
    assert first.case_type_version == 1
    assert first.actor.id == "tester"
    assert first.event_id == event_id_for(first.case_id, 1)
    assert first.data["title"].startswith("case ")
    positions = sorted(e.global_position for e in envelopes)
    assert positions == sorted(set(positions))


def test_published_messages_match_the_documented_json_schema(
    container: Container, settings: Settings
) -> None:
    open_cases(container, 2, notes=1)
    with running(container.relay.run):
        wait_until(lambda: container.relay.position() >= container.reader.head(), 30, "relay")
    raw = [json.loads(record.value) for record in raw_records(settings, 4)]
    validator = jsonschema_rs.validator_for(envelope_json_schema())
    assert len(raw) == 4
    for message in raw:
        validator.validate(message)
    assert not validator.is_valid({**raw[0], "case_version": "one"})


def test_the_message_key_is_the_case_id(container: Container, settings: Settings) -> None:
    open_cases(container, 3, notes=1)
    with running(container.relay.run):
        wait_until(lambda: container.relay.position() >= container.reader.head(), 30, "relay")
    records = raw_records(settings, 6)
    assert len(records) == 6
    for record in records:
        assert record.key.decode() == EventEnvelope.from_json(record.value).case_id


def test_each_case_lands_in_the_partition_kafkas_default_partitioner_picks_for_its_key(
    container: Container, settings: Settings
) -> None:
    """The relay sends partition by partition; a plain producer must agree on the place."""
    open_cases(container, 12, notes=1)
    with running(container.relay.run):
        wait_until(lambda: container.relay.position() >= container.reader.head(), 30, "relay")
    partitions: dict[bytes, set[int]] = defaultdict(set)
    for record in raw_records(settings, 24):
        partitions[record.key].add(record.partition)
    assert len(partitions) == 12
    assert len(set.union(*partitions.values())) > 1  # the cases spread over the partitions
    probe = new_producer(settings)  # kafka-python's own partitioner, nothing given
    try:
        for key, found in partitions.items():
            sent = probe.send(settings.kafka_topic, key=key, value=b"{}").get(timeout=10)
            assert found == {sent.partition}
    finally:
        probe.close()


def test_relay_killed_mid_stream_loses_nothing_and_keeps_per_case_order(
    container: Container, settings: Settings
) -> None:
    ids = open_cases(container, 200, notes=4)  # 1,000 events
    small_batches = settings.model_copy(update={"relay_batch_size": 20})
    relay = spawn("relay", small_batches)
    try:
        wait_until(lambda: container.relay.position() > 0, 60, "the relay to start")
        relay.send_signal(signal.SIGKILL)
        relay.wait(10)
        assert container.relay.position() < container.reader.head(), "killed too late"
        relay = spawn("relay", small_batches)
        wait_until(lambda: container.relay.position() >= container.reader.head(), 60, "relay")
    finally:
        stop_process(relay)
    envelopes = read_topic(settings, expected=1_000, timeout=60)
    per_case = versions_per_case(envelopes)
    assert set(per_case) == set(ids)
    for versions in per_case.values():
        deduplicated = list(dict.fromkeys(versions))
        assert deduplicated == [1, 2, 3, 4, 5], versions  # order kept, even with re-sends


def test_a_second_relay_stands_by_until_the_first_stops(
    container: Container, settings: Settings
) -> None:
    first = spawn("relay", settings)
    second = None
    try:
        open_cases(container, 1)
        wait_until(lambda: container.relay.position() >= container.reader.head(), 60, "relay")
        second = spawn("relay", settings)
        time.sleep(2)
        stop_process(first)
        open_cases(container, 1)
        wait_until(
            lambda: container.relay.position() >= container.reader.head(), 60, "standby relay"
        )
    finally:
        stop_process(first)
        if second:
            stop_process(second)
