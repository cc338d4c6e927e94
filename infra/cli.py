"""The ``caseledger`` command: start the stack, run one process of it, manage keys, report.

Run ``caseledger --help``, or ``caseledger VERB --help`` for one verb.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from infra.settings import Settings
from services.auth import Role

app = typer.Typer(
    help=(
        "caseledger: an event-sourced case-management backbone.\n\n"
        "Start everything on a laptop with `caseledger up`. In production, set DATABASE_URL "
        "and KAFKA_BOOTSTRAP_SERVERS and run `serve`, `relay` and `project` as separate "
        "processes (as many `serve` and `project` as you like)."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Create API keys for the HTTP API.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _settings() -> Settings:
    logging.basicConfig(
        level=os.environ.get("CASELEDGER_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    return Settings()


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@app.command()
def up() -> None:
    """Start the whole stack: embedded PostgreSQL and broker (unless DATABASE_URL or
    KAFKA_BOOTSTRAP_SERVERS point elsewhere), then the API, the relay and the projection
    worker. Prints the URLs and a development API key per role. Ctrl-C stops it all."""
    from infra.settings import STACK_ENV
    from infra.stack import run_stack

    Path(STACK_ENV).unlink(missing_ok=True)  # left by a stack that did not stop cleanly
    raise typer.Exit(run_stack(_settings()))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
) -> None:
    """Serve the HTTP API (needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS)."""
    import uvicorn

    from infra.bootstrap import bootstrap, build_api

    settings = _settings()
    container = bootstrap(settings, name="api")
    try:
        uvicorn.run(
            build_api(container),
            host=host or settings.api_host,
            port=port or settings.api_port,
            log_level="warning",
        )
    finally:
        container.close()


@app.command()
def relay() -> None:
    """Publish every stored event to the Kafka topic, in order (one active relay at a time;
    extra relays stand by and take over when it stops)."""
    from infra.bootstrap import bootstrap

    settings = _settings()
    container = bootstrap(settings, name="relay")
    stop = _stop_on_signals()
    logging.getLogger(__name__).info("relay publishing to %s", settings.kafka_topic)
    try:
        container.relay.run(stop)
    finally:
        container.close()


@app.command()
def project() -> None:
    """Run a projection worker: keeps the case-list read model up to date from the topic.
    Run several to share the partitions."""
    from infra.bootstrap import bootstrap, build_projector

    settings = _settings()
    container = bootstrap(settings, name="projector")
    stop = _stop_on_signals()
    logging.getLogger(__name__).info("projection worker in group %s", settings.projection_group)
    try:
        build_projector(container).run(stop)
    finally:
        container.close()


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="the role the key acts in", case_sensitive=False)],
    label: Annotated[str, typer.Option(help="who or what holds the key (shown as the actor)")] = "",
) -> None:
    """Create an API key for ROLE and print it (it is shown only once)."""
    from infra.bootstrap import bootstrap

    container = bootstrap(_settings(), name="cli")
    try:
        typer.echo(container.keys.create(role, label))
    finally:
        container.close()


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for scripts")] = False,
) -> None:
    """Show the database, the broker and topic, and the position and lag of the relay and of
    each projection (lag is counted against the event store's head)."""
    from infra.bootstrap import bootstrap, status_report

    container = bootstrap(_settings(), name="cli")
    try:
        report = status_report(container)
    finally:
        container.close()
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(f"database:  {report['database_url']}")
    kafka = report["kafka"]
    typer.echo(f"kafka:     {kafka['bootstrap_servers']}  topic {kafka['topic']}")
    typer.echo(f"store:     head position {report['event_store']['head_position']}")
    relay_state = report["relay"]
    typer.echo(f"relay:     position {relay_state['position']}  lag {relay_state['lag']}")
    for name, state in report["projections"].items():
        applied = state.get("applied_events", 0)
        typer.echo(f"projection {name}: applied {applied}  lag {state['lag']}")


@app.command()
def contracts(
    out: Annotated[Path, typer.Option(help="folder to write them to")] = Path("docs"),
) -> None:
    """Write the public contracts generated from the code: the event envelope's JSON Schema
    (`case-event-envelope.schema.json`) and the HTTP API's OpenAPI document (`openapi.json`)."""
    from services.api.openapi import openapi_text
    from services.contract import envelope_json_schema_text

    out.mkdir(parents=True, exist_ok=True)
    (out / "case-event-envelope.schema.json").write_text(envelope_json_schema_text())
    (out / "openapi.json").write_text(openapi_text())
    typer.echo(f"wrote {out}/case-event-envelope.schema.json and {out}/openapi.json")


def main() -> None:
    """Run the CLI, turning configuration and connection failures into one clear line."""
    from psycopg import OperationalError

    try:
        app()
    except (RuntimeError, OperationalError) as error:
        typer.echo(f"caseledger: {error}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
