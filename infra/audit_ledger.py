"""Tamper evidence in the event store: the hash chain, the dense leaf index, signed checkpoints.

Owner of the ``audit_leaf`` and ``audit_hash`` columns of the event tables, of the trigger
that fills them, and of the ``audit_checkpoints``, ``audit_heads`` and ``audit_heads_size``
tables (docs/audit.md, "Tamper evidence").

- At store time a ``BEFORE INSERT FOR EACH ROW`` trigger gives every event its dense
  0-based place in the log (``audit_leaf``: max + 1, race-free because writers hold the
  table's EXCLUSIVE lock, and a unique index refuses any path that does not) and its chain
  hash (``audit_hash``: SHA-256 of the previous version's hash and the event's content,
  ``domain.evidence.event_hash``). Python never writes them.
- A checkpoint signs the Merkle root (RFC 9162) of the first ``size`` leaves with the
  Ed25519 key of ``infra.audit_keys``. Each stores its frontier (the compact range of its
  leaves), so the next one hashes only the leaves added since. Each is published to the
  ``audit-checkpoints`` topic, so that copies outside the database witness it; one whose
  publication failed is published by the next attempt (``published_at`` stays null until
  the broker acknowledged it).

``caseledger audit checkpoint`` makes one on demand; ``caseledger audit-checkpoints`` (a
worker of ``caseledger up``) makes one every CASELEDGER_AUDIT_CHECKPOINT_INTERVAL_S when the
log grew.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composed, Identifier
from psycopg_pool import ConnectionPool

from domain.evidence import Frontier, checkpoint_message, head_leaf, leaf_hash
from infra.audit_keys import SigningKey, signing_key
from infra.kafka import SEND_TIMEOUT_S, ensure_topic, new_producer
from infra.settings import Settings

log = logging.getLogger(__name__)

#: The trigger's name on every event table it guards.
TRIGGER = "audit_chain"
#: Serialises checkpoints of one log between processes, and a bundle's read of its case heads
#: (with the log's name as second key).
CHECKPOINT_LOCK = 7_110_012

_CHECKPOINTS_TABLE = """
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    id           bigserial PRIMARY KEY,
    log          text NOT NULL,
    size         bigint NOT NULL,
    position     bigint NOT NULL,
    root         text NOT NULL,
    signed_at    text NOT NULL,
    key_id       text NOT NULL,
    signature    text NOT NULL,
    frontier     bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    UNIQUE (log, size)
);
CREATE INDEX IF NOT EXISTS audit_checkpoints_unpublished ON audit_checkpoints (id)
    WHERE published_at IS NULL;
CREATE TABLE IF NOT EXISTS audit_heads (
    log      text NOT NULL,
    case_id  uuid NOT NULL,
    version  bigint NOT NULL,
    hash     bytea NOT NULL,
    PRIMARY KEY (log, case_id)
);
CREATE TABLE IF NOT EXISTS audit_heads_size (
    log  text PRIMARY KEY,
    size bigint NOT NULL
);
"""

# Checkpoints made before they had case heads lack the columns. Added only when missing: an
# ALTER TABLE waits for every transaction on the table, even with IF NOT EXISTS, and every
# process runs install() when it starts.
_HEADS_COLUMNS = "ALTER TABLE audit_checkpoints ADD COLUMN heads text, ADD COLUMN cases bigint"
_HAS_HEADS = (
    "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
    " AND table_name = 'audit_checkpoints' AND column_name = 'heads'"
)

# The chain, as the spec writes it (docs/audit.md). A function per table, so that its
# queries name the table and PL/pgSQL keeps their plans.
_FUNCTION = """
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prev bytea;
    topic_bytes bytea;
BEGIN
    SELECT coalesce(max(audit_leaf) + 1, 0) INTO NEW.audit_leaf FROM {table};
    IF NEW.originator_version > 1 THEN
        SELECT audit_hash INTO prev FROM {table}
        WHERE originator_id = NEW.originator_id
          AND originator_version = NEW.originator_version - 1;
    END IF;
    topic_bytes := convert_to(NEW.topic, 'UTF8');
    NEW.audit_hash := sha256(
        coalesce(prev, '\\x{zero}'::bytea) || uuid_send(NEW.originator_id)
        || int8send(NEW.originator_version::bigint)
        || int4send(octet_length(topic_bytes)) || topic_bytes || NEW.state);
    RETURN NEW;
END $$
"""
_COLUMNS = """
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS audit_leaf bigint;
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS audit_hash bytea
"""
# One pass over an older store, in notification order: each event's leaf, and its hash
# from the previous version's (already computed: versions are stored in order).
_BACKFILL = """
DO $$
DECLARE
    r record;
    prev bytea;
    leaf bigint := 0;
    topic_bytes bytea;
BEGIN
    FOR r IN SELECT notification_id, originator_id, originator_version, topic, state
             FROM {table} ORDER BY notification_id LOOP
        prev := NULL;
        IF r.originator_version > 1 THEN
            SELECT audit_hash INTO prev FROM {table}
            WHERE originator_id = r.originator_id AND originator_version = r.originator_version - 1;
        END IF;
        topic_bytes := convert_to(r.topic, 'UTF8');
        UPDATE {table} SET audit_leaf = leaf, audit_hash = sha256(
            coalesce(prev, '\\x{zero}'::bytea) || uuid_send(r.originator_id)
            || int8send(r.originator_version::bigint)
            || int4send(octet_length(topic_bytes)) || topic_bytes || r.state)
        WHERE notification_id = r.notification_id;
        leaf := leaf + 1;
    END LOOP;
END $$
"""
_CONSTRAIN = """
ALTER TABLE {table} ALTER COLUMN audit_leaf SET NOT NULL;
ALTER TABLE {table} ALTER COLUMN audit_hash SET NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {table} (audit_leaf) INCLUDE (notification_id);
CREATE TRIGGER {trigger} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {function}()
"""


def _names(table: str) -> dict[str, Any]:
    return {
        "table": Identifier("public", table),
        "function": Identifier("public", f"{table}_audit_chain"),
        "index": Identifier(f"{table}_audit_leaf"),
        "trigger": Identifier(TRIGGER),
        "zero": SQL("0" * 64),
    }


def _sql(template: str, table: str) -> Composed:
    return SQL(template).format(**_names(table))


def install(pool: ConnectionPool[Connection[DictRow]], tables: Iterable[str]) -> None:
    """Make the checkpoints table, and chain each events table in ``tables`` (idempotent:
    a table that has its trigger is left alone). A store written before this has its rows
    backfilled once, under the table's EXCLUSIVE lock. Call it under ``infra.db.schema_lock``."""
    with pool.connection() as conn:
        conn.execute(_CHECKPOINTS_TABLE)
        if conn.execute(_HAS_HEADS).fetchone() is None:
            conn.execute(_HEADS_COLUMNS)
        for table in tables:
            if not _guarded(conn, table):
                _guard(conn, table)


def _guarded(conn: Connection[DictRow], table: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_trigger WHERE tgname = %s AND tgrelid = %s::regclass",
        (TRIGGER, f"public.{table}"),
    ).fetchone()
    return row is not None


def _guard(conn: Connection[DictRow], table: str) -> None:
    with conn.transaction():
        conn.execute(_sql("LOCK TABLE {table} IN EXCLUSIVE MODE", table))
        conn.execute(_sql(_COLUMNS, table))
        conn.execute(_sql(_FUNCTION, table))
        missing = conn.execute(
            _sql("SELECT count(*) AS n FROM {table} WHERE audit_hash IS NULL", table)
        ).fetchone()
        if missing and missing["n"]:
            log.info("backfilling the audit chain of %s: %d events", table, missing["n"])
            conn.execute(_sql("UPDATE {table} SET audit_leaf = NULL, audit_hash = NULL", table))
            conn.execute(_sql(_BACKFILL, table))
        conn.execute(_sql(_CONSTRAIN, table))


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement of the log's Merkle root at ``size`` leaves (docs/audit.md)."""

    log: str
    size: int
    position: int
    root: str
    signed_at: str
    key_id: str
    signature: str
    id: int | None = None
    published: bool = False
    #: The root of the tree of case heads (hex) and how many cases it holds; None for a
    #: checkpoint signed before checkpoints had them.
    heads: str | None = None
    cases: int | None = None

    def statement(self) -> dict[str, Any]:
        """The signed fields."""
        fields: dict[str, Any] = {
            "log": self.log,
            "size": self.size,
            "position": self.position,
            "root": self.root,
            "signed_at": self.signed_at,
            "key_id": self.key_id,
        }
        if self.heads is not None:
            fields["heads"], fields["cases"] = self.heads, self.cases
        return fields

    def as_json(self) -> dict[str, Any]:
        """What the topic and the evidence bundles carry: the signed fields and the signature."""
        return {**self.statement(), "signature": self.signature}


_LEAVES = """
SELECT audit_leaf, notification_id, audit_hash FROM {table}
WHERE audit_leaf >= %s ORDER BY audit_leaf
"""
_CHECKPOINT_COLUMNS = (
    "id, log, size, position, root, signed_at, key_id, signature, published_at, heads, cases"
)
# Each case's newest event among the leaves [start, end): what a checkpoint brings its table
# of case heads to (one row per case of the log).
_HEADS_UPSERT = """
INSERT INTO audit_heads (log, case_id, version, hash)
SELECT DISTINCT ON (originator_id) %s, originator_id, originator_version, audit_hash
FROM {table} WHERE audit_leaf >= %s AND audit_leaf < %s
ORDER BY originator_id, originator_version DESC
ON CONFLICT (log, case_id) DO UPDATE SET version = EXCLUDED.version, hash = EXCLUDED.hash
"""


class LogGap(Exception):
    """The log is not dense where a checkpoint would cover it: someone deleted or moved
    events. Nothing is signed; ``caseledger audit verify`` says what."""


def sign(
    key: SigningKey,
    log_name: str,
    size: int,
    position: int,
    root: bytes,
    heads: tuple[bytes, int] | None = None,
) -> Checkpoint:
    """A checkpoint of ``root`` at ``size`` leaves, and of ``heads`` (the root of the tree of
    case heads, and how many cases), signed now with ``key``."""
    made = Checkpoint(
        log_name,
        size,
        position,
        root.hex(),
        datetime.now(UTC).isoformat(),
        key.key_id,
        "",
        heads=None if heads is None else heads[0].hex(),
        cases=None if heads is None else heads[1],
    )
    return replace(made, signature=key.sign(message_of(made)).hex())


def message_of(checkpoint: Checkpoint) -> bytes:
    """The bytes its signature covers."""
    c = checkpoint
    return checkpoint_message(
        c.log, c.size, c.position, c.root, c.signed_at, c.key_id, c.heads, c.cases
    )


def head_leaves(rows: Iterable[tuple[bytes, int, bytes]]) -> Iterator[bytes]:
    """The leaves of a tree of case heads from (16 UUID bytes, version, hash) in case order."""
    for case_id, version, event_hash in rows:
        yield head_leaf(bytes(case_id), version, bytes(event_hash))


def tree_root(leaves: Iterable[bytes]) -> tuple[bytes, int]:
    """The Merkle root of ``leaves`` and how many there are, holding O(log n) hashes."""
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root(), frontier.size


def checkpoint_from_row(row: DictRow) -> Checkpoint:
    return Checkpoint(
        log=row["log"],
        size=row["size"],
        position=row["position"],
        root=row["root"],
        signed_at=row["signed_at"],
        key_id=row["key_id"],
        signature=row["signature"],
        id=row["id"],
        published=row["published_at"] is not None,
        heads=row["heads"],
        cases=row["cases"],
    )


def stored_checkpoints(conn: Connection[DictRow]) -> list[Checkpoint]:
    """Every checkpoint in ``audit_checkpoints``, by log, then size."""
    rows = conn.execute(
        f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY log, size, id"
    ).fetchall()
    return [checkpoint_from_row(r) for r in rows]


class CheckpointStore:
    """Makes, keeps and lists the signed checkpoints of the event logs ``tables``."""

    def __init__(
        self, pool: ConnectionPool[Connection[DictRow]], tables: list[str], settings: Settings
    ) -> None:
        self.pool = pool
        #: The event logs, the case ledger's first.
        self.tables = tables
        self.settings = settings

    @cached_property
    def key(self) -> SigningKey:
        """The signing key, read (or made) on first use."""
        return signing_key(self.settings)

    def checkpoint(self, table: str, *, force: bool = False) -> Checkpoint | None:
        """Sign the log's current root, reading only the leaves added since the last
        checkpoint; None when the log did not grow since (unless ``force`` and it is empty).
        Raises :class:`LogGap` when the log is not dense."""
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (CHECKPOINT_LOCK, table))
            last = conn.execute(
                "SELECT size, position, frontier FROM audit_checkpoints WHERE log = %s"
                " ORDER BY size DESC LIMIT 1",
                (table,),
            ).fetchone()
            frontier = _frontier(last)
            position = last["position"] if last else 0
            for leaf, notification_id, event_hash in self._leaves(conn, table, frontier.size):
                if leaf != frontier.size:
                    raise LogGap(
                        f"{table}: leaf {frontier.size} is missing (the next is {leaf}); "
                        "nothing was signed: run `caseledger audit verify`"
                    )
                if notification_id <= position:
                    raise LogGap(
                        f"{table}: leaf {leaf} is at position {notification_id}, not after "
                        f"position {position}: an event was inserted or moved; nothing was "
                        "signed: run `caseledger audit verify`"
                    )
                frontier.append(leaf_hash(notification_id, event_hash))
                position = notification_id
            if last is not None and frontier.size == last["size"]:
                return None
            if last is None and frontier.size == 0 and not force:
                return None
            heads = self._heads(conn, table, frontier.size)
            made = sign(self.key, table, frontier.size, position, frontier.root(), heads)
            row = conn.execute(
                "INSERT INTO audit_checkpoints (log, size, position, root, signed_at, key_id,"
                " signature, frontier, heads, cases)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    made.log,
                    made.size,
                    made.position,
                    made.root,
                    made.signed_at,
                    made.key_id,
                    made.signature,
                    b"".join(bytes.fromhex(h) for h in frontier.to_list()),
                    made.heads,
                    made.cases,
                ),
            ).fetchone()
        assert row is not None
        return Checkpoint(**{**made.__dict__, "id": row["id"]})

    def _heads(self, conn: Connection[DictRow], table: str, size: int) -> tuple[bytes, int]:
        """Bring the log's table of case heads to ``size`` leaves (from the size it was at,
        reading only the leaves added since; from scratch the first time), and answer the
        root of their tree and how many cases it holds. Under the checkpoint's lock."""
        row = conn.execute("SELECT size FROM audit_heads_size WHERE log = %s", (table,)).fetchone()
        start = row["size"] if row is not None and row["size"] <= size else None
        if start is None:  # never built, or ahead of the log (a restored backup): rebuild
            conn.execute("DELETE FROM audit_heads WHERE log = %s", (table,))
            start = 0
        conn.execute(_sql(_HEADS_UPSERT, table), (table, start, size))
        conn.execute(
            "INSERT INTO audit_heads_size (log, size) VALUES (%s, %s)"
            " ON CONFLICT (log) DO UPDATE SET size = EXCLUDED.size",
            (table, size),
        )
        return tree_root(head_leaves(self.head_rows(conn, table)))

    def head_of(self, conn: Connection[DictRow], table: str, case_id: UUID) -> DictRow | None:
        """The case's head in the log's table of case heads, its ``index`` in case order and
        the ``size`` the table is at (None when the case has no head there)."""
        return conn.execute(
            "SELECT (SELECT count(*) FROM audit_heads WHERE log = %(log)s"
            " AND case_id < %(case)s) AS index, h.version, h.hash, s.size"
            " FROM audit_heads h JOIN audit_heads_size s ON s.log = h.log"
            " WHERE h.log = %(log)s AND h.case_id = %(case)s",
            {"log": table, "case": case_id},
        ).fetchone()

    def head_rows(
        self, conn: Connection[DictRow], table: str
    ) -> Iterator[tuple[bytes, int, bytes]]:
        """The log's case heads in case order: (16 UUID bytes, version, hash)."""
        with conn.cursor(name=f"audit_heads_{table}", row_factory=tuple_row, binary=True) as cursor:
            cursor.itersize = 20_000
            cursor.execute(
                "SELECT uuid_send(case_id), version, hash FROM audit_heads WHERE log = %s"
                " ORDER BY case_id",
                (table,),
            )
            yield from cursor

    def _leaves(
        self, conn: Connection[DictRow], table: str, start: int
    ) -> Iterator[tuple[int, int, bytes]]:
        with conn.cursor(name=f"audit_leaves_{table}", row_factory=tuple_row) as cursor:
            cursor.itersize = 10_000
            cursor.execute(_sql(_LEAVES, table), (start,))
            for leaf, notification_id, event_hash in cursor:
                yield leaf, notification_id, bytes(event_hash)

    def checkpoint_all(self) -> list[Checkpoint]:
        """A checkpoint of every log that grew since its last one."""
        return [made for table in self.tables if (made := self.checkpoint(table)) is not None]

    def latest(self, table: str, conn: Connection[DictRow] | None = None) -> Checkpoint | None:
        """The log's newest checkpoint (read on ``conn`` when given)."""
        if conn is None:
            with self.pool.connection() as own:
                return self.latest(table, own)
        row = conn.execute(
            f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE log = %s"
            " ORDER BY size DESC LIMIT 1",
            (table,),
        ).fetchone()
        return checkpoint_from_row(row) if row else None

    def listing(self, log_name: str | None = None, limit: int = 100) -> list[Checkpoint]:
        """The newest checkpoints first, of one log or of all."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints"
                " WHERE %(log)s::text IS NULL OR log = %(log)s ORDER BY id DESC LIMIT %(limit)s",
                {"log": log_name, "limit": limit},
            ).fetchall()
        return [checkpoint_from_row(r) for r in rows]

    def unpublished(self) -> list[Checkpoint]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints"
                " WHERE published_at IS NULL ORDER BY id"
            ).fetchall()
        return [checkpoint_from_row(r) for r in rows]

    def mark_published(self, ids: list[int]) -> None:
        if ids:
            with self.pool.connection() as conn:
                conn.execute(
                    "UPDATE audit_checkpoints SET published_at = now() WHERE id = ANY(%s)", (ids,)
                )

    def publish_pending(self) -> int:
        """Publish every checkpoint not yet acknowledged by the broker, oldest first, on the
        audit topic (key: the log's name); answers how many. Raises the broker's error when
        it fails: those stay pending for the next call."""
        pending = self.unpublished()
        if not pending:
            return 0
        ensure_audit_topic(self.settings)
        producer = new_producer(self.settings)
        try:
            sent = [
                producer.send(
                    self.settings.audit_topic, key=c.log.encode(), value=checkpoint_json(c)
                )
                for c in pending
            ]
            producer.flush(timeout=SEND_TIMEOUT_S)
            deadline = time.monotonic() + SEND_TIMEOUT_S
            done = []
            try:
                for checkpoint, answer in zip(pending, sent, strict=True):
                    answer.get(timeout=max(deadline - time.monotonic(), 0.001))
                    assert checkpoint.id is not None
                    done.append(checkpoint.id)
            finally:
                self.mark_published(done)
        finally:
            producer.close(timeout=2)
        return len(done)

    def checkpoint_and_publish(self) -> list[Checkpoint]:
        """What the checkpointer does at each turn: sign every log that grew, then publish
        what is pending (this turn's and any an earlier turn could not publish)."""
        made = self.checkpoint_all()
        self.publish_pending()
        return made


def ensure_audit_topic(settings: Settings) -> None:
    """Create the audit topic (one partition: checkpoints in the order they were made) if
    the broker does not have it, as the relay creates its own."""
    ensure_topic(
        settings.model_copy(update={"kafka_topic": settings.audit_topic, "kafka_partitions": 1})
    )


def event_tables(*applications: Any) -> list[str]:
    """The events tables of the eventsourcing ``applications``, each once, in order."""
    names: list[str] = []
    for application in applications:
        name = application.recorder.events_table_name
        if name not in names:
            names.append(name)
    return names


def _frontier(last: DictRow | None) -> Frontier:
    """The frontier stored with the last checkpoint (its subtree roots, 32 bytes each)."""
    if last is None:
        return Frontier()
    data = bytes(last["frontier"])
    return Frontier.from_list(last["size"], [data[i : i + 32] for i in range(0, len(data), 32)])


def checkpoint_json(checkpoint: Checkpoint) -> bytes:
    """The checkpoint as published on the topic."""
    return json.dumps(checkpoint.as_json(), sort_keys=True).encode()
