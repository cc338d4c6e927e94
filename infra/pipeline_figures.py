"""Where the pipeline stands, read in one place for ``caseledger status`` and ``GET /metrics``,
which therefore agree: the event store's head, the relay's position and lag, each
projection's position and lag, SLA timers due, notifications waiting, and each connector's
latest run and quarantine.

Every figure but the relay's position (``infra.relay`` reads its own table) is read on one
connection in one read-only transaction, under a statement timeout and the caller's
deadline: a slow or absent database fails the read in time instead of holding the caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.deadline import deadline_in
from services.metrics import PipelineFigures, ProjectionFigures

if TYPE_CHECKING:
    from infra.bootstrap import Container

#: The figures ``caseledger status`` waits for; a scrape waits less (services.metrics).
STATUS_BUDGET_S = 30.0
_RELAY_LAG = "SELECT count(*) AS n FROM {events} WHERE notification_id > %s"
_HEAD = "SELECT COALESCE(max(notification_id), 0) AS head FROM {events}"


def read_pipeline_figures(container: Container, budget_s: float) -> PipelineFigures:
    """The pipeline's figures, read within ``budget_s`` (else the database's error)."""
    with deadline_in(budget_s):
        relay_position = container.relay.position()
        with container.pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute(f"SET LOCAL statement_timeout = {max(1, int(budget_s * 1000))}")
            head = conn.execute(container.reader.sql(_HEAD)).fetchone()
            relay_lag = conn.execute(container.reader.sql(_RELAY_LAG), (relay_position,)).fetchone()
            projections = container.projections.figures(conn)
            work = container.work_queues.work_waiting(conn)
            connectors = container.connectors.figures(conn)
    return PipelineFigures(
        head=int(head["head"]) if head else 0,
        relay_position=relay_position,
        relay_lag=int(relay_lag["n"]) if relay_lag else 0,
        projections={
            name: ProjectionFigures(
                position=p.get("max_position", 0),
                applied_events=p.get("applied_events", 0),
                lag=p["lag"],
                store_watermark=p.get("store_watermark", 0),
                held_cases=p["held_cases"],
            )
            for name, p in projections.items()
        },
        sla_timers=work["sla_timers"],
        sla_due=work["sla_overdue"],
        notifications_waiting=work["notifications_pending"],
        notifications_retrying=work["notifications_retrying"],
        events_set_aside=work["events_set_aside"],
        connectors=connectors,
    )


def status_figures(figures: PipelineFigures) -> dict[str, Any]:
    """The figures in the shape ``caseledger status --json`` prints."""
    return {
        "event_store": {"head_position": figures.head},
        "relay": {"position": figures.relay_position, "lag": figures.relay_lag},
        "projections": {
            name: {
                "applied_events": p.applied_events,
                "max_position": p.position,
                "store_watermark": p.store_watermark,
                "lag": p.lag,
                "held_cases": p.held_cases,
            }
            for name, p in figures.projections.items()
        },
        "work": {
            "sla_overdue": figures.sla_due,
            "sla_timers": figures.sla_timers,
            "notifications_pending": figures.notifications_waiting,
            "notifications_retrying": figures.notifications_retrying,
            "events_set_aside": figures.events_set_aside,
        },
        "connectors": {
            name: {
                "version": c.version,
                "kind": c.kind,
                "last_run": c.last_run,
                "quarantine_waiting": c.quarantine_waiting,
            }
            for name, c in figures.connectors.items()
        },
    }
