"""The ``quarantine`` table, its one owner: source records set aside by the ingestion (they
failed mapping or validation, or wait behind such a record of the same case), with their
reason, raw content and lineage, until they are replayed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import Connection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from services.ingestion import QuarantineEntry
from services.mapping import content_hash

_COLUMNS = (
    "id, connector, connector_version, record_id, external_id, record, raw, reason, held,"
    " position, batch_id, run_id::text, status, quarantined_at, replayed_at"
)


def _hash(entry: QuarantineEntry) -> str:
    """What makes two entries the same record read twice (a re-poll, a redelivery): one
    waiting entry per connector, position and content."""
    return content_hash({"record": entry.record, "raw": entry.raw})


class QuarantineStore:
    """Adds (once per record and position while it waits), lists and settles quarantined
    records."""

    def __init__(self, pool: ConnectionPool[Connection[DictRow]]) -> None:
        self.pool = pool

    def add(self, entries: Sequence[QuarantineEntry]) -> list[int]:
        if not entries:
            return []
        with self.pool.connection() as conn, conn.cursor() as curs:
            curs.executemany(
                "INSERT INTO quarantine (connector, connector_version, record_id, external_id,"
                " record, raw, reason, held, position, batch_id, run_id, record_hash)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (connector, coalesce(position, ''), record_hash)"
                " WHERE status = 'waiting' DO NOTHING RETURNING id",
                [
                    (
                        e.connector, e.connector_version, e.record_id, e.external_id,
                        Jsonb(dict(e.record)) if e.record is not None else None, e.raw,
                        e.reason, e.held, e.position, e.batch_id, e.run_id, _hash(e),
                    )
                    for e in entries
                ],
                returning=True,
            )  # fmt: skip
            ids = []
            while True:
                row = curs.fetchone()
                if row is not None:
                    ids.append(row["id"])
                if not curs.nextset():
                    break
        return ids

    def blocked(self, connector: str) -> set[str]:
        """The external ids of ``connector`` that have a record waiting in the quarantine:
        later records of those cases wait behind it."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT external_id FROM quarantine"
                " WHERE connector = %s AND status = 'waiting' AND external_id IS NOT NULL",
                (connector,),
            ).fetchall()
        return {row["external_id"] for row in rows}

    def waiting(
        self, connector: str | None = None, ids: Sequence[int] | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Records waiting for a replay, oldest first (of one connector, or with ``ids``)."""
        where: list[str] = ["status = 'waiting'"]
        params: list[Any] = []
        if connector is not None:
            where.append("connector = %s")
            params.append(connector)
        if ids is not None:
            where.append("id = ANY(%s)")
            params.append(list(ids))
        with self.pool.connection() as conn:
            return conn.execute(
                f"SELECT {_COLUMNS} FROM quarantine WHERE {' AND '.join(where)}"
                " ORDER BY id LIMIT %s",
                (*params, limit),
            ).fetchall()

    def get(self, entry_id: int) -> dict[str, Any] | None:
        with self.pool.connection() as conn:
            return conn.execute(
                f"SELECT {_COLUMNS} FROM quarantine WHERE id = %s",
                (entry_id,),
            ).fetchone()

    def settle(self, entry_ids: Sequence[int]) -> None:
        """Mark entries replayed (their records were ingested again, or are held again as
        new entries)."""
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE quarantine SET status = 'replayed', replayed_at = now()"
                " WHERE id = ANY(%s) AND status = 'waiting'",
                (list(entry_ids),),
            )

    def still_waiting(self, reasons: Sequence[tuple[int, str, bool]]) -> None:
        """Entries a replay could not ingest: they keep waiting, with the new reason (and
        whether they now only wait behind another)."""
        if not reasons:
            return
        with self.pool.connection() as conn, conn.cursor() as curs:
            curs.executemany(
                "UPDATE quarantine SET reason = %s, held = %s WHERE id = %s AND status = 'waiting'",
                [(reason, held, entry_id) for entry_id, reason, held in reasons],
            )
