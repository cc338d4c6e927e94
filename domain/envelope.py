"""The event envelope: how a stored case event is published on Kafka (the public contract).

A frozen dataclass of the standard library, so the domain stays free of I/O and third-party
code; ``services.contract`` generates its JSON Schema.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import CanMutateAggregate

SCHEMA_VERSION = 1
_EVENT_NAMESPACE = uuid5(NAMESPACE_URL, "urn:caseledger:event")
_NOT_DATA = {"originator_id", "originator_version", "originator_topic", "timestamp", "context"}


@dataclass(frozen=True)
class Actor:
    """Who caused the event: a user or a system, and the role it acted in."""

    id: str
    role: str


@dataclass(frozen=True)
class SourceLineage:
    """Where an ingested fact came from: the silo and the record's id there."""

    system: str
    record_id: str | None


@dataclass(frozen=True)
class EventEnvelope:
    """One case event as published on the ``case-events`` topic, keyed by ``case_id``.

    ``event_id`` is derived from the case id and version, so a re-published event keeps its
    id; ``global_position`` is the event's place in the store's gap-free commit order;
    ``case_version`` counts the events of one case from 1.
    """

    event_id: str
    type: str
    case_id: str
    case_type: str
    case_type_version: int
    case_version: int
    global_position: int
    occurred_at: datetime
    recorded_at: datetime
    actor: Actor
    correlation_id: str
    causation_id: str | None
    source: SourceLineage | None
    schema_version: int
    data: dict[str, Any]

    def to_json(self) -> bytes:
        body = asdict(self)
        body["occurred_at"] = self.occurred_at.isoformat()
        body["recorded_at"] = self.recorded_at.isoformat()
        return json.dumps(body, separators=(",", ":"), default=str).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> EventEnvelope:
        body = json.loads(raw)
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
    """The stable id of version ``case_version`` of case ``case_id``."""
    return str(uuid5(_EVENT_NAMESPACE, f"{case_id}/{case_version}"))


def envelope_for(event: CanMutateAggregate[UUID], global_position: int) -> EventEnvelope:
    """Wrap a stored domain event of a case in the published envelope."""
    context: dict[str, Any] = dict(getattr(event, "context", {}))
    occurred = context.get("occurred_at")
    source_system = context.get("source_system")
    data = {k: v for k, v in event.__dict__.items() if k not in _NOT_DATA}
    return EventEnvelope(
        event_id=event_id_for(event.originator_id, event.originator_version),
        type=f"Case{type(event).__name__}",
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
        source=SourceLineage(source_system, context.get("source_record_id"))
        if source_system
        else None,
        schema_version=SCHEMA_VERSION,
        data=data,
    )
