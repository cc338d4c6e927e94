"""The ``idempotency_keys`` table: the one module that writes it.

A stored command's claim is inserted by the event store's writer in the events' transaction
(:func:`insert_claims`); a refusal is recorded after the answer (:meth:`record_refusal`).
Rows older than the retention are ignored and purged.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from psycopg import Connection, Cursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from domain.values import storable
from services.idempotency import Claim, Outcome

CONSTRAINT = "idempotency_keys_pkey"
#: Which of the given (scope, key) pairs are taken: ``unnest`` of two text arrays.
CLAIMED = """
SELECT scope, key FROM idempotency_keys
WHERE (scope, key) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
"""
_PURGE_EVERY_S = 60.0


def insert_claims(curs: Cursor[Any], claims: Sequence[tuple[Claim, Any, int]]) -> None:
    """Record that each claim stored the command that brought its case to its version; a
    unique violation on :data:`CONSTRAINT` means a key was stored first by another."""
    curs.execute(
        "INSERT INTO idempotency_keys (scope, key, request_hash, case_id, version, kept)"
        " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::int[],"
        " %s::bool[])",
        (
            [c.scope for c, _, _ in claims],
            [c.key for c, _, _ in claims],
            [c.request_hash for c, _, _ in claims],
            [str(case_id) for _, case_id, _ in claims],
            [version for _, _, version in claims],
            [c.kept for c, _, _ in claims],
        ),
    )


class PostgresIdempotencyStore:
    """Reads outcomes and records refusals; forgets keys after ``keep_s`` seconds."""

    def __init__(self, pool: ConnectionPool[Connection[DictRow]], keep_s: float) -> None:
        self.pool = pool
        self.keep_s = keep_s
        self._purged_at = 0.0

    def outcome(self, scope: str, key: str) -> Outcome | None:
        self._purge_now_and_then()
        with self.pool.connection() as conn:
            conn.execute(  # an expired key is free again
                "DELETE FROM idempotency_keys WHERE scope = %s AND key = %s"
                " AND created_at <= now() - make_interval(secs => %s) AND NOT kept",
                (scope, key, self.keep_s),
            )
            row = conn.execute(
                "SELECT request_hash, case_id, version, status, body FROM idempotency_keys"
                " WHERE scope = %s AND key = %s",
                (scope, key),
            ).fetchone()
        return Outcome(**row) if row else None

    def claimed(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Outcome]:
        """The stored claims among ``pairs`` of (scope, key), in one query (an ingested
        batch's dedup keys and external ids)."""
        if not pairs:
            return {}
        scopes, keys = zip(*pairs, strict=True)
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT scope, key, request_hash, case_id, version FROM idempotency_keys"
                " WHERE (scope, key) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
                (list(scopes), list(keys)),
            ).fetchall()
        return {
            (r["scope"], r["key"]): Outcome(r["request_hash"], r["case_id"], r["version"])
            for r in rows
        }

    def record_refusal(self, claim: Claim, status: int, body: dict[str, Any]) -> None:
        """Remember the refusal; text jsonb cannot hold (NUL, a lone surrogate) is escaped."""
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO idempotency_keys (scope, key, request_hash, status, body)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (claim.scope, claim.key, claim.request_hash, status, Jsonb(storable(body))),
            )

    def _purge_now_and_then(self) -> None:
        if time.monotonic() - self._purged_at < _PURGE_EVERY_S:
            return
        self._purged_at = time.monotonic()
        with self.pool.connection() as conn:
            conn.execute(
                "DELETE FROM idempotency_keys"
                " WHERE created_at <= now() - make_interval(secs => %s) AND NOT kept",
                (self.keep_s,),
            )
