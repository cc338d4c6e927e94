"""API keys: stored as SHA-256 hashes, so the database never holds a usable key.

A key's public id is the first 12 hex digits of its hash (also the actor id of an unlabelled
key). Lookups are cached for :data:`CACHE_SECONDS` only, so a key revoked by any process
stops working on every API process within that time.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from services.auth import KeyHolder, KeyNotFound, Role

# Measured on the shared 2-core test machine, local PostgreSQL, 3,000 lookups of one key: an
# uncached lookup costs ~1.5 ms, a cached one ~0.5 µs. Half a second keeps revocation within
# one second on every process while a busy client still hits the cache on most requests.
CACHE_SECONDS = 0.5
_COLUMNS = "key_hash, role, label, created_at, expires_at, revoked_at"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def development_label(role: Role) -> str:
    """The label of the development key `caseledger up` makes for ``role``; production
    refuses to start while such a key is valid."""
    return f"dev-{role.value}"


def valid_development_keys(store: PostgresKeyStore) -> list[KeyHolder]:
    """The development keys `caseledger up` made that still work (not revoked, not expired)."""
    labels = {development_label(role) for role in Role}
    now = datetime.now(UTC)
    return [k for k in store.list() if k.label in labels and k.refusal(now) is None]


def _holder(row: dict[str, Any]) -> KeyHolder:
    return KeyHolder(
        key_id=row["key_hash"][:12],
        role=Role(row["role"]),
        label=row["label"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


class PostgresKeyStore:
    """Issues, lists and revokes API keys and maps a presented key to its holder."""

    def __init__(self, pool: ConnectionPool[Connection[DictRow]]) -> None:
        self.pool = pool
        self._cache: dict[str, tuple[float, KeyHolder]] = {}

    def create(self, role: Role, label: str = "", expires_in: timedelta | None = None) -> str:
        """A new key for ``role``; it is shown once and only its hash is stored."""
        return self.issue(role, label, expires_in)[0]

    def issue(
        self, role: Role, label: str = "", expires_in: timedelta | None = None
    ) -> tuple[str, KeyHolder]:
        key = f"cl_{role.value}_{secrets.token_urlsafe(24)}"
        with self.pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO api_keys (key_hash, role, label, expires_at)"
                " VALUES (%s, %s, %s, now() + %s) RETURNING " + _COLUMNS,
                (_hash(key), role.value, label, expires_in),
            ).fetchone()
        assert row is not None
        return key, _holder(row)

    def list(self) -> list[KeyHolder]:
        """Every key ever issued, oldest first, revoked and expired ones included."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, key_hash"
            ).fetchall()
        return [_holder(row) for row in rows]

    def revoke(self, key_id: str) -> KeyHolder:
        with self.pool.connection() as conn:
            row = conn.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
                " WHERE left(key_hash, 12) = %s RETURNING " + _COLUMNS,
                (key_id,),
            ).fetchone()
        if row is None:
            raise KeyNotFound(
                f"no API key has id {key_id}",
                hint="list the keys and their ids with GET /keys or `caseledger keys list`",
            )
        self._cache = {k: v for k, v in self._cache.items() if v[1].key_id != key_id}
        return _holder(row)

    def cached_holder(self, key: str) -> KeyHolder | None:
        cached = self._cache.get(key)
        return cached[1] if cached and cached[0] > time.monotonic() else None

    def holder_of(self, key: str) -> KeyHolder | None:
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached and cached[0] > now:
            return cached[1]
        with self.pool.connection() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = %s", (_hash(key),)
            ).fetchone()
        if row is None:
            return None  # not cached: a key created a moment later must work at once
        if len(self._cache) > 10_000:
            self._cache.clear()
        holder = _holder(row)
        self._cache[key] = (now + CACHE_SECONDS, holder)
        return holder
