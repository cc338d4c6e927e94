"""The composition root: builds every component from one Settings object.

Each builder takes keyword arguments so tests can swap a piece; nothing else in the code
reads the environment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from infra.case_list_store import CaseListStore
from infra.db import eventsourcing_env, migrate, open_pool, redact
from infra.event_store import EventStoreReader
from infra.kafka import BrokerProbe
from infra.keys import PostgresKeyStore
from infra.projector import ProjectionWorker
from infra.relay import Relay
from infra.settings import Settings
from services.api.app import create_app
from services.api.deps import ApiDependencies
from services.application import CaseLedger


@dataclass
class Container:
    """The wired components of one process."""

    settings: Settings
    pool: ConnectionPool[Connection[DictRow]]
    ledger: CaseLedger
    reader: EventStoreReader
    case_list: CaseListStore
    keys: PostgresKeyStore
    relay: Relay
    #: Called on close, for what the builders below add (e.g. the API's broker probe).
    on_close: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in self.on_close:
            close()
        self.relay.close()
        self.ledger.close()
        self.pool.close()


def bootstrap(settings: Settings, name: str = "app") -> Container:
    """Connect to PostgreSQL, create missing tables, and wire the components."""
    pool = open_pool(settings.dsn, settings.db_pool_size, name)
    migrate(pool)
    ledger = CaseLedger(env=eventsourcing_env(settings.dsn, settings.db_pool_size))
    reader = EventStoreReader(ledger)
    return Container(
        settings=settings,
        pool=pool,
        ledger=ledger,
        reader=reader,
        case_list=CaseListStore(pool, reader),
        keys=PostgresKeyStore(pool),
        relay=Relay(settings, pool, reader),
    )


def database_health(pool: ConnectionPool[Connection[DictRow]]) -> dict[str, Any]:
    try:
        with pool.connection(timeout=3) as conn:
            conn.execute("SELECT 1")
        return {"ok": True}
    except Exception as error:  # noqa: BLE001 - any failure means "down", reported as such
        return {"ok": False, "error": f"{type(error).__name__}: {error}"}


def build_api(container: Container) -> FastAPI:
    probe = BrokerProbe(container.settings)
    container.on_close.append(probe.close)

    def health() -> dict[str, Any]:
        ok, detail = probe.check()
        return {
            "database": database_health(container.pool),
            "broker": {"ok": ok, "detail": detail},
        }

    deps = ApiDependencies(
        ledger=container.ledger,
        cases=container.case_list,
        keys=container.keys,
        health=health,
        max_body_bytes=container.settings.max_body_bytes,
    )
    return create_app(deps)


def build_projector(container: Container) -> ProjectionWorker:
    return ProjectionWorker(container.settings, container.case_list, container.relay)


def status_report(container: Container) -> dict[str, Any]:
    """Where the relay and each projection stand, against the event store's head."""
    settings = container.settings
    head = container.reader.head()
    relay_position = container.relay.position()
    with container.pool.connection() as conn:
        row = conn.execute(
            container.reader.sql("SELECT count(*) AS n FROM {events} WHERE notification_id > %s"),
            (relay_position,),
        ).fetchone()
    relay_lag = int(row["n"]) if row else 0
    return {
        "database_url": redact(settings.dsn),
        "kafka": {
            "bootstrap_servers": settings.kafka_bootstrap_servers,
            "topic": settings.kafka_topic,
        },
        "event_store": {"head_position": head},
        "relay": {"position": relay_position, "lag": relay_lag},
        "projections": {
            "case_list": {**container.case_list.state(), "lag": container.case_list.lag()}
        },
    }
