"""Who issued a command, why, and where the fact came from: carried on every event."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import uuid4


@dataclass(frozen=True)
class CommandContext:
    """The metadata a command carries onto the events it causes.

    ``occurred_at`` is the effective time of the fact in the world (for ingested facts the
    silo's own timestamp); when absent, the recorded time stands for it.
    """

    actor_id: str
    actor_role: str
    correlation_id: str = field(default_factory=lambda: str(uuid4()))
    causation_id: str | None = None
    source_system: str | None = None
    source_record_id: str | None = None
    occurred_at: datetime | None = None
    lineage: Lineage | None = None

    def as_dict(self) -> dict[str, Any]:
        data = {  # by hand: dataclasses.asdict deep-copies, and every command calls this
            "actor_id": self.actor_id,
            "actor_role": self.actor_role,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "source_system": self.source_system,
            "source_record_id": self.source_record_id,
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
        }
        if self.lineage is not None:  # only on ingested facts: other events stay small
            data.update(self.lineage.as_dict())
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CommandContext:
        occurred = data.get("occurred_at")
        return cls(
            actor_id=data["actor_id"],
            actor_role=data["actor_role"],
            correlation_id=data["correlation_id"],
            causation_id=data.get("causation_id"),
            source_system=data.get("source_system"),
            source_record_id=data.get("source_record_id"),
            occurred_at=datetime.fromisoformat(occurred) if occurred else None,
            lineage=Lineage.from_dict(data),
        )


@dataclass(frozen=True)
class Lineage:
    """Where an ingested fact came from, besides its silo and record id: the connector and
    the version of it that mapped the record, the record's position in its source (a row's
    transaction and key, a file and line, a topic offset, a queue delivery), the batch it was
    read in, and when it was read."""

    connector: str
    connector_version: int
    source_position: str | None
    batch_id: str | None
    read_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "connector_version": self.connector_version,
            "source_position": self.source_position,
            "batch_id": self.batch_id,
            "read_at": self.read_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lineage | None:
        if not data.get("connector"):
            return None
        return cls(
            connector=data["connector"],
            connector_version=int(data["connector_version"]),
            source_position=data.get("source_position"),
            batch_id=data.get("batch_id"),
            read_at=datetime.fromisoformat(data["read_at"]),
        )
