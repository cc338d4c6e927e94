"""`caseledger audit republish`: a range of the store goes to the topic again exactly as the
relay sent it; live projections skip it; a consumer reading a wiped topic gets it back."""

from __future__ import annotations

from collections import defaultdict
from uuid import uuid4

import pytest
from kafka import KafkaAdminClient
from kafka.consumer.fetcher import ConsumerRecord
from typer.testing import CliRunner

from infra.bootstrap import Container, build_projector
from infra.cli import app
from infra.kafka import partition_for
from infra.settings import Settings
from tests.integration.helpers import open_cases, raw_records, running, wait_until
from tests.integration.test_what_if import end_offsets, table_fingerprints

Published = tuple[bytes, bytes, tuple[tuple[str, bytes], ...]]


def published(records: list[ConsumerRecord]) -> list[Published]:
    return [(r.key, r.value, tuple(r.headers)) for r in records]


def committed(settings: Settings) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_servers)
    try:
        offsets = admin.list_group_offsets(settings.projection_group)
        return {
            tp.partition: meta.offset for tp, meta in offsets[settings.projection_group].items()
        }
    finally:
        admin.close()


def republish(settings: Settings, *options: str) -> str:
    result = CliRunner().invoke(app, ["audit", "republish", *options], env=settings.as_env())
    assert result.exit_code == 0, result.output
    return result.output


#: What a consumer changes besides its read models: where it is, how much it skipped.
BOOKKEEPING = {"public.projection_state"}


def _read_models(container: Container) -> dict[str, str]:
    """Every table but the projections' bookkeeping, as fingerprints of their rows."""
    tables = table_fingerprints(container)
    assert {"public.case_list", "public.status_history"} <= set(tables)
    return {name: rows for name, rows in tables.items() if name not in BOOKKEEPING}


@pytest.mark.slow  # a projection worker joins its group: ~7 s
def test_republishing_a_range_is_harmless_to_the_live_projections(
    container: Container, settings: Settings
) -> None:
    open_cases(container, 4, notes=2)
    head = container.reader.head()
    projector = build_projector(container)
    with running(container.relay.run), running(projector.run):
        wait_until(lambda: container.projections.lag() == 0, 30, "the projections")
        before, relayed = _read_models(container), container.relay.position()
        wait_until(lambda: committed(settings) == end_offsets(settings), 30, "commits")

        output = republish(settings, "--from-position", "3", "--to-position", str(head - 2))
        assert f"republished {head - 4} events" in output
        assert sum(end_offsets(settings).values()) == head + head - 4
        wait_until(lambda: committed(settings) == end_offsets(settings), 30, "the republished")

    assert _read_models(container) == before
    assert container.relay.position() == relayed  # the relay's position did not move


def test_a_fresh_consumer_of_a_wiped_topic_gets_the_events_back_as_the_relay_sent_them(
    container: Container, settings: Settings
) -> None:
    ids = open_cases(container, 5, notes=3)
    head = container.reader.head()
    with running(container.relay.run):
        wait_until(lambda: container.relay.position() >= head, 30, "relay")
    original = published(raw_records(settings, head))

    wiped = settings.model_copy(update={"kafka_topic": f"case-events-{uuid4().hex[:8]}"})
    republish(wiped)  # the whole store, by default
    assert sum(end_offsets(wiped).values()) == head  # each once
    again = raw_records(wiped, head)
    assert sorted(published(again)) == sorted(original)
    # Each case in one partition, the one Kafka's partitioner gives its key, in version order.
    positions: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
    for record in again:
        assert record.partition == partition_for(record.key, 3)
        positions[record.key].append((record.partition, record.offset))
    assert set(positions) == {case_id.encode() for case_id in ids}
    assert all(offsets == sorted(offsets) for offsets in positions.values())


def test_one_case_only_and_its_versions_in_order(container: Container, settings: Settings) -> None:
    ids = open_cases(container, 3, notes=2)
    with running(container.relay.run):
        wait_until(lambda: container.relay.position() >= container.reader.head(), 30, "relay")
    originals = [
        p for p in published(raw_records(settings, container.reader.head()))
        if p[0] == ids[1].encode()
    ]  # fmt: skip

    wiped = settings.model_copy(update={"kafka_topic": f"case-events-{uuid4().hex[:8]}"})
    output = republish(wiped, "--case", ids[1], "--from-position", "5")
    assert "republished 2 events" in output  # its events are at positions 4, 5 and 6
    assert sum(end_offsets(wiped).values()) == 2
    assert published(raw_records(wiped, 2)) == originals[1:]


def test_bad_input_is_refused_with_what_to_do(container: Container, settings: Settings) -> None:
    runner, env = CliRunner(), settings.as_env()
    open_cases(container, 1)
    backwards = runner.invoke(
        app, ["audit", "republish", "--from-position", "5", "--to-position", "2"], env=env
    )
    assert backwards.exit_code == 1
    assert "nothing to republish" in backwards.output
    not_an_id = runner.invoke(app, ["audit", "republish", "--case", "nope"], env=env)
    assert not_an_id.exit_code == 2
    assert "not a case id" in not_an_id.output
