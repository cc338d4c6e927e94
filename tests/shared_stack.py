"""One database and one app container for a whole test module, for suites that send many
requests to the same stack (the hostile-document corpus, the OpenAPI fuzzing, the bad-input
table): a database per test or per operation made them minutes long.

A module imports ``container`` and ``keys`` from here to replace the per-test fixtures of
``tests/conftest.py`` by one stack for the module; its tests then count what they change
(stored events before and after) instead of assuming an empty store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from infra.bootstrap import Container, bootstrap
from infra.embedded import EmbeddedBroker
from infra.settings import Settings
from services.auth import Role


@contextmanager
def module_container(admin_dsn: str, broker: EmbeddedBroker, data_dir: Path) -> Iterator[Container]:
    """A container on a database of its own, dropped afterwards."""
    name = f"cl_test_{uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    tag = uuid4().hex[:8]
    settings = Settings(
        _env_file=None,
        database_url=make_conninfo(admin_dsn, dbname=name),
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_topic=f"case-events-{tag}",
        projection_group=f"case-list-{tag}",
        data_dir=data_dir,
    )
    built = bootstrap(settings, name="module")
    try:
        yield built
    finally:
        built.close()
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def container(
    pg_admin_dsn: str, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Container]:
    """One stack for the importing module."""
    with module_container(pg_admin_dsn, broker, tmp_path_factory.mktemp("stack")) as built:
        yield built


@pytest.fixture(scope="module")
def keys(container: Container) -> dict[Role, str]:
    """An API key per role on the module's stack."""
    return {role: container.keys.create(role, label=f"shared-{role.value}") for role in Role}
