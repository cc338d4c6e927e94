"""After an outage, a pool hands out live connections at once (stop 17's CI failure).

An API worker that idled through a database restart still held the connections the server
had closed; its next requests each drew one and were refused 503 ("the database is
unavailable") while the database was up. Here the server closes every connection of a pool
(``pg_terminate_backend``, what a restart does to them) and the next checkouts must work.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

import infra.db
from infra.db import open_pool
from services.deadline import deadline_in

POOL_SIZE = 4


def _terminate(dsn: str, name: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"caseledger-{name}",),
        ).fetchall()
    return len(rows)


def _fill(pool: ConnectionPool[Any]) -> None:
    """Make the pool hold ``POOL_SIZE`` idle connections."""
    held = [pool.getconn() for _ in range(POOL_SIZE)]
    for conn in held:
        conn.execute("SELECT 1")
        conn.commit()
        pool.putconn(conn)


@pytest.fixture
def idle_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every pooled connection counts as idle (instead of waiting a second for it)."""
    monkeypatch.setattr(infra.db, "PING_AFTER_IDLE_S", 0.0)


@pytest.mark.usefixtures("idle_now")
def test_every_checkout_after_a_restart_gets_a_live_connection(database_url: str) -> None:
    pool = open_pool(database_url, POOL_SIZE, "recovery")
    try:
        _fill(pool)
        assert _terminate(database_url, "recovery") == POOL_SIZE
        for _ in range(POOL_SIZE + 2):
            with pool.connection() as conn:
                assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}
    finally:
        pool.close()


@pytest.mark.usefixtures("idle_now")
def test_a_request_deadline_is_not_spent_on_dead_connections(database_url: str) -> None:
    """psycopg_pool waits 1 s, then 2 s, between failed checks: with several dead connections
    a request's 2 s deadline ran out (PoolTimeout, 503) though the database was up."""
    pool = open_pool(database_url, POOL_SIZE, "deadline")
    try:
        _fill(pool)
        _terminate(database_url, "deadline")
        with deadline_in(2.0), pool.connection() as conn:
            assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}
    finally:
        pool.close()
