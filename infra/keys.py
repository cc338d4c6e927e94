"""API keys: stored as SHA-256 hashes, so the database never holds a usable key."""

from __future__ import annotations

import hashlib
import secrets
import time

from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from services.auth import KeyHolder, Role

_CACHE_SECONDS = 30.0


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class PostgresKeyStore:
    """Issues API keys and maps a presented key to its role."""

    def __init__(self, pool: ConnectionPool[Connection[DictRow]]) -> None:
        self.pool = pool
        self._cache: dict[str, tuple[float, KeyHolder]] = {}

    def create(self, role: Role, label: str = "") -> str:
        """A new key for ``role``; it is shown once and only its hash is stored."""
        key = f"cl_{role.value}_{secrets.token_urlsafe(24)}"
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO api_keys (key_hash, role, label) VALUES (%s, %s, %s)",
                (_hash(key), role.value, label),
            )
        return key

    def holder_of(self, key: str) -> KeyHolder | None:
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached and cached[0] > now:
            return cached[1]
        key_hash = _hash(key)
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT role, label FROM api_keys WHERE key_hash = %s", (key_hash,)
            ).fetchone()
        if row is None:
            return None  # not cached: a key created a moment later must work at once
        if len(self._cache) > 10_000:
            self._cache.clear()
        holder = KeyHolder(key_id=key_hash[:12], role=Role(row["role"]), label=row["label"])
        self._cache[key] = (now + _CACHE_SECONDS, holder)
        return holder
