"""The Kafka topic bridge on the real broker: messages become cases, offsets are committed only
after the batch is stored, a bad message is quarantined and the others flow on."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from uuid import UUID, uuid4

import pytest
from kafka import KafkaProducer

from adapters.connectors import Access, Batch, open_source
from infra.bootstrap import Container
from infra.embedded import EmbeddedBroker
from services.connectors import Connector, compile_connector
from services.ingestion import RecordOutcome
from tests.conftest import stored_event_count


def connector_for(container: Container, topic: str) -> Connector:
    document: dict[str, Any] = {
        "name": f"orders_{uuid4().hex[:8]}",
        "kind": "kafka",
        "system": "orders",
        "source": {"topic": topic},
        "mapping": {
            "case_type": "generic",
            "record_id": "record.order_id",
            "title": '"Order " + record.order_id',
            "fields": {"amount": {"from": "record.amount", "as": "number"}},
        },
    }
    connector, _ = container.connectors.load(document, "test")
    return compile_connector(connector.document, connector.version, container.case_types.current)


def produce(broker: EmbeddedBroker, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    try:
        for value in values:
            producer.send(topic, key=value[:12], value=value)
        producer.flush()
    finally:
        producer.close()


def order(order_id: str, amount: float = 10.0) -> bytes:
    return json.dumps({"order_id": order_id, "amount": amount}).encode()


def read(source: Any, expected: int, timeout: float = 30) -> list[Batch]:
    """Batches until ``expected`` records were read (the group join takes a few seconds)."""
    batches: list[Batch] = []
    deadline = time.monotonic() + timeout
    while sum(len(b.records) for b in batches) < expected:
        assert time.monotonic() < deadline, f"read {len(batches)} batches, fewer than {expected}"
        batch = source.next_batch(500)
        if batch is not None:
            batches.append(batch)
    return batches


def ingest(
    container: Container, connector: Connector, batches: list[Batch], *, settle: bool = True
) -> list[RecordOutcome]:
    """Store each batch, then settle it (as the runner does), unless this is a crash."""
    outcomes = []
    for batch in batches:
        stored = container.ingestor.ingest(connector, batch.records, batch.batch_id)
        if settle:
            batch.settle(stored)
        outcomes += stored
    return outcomes


@pytest.fixture
def topic() -> str:
    return f"orders-{uuid4().hex[:8]}"


def test_messages_become_cases_and_a_bad_one_is_quarantined(
    container: Container, broker: EmbeddedBroker, topic: str
) -> None:
    connector = connector_for(container, topic)
    produce(broker, topic, [order("O-1"), b"{not json", order("O-2", 20.5), b"[1, 2]"])
    source = open_source(connector, None, Access(str, broker.bootstrap))
    try:
        outcomes = ingest(container, connector, read(source, 4))
    finally:
        source.close()
    verdicts = sorted(o.verdict for o in outcomes)
    assert verdicts == ["ingested", "ingested", "quarantined", "quarantined"]
    cases = [container.ledger.get_case(UUID(o.case_id)) for o in outcomes if o.case_id]
    assert sorted(c.fields["amount"] for c in cases) == [10.0, 20.5]
    waiting = container.quarantine.waiting(connector.name)
    assert sorted(w["raw"] for w in waiting) == ["[1, 2]", "{not json"]
    position = re.compile(rf"{topic}/\d+@\d+")
    assert all(position.fullmatch(w["position"]) for w in waiting)
    opened: Any = container.ledger.history(cases[0].id)[0]
    assert position.fullmatch(opened.context["source_position"])


@pytest.mark.slow  # two group joins: ~8 s
def test_a_batch_read_but_not_settled_is_read_again_and_makes_no_second_event(
    container: Container, broker: EmbeddedBroker, topic: str
) -> None:
    connector = connector_for(container, topic)
    produce(broker, topic, [order(f"O-{n}") for n in range(5)])
    access = Access(str, broker.bootstrap)
    crashed = open_source(connector, None, access)
    try:
        first = ingest(container, connector, read(crashed, 5), settle=False)
    finally:
        crashed.close()  # the crash: stored, never settled, so nothing was committed
    assert [o.verdict for o in first] == ["ingested"] * 5
    events = stored_event_count(container)

    again = open_source(connector, None, access)
    try:
        second = ingest(container, connector, read(again, 5))
    finally:
        again.close()
    assert [o.verdict for o in second] == ["duplicate"] * 5
    assert stored_event_count(container) == events

    produce(broker, topic, [order("O-5")])  # settled: a third consumer reads only the new one
    third = open_source(connector, None, access)
    try:
        assert [r.data for b in read(third, 1) for r in b.records] == [
            {"order_id": "O-5", "amount": 10.0}
        ]
    finally:
        third.close()
