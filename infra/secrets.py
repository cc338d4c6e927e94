"""The ``secrets`` table, its one owner: values that notifications name (``secret:``), written
by admins through the API or ``caseledger secrets set``. Values are never listed, logged or
returned to a caller; only the notifier reads one, to send it."""

from __future__ import annotations

from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from services.secret_store import SecretEntry, check_secret, not_found

_SET = """
INSERT INTO secrets (name, value) VALUES (%s, %s)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = now()
"""


class SecretStore:
    """Secrets in PostgreSQL (a :class:`services.secret_store.SecretBook`)."""

    def __init__(self, pool: ConnectionPool[Connection[DictRow]]) -> None:
        self.pool = pool

    def set(self, name: str, value: str) -> None:
        check_secret(name, value)
        with self.pool.connection() as conn:
            conn.execute(_SET, (name, value))

    def delete(self, name: str) -> None:
        with self.pool.connection() as conn:
            if conn.execute("DELETE FROM secrets WHERE name = %s", (name,)).rowcount == 0:
                raise not_found(name)

    def entries(self) -> list[SecretEntry]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT name, created_at, updated_at FROM secrets ORDER BY name"
            ).fetchall()
        return [SecretEntry(r["name"], r["created_at"], r["updated_at"]) for r in rows]

    def exists(self, name: str) -> bool:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT 1 FROM secrets WHERE name = %s", (name,)).fetchone()
        return row is not None

    def value(self, name: str) -> str:
        """The value to send; :class:`services.secret_store.SecretNotFound` when unset."""
        with self.pool.connection() as conn:
            row = conn.execute("SELECT value FROM secrets WHERE name = %s", (name,)).fetchone()
        if row is None:
            raise not_found(name)
        return str(row["value"])
