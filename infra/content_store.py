"""The ``content_store`` table: documents and attachments, by the hash of their content.

It is the only writer of that table. A document is written once (its reference is the hash of
its bytes) and never changed, so it needs no version check; nothing deletes it yet.
"""

from __future__ import annotations

from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from services.content import StoredContent, content_ref

_INSERT = """
INSERT INTO content_store (ref, media_type, size, content, uploaded_by)
VALUES (%s, %s, %s, %s, %s) ON CONFLICT (ref) DO NOTHING
"""
_DESCRIBE = "SELECT ref, media_type, size, uploaded_by, uploaded_at FROM content_store"


class PostgresContentStore:
    """Keeps documents in PostgreSQL, one row per distinct content."""

    def __init__(self, pool: ConnectionPool[Connection[DictRow]]) -> None:
        self.pool = pool

    def put(self, content: bytes, media_type: str, uploaded_by: str) -> tuple[StoredContent, bool]:
        ref = content_ref(content)
        with self.pool.connection() as conn:
            new = conn.execute(
                _INSERT, (ref, media_type, len(content), content, uploaded_by)
            ).rowcount
            row = conn.execute(_DESCRIBE + " WHERE ref = %s", (ref,)).fetchone()
        assert row is not None
        return StoredContent(**row), new > 0

    def get(self, ref: str) -> tuple[StoredContent, bytes] | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT ref, media_type, size, uploaded_by, uploaded_at, content"
                " FROM content_store WHERE ref = %s",
                (ref,),
            ).fetchone()
        if row is None:
            return None
        content = bytes(row.pop("content"))
        return StoredContent(**row), content
