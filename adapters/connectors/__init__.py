"""Inbound connectors: each reads one kind of legacy silo and hands its records, in batches,
to the ingestion (``services.ingestion``). The runner (``infra.connector_runner``) drives them:

    source = open_source(connector, position, access)   # position: where it had read up to
    while running:
        batch = source.next_batch(limit)                # None: nothing new now
        outcomes = ingestor.ingest(connector, batch.records, batch.batch_id, report)
        batch.settle(outcomes)                          # ack, commit offsets, archive files
        store.save_position(connector.name, batch.position)   # when not None
    source.close()

Nothing is acknowledged, committed or advanced before ``ingest`` returns: a crash in between
reads the batch again, and the dedup claims make the second reading a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.connectors import Connector
from services.ingestion import RecordOutcome, SourceRecord


def _nothing(outcomes: Sequence[RecordOutcome]) -> None:
    """Settle a batch that needs no acknowledgement."""


@dataclass
class Batch:
    """Records read together, and how to settle them once they are stored."""

    records: list[SourceRecord]
    batch_id: str
    position: Any = None
    """Where the source has read up to after this batch (JSON), saved once it is stored;
    None when the source keeps its own position (Kafka offsets, AMQP acknowledgements)."""
    settle: Callable[[Sequence[RecordOutcome]], None] = field(default=_nothing)
    """Called with one outcome per record after they are stored: acknowledge, commit,
    archive, dead-letter the quarantined ones."""


class Source(Protocol):
    """One connector's way into its silo."""

    def next_batch(self, limit: int) -> Batch | None:
        """The next records (at most ``limit``), or None when there is nothing new now."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Access:
    """What a source may need from caseledger to reach its silo: secrets by name, and the
    broker it shares by default."""

    secret: Callable[[str], str]
    kafka_bootstrap_servers: str = ""


Opener = Callable[[Connector, Any, Access], Source]
OPENERS: dict[str, Opener] = {}
"""The source of each polled or consumed kind, registered by its module below."""


def open_source(connector: Connector, position: Any, access: Access) -> Source:
    """The source of ``connector``, resuming at ``position`` (its last saved one, or None)."""
    if connector.kind not in OPENERS:  # one kind's module may be imported already
        _register()
    opener = OPENERS.get(connector.kind)
    if opener is None:
        raise ValueError(
            f"connector {connector.name!r} is of kind {connector.kind}, which is not read by a "
            "runner (webhooks are pushed to POST /connectors/{name}/webhook)"
        )
    return opener(connector, position, access)


def _register() -> None:
    """Import the kinds' modules, each of which adds itself to :data:`OPENERS`."""
    import importlib  # noqa: PLC0415 - drivers are loaded only when a connector runs

    for module in ("sql", "files", "kafka_topic", "amqp_queue"):
        try:
            importlib.import_module(f"adapters.connectors.{module}")
        except ModuleNotFoundError as error:
            if error.name != f"adapters.connectors.{module}":
                raise
