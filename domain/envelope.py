"""The event envelope: how a stored case event is published on Kafka (the public contract).

A frozen dataclass of the standard library, so the domain stays free of I/O and third-party
code; ``services.contract`` generates its JSON Schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from hashlib import sha1
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import CanMutateAggregate

from domain.event_names import event_data, event_type

SCHEMA_VERSION = 1
_EVENT_NAMESPACE = uuid5(NAMESPACE_URL, "urn:caseledger:event")
_NAMESPACE_BYTES = _EVENT_NAMESPACE.bytes


@dataclass(frozen=True)
class Actor:
    """Who caused the event: a user or a system, and the role it acted in."""

    __pydantic_config__ = {"use_attribute_docstrings": True}  # noqa: RUF012

    id: str
    """The actor's id: a user name, or the label of the API key it used."""
    role: str
    """admin, manager, handler, integrator or auditor."""


@dataclass(frozen=True)
class SourceLineage:
    """Where an ingested fact came from: the silo and the record's id there."""

    __pydantic_config__ = {"use_attribute_docstrings": True}  # noqa: RUF012

    system: str
    """The silo's name."""
    record_id: str | None
    """The record's id in that silo."""
    connector: str | None = None
    """The connector that ingested it (absent for facts sent over HTTP with a source)."""
    connector_version: int | None = None
    """The version of that connector whose mapping made this event."""
    position: str | None = None
    """Where the record was read: a row's transaction and key, a file and line, an offset."""
    batch_id: str | None = None
    """The batch (poll, file, request) the record was read in."""
    read_at: str | None = None
    """When the connector read the record (ISO 8601)."""


@dataclass(frozen=True)
class EventEnvelope:
    """One case event as published on the ``case-events`` topic, keyed by ``case_id``.

    ``event_id`` is derived from the case id and version, so a re-published event keeps its
    id; ``global_position`` is the event's place in the store's gap-free commit order;
    ``case_version`` counts the events of one case from 1.
    """

    # Field docstrings become descriptions in the generated JSON Schema (a plain dict here,
    # so the domain does not import pydantic).
    __pydantic_config__ = {"use_attribute_docstrings": True}  # noqa: RUF012

    event_id: str
    """Stable id of this event (UUIDv5 of case id and version): use it to deduplicate."""
    type: str
    """What happened: CaseOpened, CaseAssigned, CaseStatusChanged, CaseNoteAdded, ..."""
    case_id: str
    """The case (UUID); also the Kafka message key."""
    case_type: str
    """The case type the case runs under."""
    case_type_version: int
    """The version of that case type the case was pinned to when this happened."""
    case_version: int
    """The case's version after this event: 1 for CaseOpened, then +1 per event."""
    global_position: int
    """Position in the event store's commit order (increasing, not necessarily dense)."""
    occurred_at: datetime
    """When it happened in the world (a silo's own time for ingested facts)."""
    recorded_at: datetime
    """When caseledger recorded it."""
    actor: Actor
    """Who caused it, and in which role."""
    correlation_id: str
    """Shared by every event caused by one request or workflow."""
    causation_id: str | None
    """The id of the event or message that caused this one, if any."""
    source: SourceLineage | None
    """For facts ingested from a legacy silo: which silo and which record."""
    schema_version: int
    """Version of this envelope's layout; bumped on any breaking change."""
    data: dict[str, Any]
    """The event's own attributes; their names depend on ``type``."""

    def to_json(self) -> bytes:
        body = {f.name: getattr(self, f.name) for f in fields(self)}  # asdict deep-copies
        body["actor"] = {"id": self.actor.id, "role": self.actor.role}
        if self.source is not None:
            body["source"] = {f.name: getattr(self.source, f.name) for f in fields(self.source)}
        body["occurred_at"] = self.occurred_at.isoformat()
        body["recorded_at"] = self.recorded_at.isoformat()
        return json.dumps(body, separators=(",", ":"), default=str, allow_nan=False).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> EventEnvelope:
        return cls.from_body(json.loads(raw))

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> EventEnvelope:
        """The envelope of a parsed JSON message (a faster parser may have read it)."""
        source = body.get("source")
        return cls(
            event_id=body["event_id"],
            type=body["type"],
            case_id=body["case_id"],
            case_type=body["case_type"],
            case_type_version=body["case_type_version"],
            case_version=body["case_version"],
            global_position=body["global_position"],
            occurred_at=datetime.fromisoformat(body["occurred_at"]),
            recorded_at=datetime.fromisoformat(body["recorded_at"]),
            actor=Actor(**body["actor"]),
            correlation_id=body["correlation_id"],
            causation_id=body.get("causation_id"),
            source=SourceLineage(**source) if source else None,
            schema_version=body["schema_version"],
            data=body["data"],
        )


def event_id_for(case_id: UUID | str, case_version: int) -> str:
    """The stable id of version ``case_version`` of case ``case_id``: the UUIDv5 (RFC 9562)
    of that name in caseledger's namespace, as ``uuid.uuid5`` makes it, three times faster
    (the relay makes one per event)."""
    name = _NAMESPACE_BYTES + f"{case_id}/{case_version}".encode()
    digest = bytearray(sha1(name, usedforsecurity=False).digest())
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    hexed = digest[:16].hex()
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


def envelope_body(event: CanMutateAggregate[UUID], global_position: int) -> dict[str, Any]:
    """The envelope of a stored case event as the JSON object ``to_json`` writes for
    ``envelope_for(event, global_position)``: the relay encodes it straight away."""
    context: dict[str, Any] = getattr(event, "context", None) or {}
    case_id = str(event.originator_id)
    recorded = event.timestamp.isoformat()
    occurred = context.get("occurred_at")
    source_system = context.get("source_system")
    return {
        "event_id": event_id_for(case_id, event.originator_version),
        "type": event_type(type(event)),
        "case_id": case_id,
        "case_type": context.get("case_type", ""),
        "case_type_version": int(context.get("case_type_version", 0)),
        "case_version": event.originator_version,
        "global_position": global_position,
        "occurred_at": datetime.fromisoformat(occurred).isoformat() if occurred else recorded,
        "recorded_at": recorded,
        "actor": {"id": context.get("actor_id", "unknown"), "role": context.get("actor_role", "")},
        "correlation_id": context.get("correlation_id", ""),
        "causation_id": context.get("causation_id"),
        "source": source_of(context) if source_system else None,
        "schema_version": SCHEMA_VERSION,
        "data": event_data(event),
    }


def envelope_for(event: CanMutateAggregate[UUID], global_position: int) -> EventEnvelope:
    """Wrap a stored domain event of a case in the published envelope."""
    context: dict[str, Any] = dict(getattr(event, "context", {}))
    occurred = context.get("occurred_at")
    source_system = context.get("source_system")
    return EventEnvelope(
        event_id=event_id_for(event.originator_id, event.originator_version),
        type=event_type(type(event)),
        case_id=str(event.originator_id),
        case_type=context.get("case_type", ""),
        case_type_version=int(context.get("case_type_version", 0)),
        case_version=event.originator_version,
        global_position=global_position,
        occurred_at=datetime.fromisoformat(occurred) if occurred else event.timestamp,
        recorded_at=event.timestamp,
        actor=Actor(id=context.get("actor_id", "unknown"), role=context.get("actor_role", "")),
        correlation_id=context.get("correlation_id", ""),
        causation_id=context.get("causation_id"),
        source=SourceLineage(**source_of(context)) if source_system else None,
        schema_version=SCHEMA_VERSION,
        data=event_data(event),
    )


def source_of(context: dict[str, Any]) -> dict[str, Any]:
    """The ``source`` of an ingested fact's envelope, from its event's context."""
    return {
        "system": context["source_system"],
        "record_id": context.get("source_record_id"),
        "connector": context.get("connector"),
        "connector_version": context.get("connector_version"),
        "position": context.get("source_position"),
        "batch_id": context.get("batch_id"),
        "read_at": context.get("read_at"),
    }
