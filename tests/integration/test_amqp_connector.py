"""AMQP queue connectors on the real RabbitMQ and the real event store: a message is
acknowledged only after it is stored (one not settled comes back, and is a duplicate), and a
quarantined one is dead-lettered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel

from adapters.connectors import Access, open_source
from adapters.connectors.amqp_queue import QueueUnavailable
from domain.context import CommandContext
from infra.bootstrap import Container
from services.case_type_document import read_document
from services.connectors import Connector, compile_connector
from tests.integration.helpers import wait_until
from tests.integration.test_ingestion import LEGACY_CLAIM

URL = "amqp://guest@127.0.0.1:5672/%2F"
ACCESS = Access(secret={"rabbit": "guest"}.__getitem__)


@dataclass
class Queues:
    channel: BlockingChannel
    queue: str
    dead_letters: str

    def publish(self, message_id: str, body: bytes | dict[str, Any]) -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        properties = pika.BasicProperties(message_id=message_id, timestamp=1706954400)
        self.channel.basic_publish("", self.queue, data, properties)

    def ready(self, queue: str) -> int:
        return int(self.channel.queue_declare(queue, passive=True).method.message_count)


@pytest.fixture
def queues() -> Iterator[Queues]:
    """A queue of the other system, dead-lettering to an exchange bound to a queue of its own."""
    connection = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672"))
    channel = connection.channel()
    name = f"caseledger-test-{uuid4().hex[:8]}"
    channel.exchange_declare(f"{name}.dlx", "fanout", auto_delete=True)
    channel.queue_declare(f"{name}.dead")
    channel.queue_bind(f"{name}.dead", f"{name}.dlx")
    channel.queue_declare(name, arguments={"x-dead-letter-exchange": f"{name}.dlx"})
    try:
        yield Queues(channel, name, f"{name}.dead")
    finally:
        channel.queue_delete(name)
        channel.queue_delete(f"{name}.dead")
        channel.exchange_delete(f"{name}.dlx")
        connection.close()


@pytest.fixture
def connector(container: Container, queues: Queues) -> Connector:
    document = read_document(LEGACY_CLAIM.encode(), "application/yaml")
    container.case_types.install(document, "test", CommandContext("tester", "admin"))
    source = {"url": URL, "password_secret": "rabbit", "queue": queues.queue, "prefetch": 10}
    document = {
        "name": "claims_queue",
        "kind": "amqp",
        "source": source | {"dead_letter_exchange": f"{queues.queue}.dlx"},
        "mapping": {
            "case_type": "legacy_claim",
            "record_id": "record._properties.message_id",
            "external_id": "record.claim_no",
            "fields": {"claim_no": "record.claim_no"},
            "status": {"from": "record.state", "states": {"O": "open", "A": "approved"}},
            "effective_time": "record._properties.timestamp",
        },
    }
    return compile_connector(document, 1, container.case_types.current)


def test_a_message_is_acknowledged_only_after_it_is_stored(
    container: Container, connector: Connector, queues: Queues
) -> None:
    queues.publish("m-1", {"claim_no": "Q-1", "state": "O"})
    queues.publish("m-2", {"claim_no": "Q-1", "state": "A"})
    source = open_source(connector, None, ACCESS)
    batch = source.next_batch(100)
    assert batch is not None and [r.position for r in batch.records] == [
        f"amqp:{queues.queue}:m-1",
        f"amqp:{queues.queue}:m-2",
    ]
    stored = container.ingestor.ingest(connector, batch.records, batch.batch_id)
    assert [o.verdict for o in stored] == ["ingested", "ingested"]
    source.close()  # the adapter dies after storing, before settling

    source = open_source(connector, None, ACCESS)
    again = source.next_batch(100)  # RabbitMQ delivers both again
    assert again is not None and len(again.records) == 2
    outcomes = container.ingestor.ingest(connector, again.records, again.batch_id)
    assert [o.verdict for o in outcomes] == ["duplicate", "duplicate"]
    again.settle(outcomes)
    assert source.next_batch(100) is None
    source.close()
    assert queues.ready(queues.queue) == 0
    case: Any = container.ledger.get_case(UUID(stored[1].case_id or ""))
    assert case.status == "approved" and case.version == stored[1].version  # no second event
    opened: Any = container.ledger.history(case.id)[0]
    assert opened.context["occurred_at"].startswith("2024-02-03T10:00:00")


def test_a_quarantined_message_is_dead_lettered_and_the_good_ones_acknowledged(
    container: Container, connector: Connector, queues: Queues
) -> None:
    queues.publish("d-1", {"claim_no": "D-1", "state": "O"})
    queues.publish("d-2", b"\xff not json")
    queues.publish("d-3", {"claim_no": "D-3", "state": "lost"})
    source = open_source(connector, None, ACCESS)
    batch = source.next_batch(100)
    assert batch is not None
    outcomes = container.ingestor.ingest(connector, batch.records, batch.batch_id)
    assert [o.verdict for o in outcomes] == ["ingested", "quarantined", "quarantined"]
    batch.settle(outcomes)
    source.close()
    wait_until(lambda: queues.ready(queues.dead_letters) == 2, 5, "two dead letters")
    assert queues.ready(queues.queue) == 0
    waiting = container.quarantine.waiting("claims_queue")
    assert "not UTF-8" in waiting[0]["reason"] and waiting[0]["raw"].endswith("not json")
    assert "'lost' is not mapped to a state" in waiting[1]["reason"]


def test_a_queue_that_does_not_exist_is_named(connector: Connector) -> None:
    source = {"url": URL, "password_secret": "rabbit", "queue": f"nowhere-{uuid4().hex[:8]}"}
    missing = compile_connector({**connector.document, "source": source}, 1)
    with pytest.raises(QueueUnavailable, match="RabbitMQ has no queue 'nowhere-"):
        open_source(missing, None, ACCESS).next_batch(10)
