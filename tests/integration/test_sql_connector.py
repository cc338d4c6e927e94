"""The SQL table source on the real PostgreSQL and MariaDB: incremental, restart-safe, updated
rows read again, and a row whose transaction commits late (after a newer row was read) is
still read. Other sessions' transactions may make a poll read rows again (harmless, the dedup
claims skip them), so the tests look at what was read, not at how often."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pymysql  # type: ignore[import-untyped]
import pytest

from adapters.connectors import Access, Source, open_source
from infra.bootstrap import Container
from infra.settings import Settings
from services.connectors import Connector, compile_connector
from services.ingestion import RunReport
from tests.integration import test_ingestion as ingestion
from tests.integration.helpers import wait_until

MARIADB = "mariadb://root@127.0.0.1:3306/test"
NO_SECRETS = Access(secret=lambda name: pytest.fail(f"no secret {name} expected"))


MAPPING = {
    "case_type": "legacy_claim",
    "record_id": "record.claim_no",
    "fields": {
        "claim_no": "record.claim_no",
        "amount": {"from": "record.amount", "as": "money", "currency": "EUR"},
    },
    "status": {"from": "record.state", "states": {"O": "open", "A": "approved"}},
    "effective_time": "record.changed",
}


def connector(source: dict[str, Any]) -> Connector:
    document: dict[str, Any] = {"name": "claims_db", "kind": "sql", "system": "legacy-claims"}
    document |= {"source": {"batch_size": 2, **source}, "mapping": MAPPING}
    return compile_connector(document, 1)


def drain(source: Source, polls: int = 10) -> list[dict[str, Any]]:
    """Every record read until a poll finds nothing new (at most ``polls`` polls)."""
    read: list[dict[str, Any]] = []
    for _ in range(polls):
        batch = source.next_batch(100)
        if batch is None:
            break
        read += [dict(r.data or {}) for r in batch.records]
    return read


def numbers(records: list[dict[str, Any]]) -> set[str]:
    return {r["claim_no"] for r in records}


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture
def pg(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE SCHEMA legacy; CREATE TABLE legacy.claims (id serial PRIMARY KEY,"
            " claim_no text NOT NULL, amount numeric(10, 2), state text, changed timestamptz,"
            " scan bytea)"
        )
        yield conn


def pg_insert(conn: psycopg.Connection[Any], *claims: str) -> None:
    for claim in claims:
        conn.execute(
            "INSERT INTO legacy.claims (claim_no, amount, state, changed, scan)"
            " VALUES (%s, 100.50, 'O', '2024-02-03T10:00:00Z', '\\x0102')",
            (claim,),
        )


def pg_source(database_url: str, position: Any = None) -> Source:
    spec = {"dialect": "postgresql", "url": database_url, "table": "legacy.claims"}
    return open_source(connector(spec), position, NO_SECRETS)


def test_postgres_reads_incrementally_resumes_and_reads_updated_rows(
    database_url: str, pg: psycopg.Connection[Any]
) -> None:
    pg_insert(pg, "C-1", "C-2", "C-3", "C-4", "C-5")
    source = pg_source(database_url)
    first = source.next_batch(100)
    assert first is not None and [r.data["claim_no"] for r in first.records if r.data] == [
        "C-1",
        "C-2",
    ]
    record = first.records[0]
    assert record.data == {
        "id": 1, "claim_no": "C-1", "amount": "100.50", "state": "O",
        "changed": "2024-02-03T10:00:00+00:00", "scan": "AQI=",
    }  # fmt: skip
    assert record.position is not None and record.position.endswith("/id:1")
    source.close()

    restarted = pg_source(database_url, first.position)  # as the runner saved it
    assert numbers(drain(restarted)) == {"C-3", "C-4", "C-5"}
    pg.execute("UPDATE legacy.claims SET state = 'A' WHERE claim_no = 'C-2'")
    pg_insert(pg, "C-6")
    again = drain(restarted)
    assert {(r["claim_no"], r["state"]) for r in again} >= {("C-2", "A"), ("C-6", "O")}
    restarted.close()


def test_postgres_reads_a_row_whose_transaction_commits_late(
    database_url: str, pg: psycopg.Connection[Any]
) -> None:
    source = pg_source(database_url)
    with psycopg.connect(database_url) as held:
        pg_insert(held, "EARLY")  # its transaction stays open across the first poll
        pg_insert(pg, "LATER")  # a newer row, committed
        assert "LATER" in numbers(drain(source))
        held.commit()
    assert "EARLY" in numbers(drain(source))
    source.close()


def test_postgres_rows_become_cases_once(
    container: Container, settings: Settings, pg: psycopg.Connection[Any]
) -> None:
    install_case_type(container)
    spec = {"dialect": "postgresql", "url": settings.database_url, "table": "legacy.claims"}
    claims = connector(spec)
    pg_insert(pg, *(f"E-{i}" for i in range(5)))
    report = RunReport(claims.name, claims.version)

    def run_once() -> list[str]:
        source = open_source(claims, None, NO_SECRETS)
        verdicts: list[str] = []
        while (batch := source.next_batch(100)) is not None and len(verdicts) < 50:
            outcomes = container.ingestor.ingest(claims, batch.records, batch.batch_id, report)
            verdicts += [o.verdict for o in outcomes]
        source.close()
        return verdicts

    first = run_once()
    assert first.count("ingested") == 5 and set(first) <= {"ingested", "duplicate"}
    assert set(run_once()) == {"duplicate"}  # read again from the start: nothing new
    assert report.ingested == 5 and report.adds_up
    ids = {UUID(c) for c in case_ids(container)}
    assert len(ids) == 5


def install_case_type(container: Container) -> None:
    from domain.context import CommandContext  # noqa: PLC0415
    from services.case_type_document import read_document  # noqa: PLC0415

    document = read_document(ingestion.LEGACY_CLAIM.encode(), "application/yaml")
    container.case_types.install(document, "test", CommandContext("tester", "admin"))


def case_ids(container: Container) -> list[str]:
    with container.pool.connection() as conn:
        rows = conn.execute(
            container.reader.sql(
                "SELECT DISTINCT originator_id::text AS id FROM {events} WHERE topic LIKE %s"
            ),
            ("%Opened%",),
        ).fetchall()
    return [r["id"] for r in rows]


# -- MariaDB ---------------------------------------------------------------------------------


def maria() -> Any:
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test")


@pytest.fixture
def maria_table() -> Iterator[str]:
    name = f"claims_{uuid4().hex[:10]}"
    conn = maria()
    with conn.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {name} (id INT AUTO_INCREMENT PRIMARY KEY,"
            " claim_no VARCHAR(20) NOT NULL, amount DECIMAL(10, 2), state CHAR(1),"
            " changed TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)"
            " ON UPDATE CURRENT_TIMESTAMP(6)) ENGINE=InnoDB"
        )
    conn.commit()
    yield name
    with conn.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
    conn.close()


def maria_insert(conn: Any, table: str, *claims: str, commit: bool = True) -> None:
    with conn.cursor() as cursor:
        for claim in claims:
            cursor.execute(
                f"INSERT INTO {table} (claim_no, amount, state) VALUES (%s, 100.50, 'O')",
                (claim,),
            )
    if commit:
        conn.commit()


def maria_source(table: str, cursor: str, position: Any = None) -> Source:
    spec = {"dialect": "mariadb", "url": MARIADB, "table": table, "cursor": cursor}
    return open_source(connector(spec), position, NO_SECRETS)


@pytest.mark.parametrize("cursor", ["id", "changed"])
def test_mariadb_reads_incrementally_and_resumes(maria_table: str, cursor: str) -> None:
    conn = maria()
    maria_insert(conn, maria_table, "M-1", "M-2", "M-3")
    source = maria_source(maria_table, cursor)
    first = source.next_batch(100)
    assert first is not None and [r.data["claim_no"] for r in first.records if r.data] == [
        "M-1",
        "M-2",
    ]
    assert first.records[0].data is not None and first.records[0].data["amount"] == "100.50"
    source.close()
    restarted = maria_source(maria_table, cursor, first.position)
    resumed = numbers(drain(restarted))  # a timestamp cursor reads the last second again
    assert resumed == {"M-3"} if cursor == "id" else "M-3" in resumed
    with conn.cursor() as c:
        c.execute(f"UPDATE {maria_table} SET state = 'A' WHERE claim_no = 'M-1'")
    conn.commit()
    maria_insert(conn, maria_table, "M-4")
    again = drain(restarted)
    assert "M-4" in numbers(again)
    if cursor == "changed":  # a timestamp the database sets on every change: updates too
        assert ("M-1", "A") in {(r["claim_no"], r["state"]) for r in again}
    restarted.close()
    conn.close()


@pytest.mark.parametrize("cursor", ["id", "changed"])
def test_mariadb_reads_a_row_whose_transaction_commits_late(maria_table: str, cursor: str) -> None:
    source = maria_source(maria_table, cursor)
    held, other = maria(), maria()
    held.begin()
    maria_insert(held, maria_table, "EARLY", commit=False)  # takes id 1, stays open
    maria_insert(other, maria_table, "LATER")  # id 2, committed
    assert "LATER" in numbers(drain(source))
    held.commit()
    read: set[str] = set()
    last = [0.0]

    def early_read() -> bool:
        """Poll at most every 0.15 s: INNODB_TRX is a cache that is refreshed only after
        0.1 s without a read, so faster polls see the held transaction running forever."""
        if time.monotonic() - last[0] < 0.15:
            return False
        read.update(numbers(drain(source, polls=1)))
        last[0] = time.monotonic()
        return "EARLY" in read

    wait_until(early_read, 10, "the row whose transaction committed late")
    source.close()
    held.close()
    other.close()
