"""The tables of connectors, their one owner: ``connectors`` (every loaded version),
``connector_positions`` (where each polled connector has read up to) and ``connector_runs``
(the reconciliation report of each run)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from psycopg import Connection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from domain.definition import Definition
from services.case_type_checks import Issue
from services.connector_admin import ConnectorNotFound
from services.connectors import Connector, compile_connector, feeding_issues
from services.ingestion import RunReport
from services.metrics import ConnectorFigures

Pool = ConnectionPool[Connection[DictRow]]
_COUNTS = ("seen", "ingested", "duplicates", "quarantined", "replayed")
#: Every connector's current version, its latest run, and what waits in its quarantine.
_LISTING = """
SELECT DISTINCT ON (c.name) c.name, c.version, c.kind, c.loaded_at, c.loaded_by,
       r.started_at AS last_run_at, r.seen, r.ingested, r.duplicates, r.quarantined, r.replayed,
       (SELECT count(*) FROM quarantine q
        WHERE q.connector = c.name AND q.status = 'waiting') AS waiting
FROM connectors c
LEFT JOIN LATERAL (SELECT * FROM connector_runs r WHERE r.connector = c.name
                   ORDER BY started_at DESC LIMIT 1) r ON true
ORDER BY c.name, c.version DESC
"""


class ConnectorStore:
    """Loads, lists and finds connector versions; keeps positions and run reports."""

    def __init__(self, pool: Pool, case_type: Callable[[str], Definition] | None = None) -> None:
        self.pool = pool
        self.case_type = case_type

    # -- versions ------------------------------------------------------------------------

    def load(self, document: dict[str, Any], loaded_by: str) -> tuple[Connector, bool]:
        """Validate ``document`` and store it as the connector's next version, unless it is
        the same as the current one; answers the connector and whether it is new."""
        compile_connector(document, 0, self.case_type)  # every problem, before anything
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (document["name"],))
            row = conn.execute(
                "SELECT version, document FROM connectors WHERE name = %s"
                " ORDER BY version DESC LIMIT 1",
                (document["name"],),
            ).fetchone()
            if row is not None and row["document"] == document:
                return compile_connector(row["document"], row["version"]), False
            version = 1 if row is None else row["version"] + 1
            conn.execute(
                "INSERT INTO connectors (name, version, kind, document, loaded_by)"
                " VALUES (%s, %s, %s, %s, %s)",
                (document["name"], version, document["kind"], Jsonb(document), loaded_by),
            )
        return compile_connector(document, version), True

    def current(self, name: str) -> Connector:
        return self._one(
            "SELECT version, document FROM connectors WHERE name = %s"
            " ORDER BY version DESC LIMIT 1",
            (name,),
            f"no connector is named {name!r}",
        )

    def version(self, name: str, version: int) -> Connector:
        return self._one(
            "SELECT version, document FROM connectors WHERE name = %s AND version = %s",
            (name, version),
            f"connector {name!r} has no version {version}",
        )

    def all_current(self) -> list[Connector]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT ON (name) version, document FROM connectors"
                " ORDER BY name, version DESC"
            ).fetchall()
        return [compile_connector(r["document"], r["version"]) for r in rows]

    def feeding(self, definition: Definition) -> list[Issue]:
        """What ``definition``, a new version of a case type, would break in the connectors
        feeding it (the case-type registry refuses such a version)."""
        return feeding_issues(self.all_current(), definition)

    def _one(self, query: str, params: tuple[Any, ...], missing: str) -> Connector:
        with self.pool.connection() as conn:
            row = conn.execute(query, params).fetchone()
        if row is None:
            raise ConnectorNotFound(missing, hint="list connectors with caseledger connectors list")
        return compile_connector(row["document"], row["version"])

    # -- positions -----------------------------------------------------------------------

    def position(self, connector: str) -> Any:
        """Where ``connector`` has read up to (its source's own form), or None."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT position FROM connector_positions WHERE connector = %s", (connector,)
            ).fetchone()
        return None if row is None else row["position"]

    def save_position(self, connector: str, position: Any) -> None:
        """Advance ``connector``: call only after the records read up to it are stored."""
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO connector_positions (connector, position) VALUES (%s, %s)"
                " ON CONFLICT (connector) DO UPDATE"
                " SET position = EXCLUDED.position, updated_at = now()",
                (connector, Jsonb(position)),
            )

    # -- runs ----------------------------------------------------------------------------

    def save_run(
        self, report: RunReport, *, finished: bool = False, error: str | None = None
    ) -> None:
        """Write the run's counts so far (and that it ended)."""
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO connector_runs (run_id, connector, connector_version, seen,"
                " ingested, duplicates, quarantined, replayed, finished_at, last_error)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, CASE WHEN %s THEN now() END, %s)"
                " ON CONFLICT (run_id) DO UPDATE SET seen = EXCLUDED.seen,"
                " ingested = EXCLUDED.ingested, duplicates = EXCLUDED.duplicates,"
                " quarantined = EXCLUDED.quarantined, replayed = EXCLUDED.replayed,"
                " finished_at = EXCLUDED.finished_at, last_error = EXCLUDED.last_error,"
                " updated_at = now()",
                (
                    report.run_id, report.connector, report.connector_version, report.seen,
                    report.ingested, report.duplicates, report.quarantined, report.replayed,
                    finished, error,
                ),
            )  # fmt: skip

    def count_pushed(self, report: RunReport) -> None:
        """Add the counts of a pushed delivery (a webhook) to its connector's run of the day:
        webhooks have no runs of their own, and this keeps their reconciliation."""
        day = datetime.now(UTC).date().isoformat()
        run_id = uuid5(
            NAMESPACE_URL, f"caseledger:run:{report.connector}:{report.connector_version}:{day}"
        )
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO connector_runs (run_id, connector, connector_version, seen,"
                " ingested, duplicates, quarantined) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (run_id) DO UPDATE SET seen = connector_runs.seen + EXCLUDED.seen,"
                " ingested = connector_runs.ingested + EXCLUDED.ingested,"
                " duplicates = connector_runs.duplicates + EXCLUDED.duplicates,"
                " quarantined = connector_runs.quarantined + EXCLUDED.quarantined,"
                " updated_at = now()",
                (
                    run_id, report.connector, report.connector_version, report.seen,
                    report.ingested, report.duplicates, report.quarantined,
                ),
            )  # fmt: skip

    def runs(self, connector: str, limit: int = 20) -> list[dict[str, Any]]:
        """The latest runs of ``connector``, newest first."""
        with self.pool.connection() as conn:
            return conn.execute(
                "SELECT run_id::text, connector, connector_version, started_at, updated_at,"
                " finished_at, seen, ingested, duplicates, quarantined, replayed, last_error"
                " FROM connector_runs WHERE connector = %s ORDER BY started_at DESC LIMIT %s",
                (connector, limit),
            ).fetchall()

    def figures(self, conn: Connection[DictRow]) -> dict[str, ConnectorFigures]:
        """Each connector's figures for ``caseledger status`` and ``/metrics``, on ``conn``
        (the pipeline's read-only transaction)."""
        return {
            row["name"]: ConnectorFigures(
                version=row["version"],
                kind=row["kind"],
                last_run={k: int(row[k] or 0) for k in _COUNTS},
                quarantine_waiting=int(row["waiting"]),
            )
            for row in conn.execute(_LISTING).fetchall()
        }

    def listing(self) -> list[dict[str, Any]]:
        """Every connector: its current version, kind, when loaded, its latest run."""
        with self.pool.connection() as conn:
            return conn.execute(_LISTING).fetchall()
