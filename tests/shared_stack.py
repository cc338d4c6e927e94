"""One database and one app container for a whole test module, for suites that send many
requests to the same stack (the hostile-document corpus, the OpenAPI fuzzing)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import uuid4

import psycopg
from psycopg.conninfo import make_conninfo

from infra.bootstrap import Container, bootstrap
from infra.embedded import EmbeddedBroker
from infra.settings import Settings


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
