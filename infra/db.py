"""PostgreSQL plumbing: the connection pool, the schema of our own tables, URL handling."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from weakref import WeakKeyDictionary

from psycopg import Connection
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from services.deadline import remaining

# Serialises schema creation between processes starting together.
_MIGRATION_LOCK = 7_110_001

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash   text PRIMARY KEY,
    role       text NOT NULL,
    label      text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS expires_at timestamptz;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS revoked_at timestamptz;
CREATE TABLE IF NOT EXISTS relay_position (
    relay      text PRIMARY KEY,
    position   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS content_store (
    ref         text PRIMARY KEY,
    media_type  text NOT NULL,
    size        bigint NOT NULL,
    content     bytea NOT NULL,
    uploaded_by text NOT NULL,
    uploaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope        text NOT NULL,
    key          text NOT NULL,
    request_hash text NOT NULL,
    case_id      text,
    version      integer,
    status       integer,
    body         jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_at);
ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS kept boolean NOT NULL DEFAULT false;
CREATE TABLE IF NOT EXISTS connectors (
    name      text NOT NULL,
    version   integer NOT NULL,
    kind      text NOT NULL,
    document  jsonb NOT NULL,
    loaded_by text NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS connector_positions (
    connector  text PRIMARY KEY,
    position   jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS connector_runs (
    run_id            uuid PRIMARY KEY,
    connector         text NOT NULL,
    connector_version integer NOT NULL,
    started_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    seen              bigint NOT NULL DEFAULT 0,
    ingested          bigint NOT NULL DEFAULT 0,
    duplicates        bigint NOT NULL DEFAULT 0,
    quarantined       bigint NOT NULL DEFAULT 0,
    replayed          bigint NOT NULL DEFAULT 0,
    last_error        text
);
CREATE INDEX IF NOT EXISTS connector_runs_latest ON connector_runs (connector, started_at DESC);
CREATE TABLE IF NOT EXISTS quarantine (
    id                bigserial PRIMARY KEY,
    connector         text NOT NULL,
    connector_version integer NOT NULL,
    record_id         text,
    external_id       text,
    record            jsonb,
    raw               text,
    reason            text NOT NULL,
    held              boolean NOT NULL DEFAULT false,
    position          text,
    batch_id          text NOT NULL,
    run_id            uuid,
    status            text NOT NULL DEFAULT 'waiting',
    quarantined_at    timestamptz NOT NULL DEFAULT now(),
    replayed_at       timestamptz
);
CREATE INDEX IF NOT EXISTS quarantine_waiting ON quarantine (connector, external_id)
    WHERE status = 'waiting';
ALTER TABLE quarantine ADD COLUMN IF NOT EXISTS record_hash text;
CREATE UNIQUE INDEX IF NOT EXISTS quarantine_once ON quarantine
    (connector, coalesce(position, ''), record_hash) WHERE status = 'waiting';
CREATE TABLE IF NOT EXISTS secrets (
    name       text PRIMARY KEY,
    value      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""


def open_pool(
    dsn: str, size: int, name: str, wait_s: float = 5.0
) -> ConnectionPool[Connection[DictRow]]:
    """A pool of connections that return rows as dicts; asking for a connection waits at
    most ``wait_s`` (then ``PoolTimeout``: the API answers 503, workers back off), and
    never hands out a connection that idled through an outage (:func:`ping_when_idle`)."""
    pool: ConnectionPool[Connection[DictRow]] = ConnectionPool(
        dsn,
        min_size=1,
        max_size=size,
        timeout=wait_s,
        reconnect_timeout=RECONNECT_GIVE_UP_S,
        kwargs={
            "row_factory": dict_row,
            "application_name": f"caseledger-{name}",
            "connect_timeout": max(1, int(wait_s)),
        },
        connection_class=Connection[DictRow],
        open=False,
        name=name,
    )
    wait_within_deadline(pool)
    ping_when_idle(pool)
    pool.open(wait=True, timeout=15)
    return pool


#: How long a pool keeps retrying one lost connection before it gives up on it. psycopg_pool
#: doubles its pause between tries (1, 2, 4, 8 ... s) for as long as this allows, so after a
#: long outage the first request could wait half a minute for a connection; a pool that has
#: given up opens a new connection, at once, the next time a request needs one.
RECONNECT_GIVE_UP_S = 3.0


def wait_within_deadline(pool: ConnectionPool[Any]) -> None:
    """Make ``pool`` wait for a connection no longer than the caller's deadline allows
    (``services.deadline``): in an outage a request is refused when its time is up, not
    after each of its queries has waited the pool's full timeout."""
    getconn = pool.getconn

    def within_deadline(timeout: float | None = None) -> Any:
        left = remaining()
        if left is not None:
            wait = pool.timeout if timeout is None else timeout
            timeout = max(0.01, min(wait, left))
        return getconn(timeout=timeout)

    pool.getconn = within_deadline  # type: ignore[method-assign]


#: A pooled connection idle for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_S = 1.0


def ping_when_idle(pool: ConnectionPool[Any]) -> None:
    """Make ``pool`` ping only the connections that sat idle for more than
    :data:`PING_AFTER_IDLE_S`, and drop every dead one as soon as one is found dead.

    The library's pre-ping (``POSTGRES_PRE_PING``) costs a round trip on every checkout,
    a third of a command's. A connection used a moment ago is alive unless the server went
    away since: its query then fails and the recorder's reads and writes retry it on another
    connection (the broken one is discarded), while after an outage, when every pooled
    connection has idled, each is still pinged before use.

    A dead idle connection means the server restarted, so its idle siblings are dead too:
    they are all checked at once (``pool.check()``, which replaces the dead ones). Else
    psycopg_pool would try them one by one, waiting 1 s, then 2 s, between failed checks,
    and a request's deadline would run out while the database is up."""
    returned: WeakKeyDictionary[Any, float] = WeakKeyDictionary()
    putconn = pool.putconn

    def stamped(conn: Any) -> None:
        returned[conn] = time.monotonic()
        putconn(conn)

    def check(conn: Any) -> None:
        if time.monotonic() - returned.get(conn, 0.0) <= PING_AFTER_IDLE_S:
            return
        try:
            ConnectionPool.check_connection(conn)
        except Exception:
            pool.check()
            raise

    pool.putconn = stamped  # type: ignore[method-assign]
    pool._check = check


@contextmanager
def schema_lock(pool: ConnectionPool[Connection[DictRow]]) -> Iterator[None]:
    """Hold the schema lock while the event stores create their tables: processes starting
    together would otherwise race on PostgreSQL's catalog ("tuple concurrently updated")."""
    with pool.connection() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))


def migrate(pool: ConnectionPool[Connection[DictRow]]) -> None:
    """Create our tables if they are missing (the event store creates its own)."""
    with pool.connection() as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(SCHEMA)  # a constant, not user input


def eventsourcing_env(
    dsn: str, pool_size: int, write_timeout_s: int = 5, case_cache_size: int = 0
) -> dict[str, str]:
    """The eventsourcing library's settings for the database behind ``dsn``.

    Writes go through :class:`infra.recorder.BoundedApplicationRecorder`; ``write_timeout_s``
    bounds how long a write waits for the event table's lock and runs, and how long one of the
    library's sessions may sit idle inside a transaction (the server then ends it, releasing
    any lock it held). Each process keeps up to ``case_cache_size`` recently used cases in
    memory, brought up to date from the store before each use (the library's aggregate cache
    with fast-forward; a command works on a copy, so a refused one leaves the cache alone).
    """
    parts = conninfo_to_dict(dsn)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(parts.get("dbname", "postgres")),
        "POSTGRES_HOST": str(parts.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(parts.get("port", "5432")),
        "POSTGRES_USER": str(parts.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(parts.get("password", "")),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": "4",
        "POSTGRES_LOCK_TIMEOUT": str(write_timeout_s),
        "POSTGRES_CONNECT_TIMEOUT": str(write_timeout_s),
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": str(write_timeout_s),
        "POSTGRES_PRE_PING": "y",
        "APPLICATION_RECORDER_TOPIC": "infra.recorder:BoundedApplicationRecorder",
        # the library reads 0 as "no limit": no cache is "" (its default)
        "AGGREGATE_CACHE_MAXSIZE": str(case_cache_size) if case_cache_size else "",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "y",
    }


def redact(dsn: str) -> str:
    """``dsn`` with its password hidden, for logs and ``caseledger status``."""
    password = conninfo_to_dict(dsn).get("password")
    return dsn.replace(str(password), "***") if password else dsn
