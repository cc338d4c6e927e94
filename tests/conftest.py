"""Real servers for the suite: PostgreSQL (the local one, else embedded) and a Tansu broker.

Every test that asks for ``settings`` gets a fresh database, its own topic and its own
consumer group, so tests cannot see each other's events.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import make_conninfo

from infra.bootstrap import Container, bootstrap, build_api
from infra.embedded import EmbeddedBroker, free_port, start_postgres
from infra.settings import Settings
from services.auth import Role

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def pg_admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server where tests may create databases: $CASELEDGER_TEST_DATABASE_URL, the local
    server on 127.0.0.1:5432, or else an embedded one started for this session."""
    explicit = os.environ.get("CASELEDGER_TEST_DATABASE_URL")
    if explicit:
        yield explicit
        return
    try:
        psycopg.connect(LOCAL_POSTGRES, connect_timeout=2).close()
        yield LOCAL_POSTGRES
        return
    except psycopg.OperationalError:
        pass
    server, _ = start_postgres(tmp_path_factory.mktemp("pg"), database="postgres")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture
def database_url(pg_admin_dsn: str) -> Iterator[str]:
    name = f"cl_test_{uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_conninfo(pg_admin_dsn, dbname=name)
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    started = EmbeddedBroker(free_port(), log).start()
    yield started
    started.stop()


@pytest.fixture
def settings(database_url: str, broker: EmbeddedBroker, tmp_path: Path) -> Settings:
    tag = uuid4().hex[:8]
    return Settings(
        _env_file=None,
        database_url=database_url,
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_topic=f"case-events-{tag}",
        kafka_partitions=3,
        kafka_session_timeout_ms=6_000,
        projection_group=f"case-list-{tag}",
        projection_idle_sweep_s=3.0,
        relay_idle_wait_s=0.2,
        data_dir=tmp_path,
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process use ``settings``."""
    return {**os.environ, **settings.as_env()}


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    built = bootstrap(settings, name="test")
    yield built
    built.close()


@pytest.fixture
def keys(container: Container) -> dict[Role, str]:
    return {role: container.keys.create(role, label=f"test-{role.value}") for role in Role}


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(build_api(container)) as test_client:
        yield test_client


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def stored_event_count(container: Container) -> int:
    with container.pool.connection() as conn:
        row = conn.execute(container.reader.sql("SELECT count(*) AS n FROM {events}")).fetchone()
    return int(row["n"]) if row else 0
