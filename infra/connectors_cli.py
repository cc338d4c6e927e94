"""``caseledger connectors ...``: load, check, run and watch the connectors that ingest records
from legacy silos, and replay what they quarantined. ``docs/connectors.md`` describes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

if TYPE_CHECKING:
    from adapters.connectors import Access
    from infra.bootstrap import Container
    from services.ingestion import RunReport

connectors_app = typer.Typer(
    help=(
        "Connectors ingest records from legacy silos (SQL tables, file drops, webhooks, Kafka "
        "topics, RabbitMQ queues) as case history, exactly once. Load a connector document "
        "with `load`, run it with `run`, see its reconciliation with `status` and what it set "
        "aside with `quarantine`; `replay` ingests those again once the mapping is fixed."
    ),
    no_args_is_help=True,
)
console = Console(stderr=True)


def _container(name: str = "cli") -> Container:
    # Imported late: `caseledger serve` loads this module too, and must prepare its metrics
    # folder before anything imports prometheus_client (infra.metrics_dir).
    from infra.bootstrap import bootstrap  # noqa: PLC0415
    from infra.cli import _settings  # noqa: PLC0415

    return bootstrap(_settings(), name=name)


def access_of(container: Container) -> Access:
    """What sources may use: secrets by name, the broker caseledger uses."""
    from infra.bootstrap import build_ingest_worker  # noqa: PLC0415 - see _container

    return build_ingest_worker(container).access


def echo_refusal(path: Path, error: Exception) -> None:
    """Say on stderr why a document was refused, each of its problems on a line."""
    typer.echo(f"{path}: refused: {error}", err=True)
    for problem in getattr(error, "problems", []):
        typer.echo(f"  - {problem}", err=True)


def _read(path: Path) -> dict[str, Any]:
    from services.connectors import read_document  # noqa: PLC0415

    kind = "application/json" if path.suffix == ".json" else "application/yaml"
    return read_document(path.read_bytes(), kind)


@connectors_app.command("validate")
def validate(
    files: Annotated[list[Path], typer.Argument(help="connector documents (.yaml or .json)")],
) -> None:
    """Check connector documents without loading them: every problem, by path (the case types
    they feed must be published)."""
    container = _container()
    failed = False
    try:
        for path in files:
            try:
                problems = container.connector_admin.problems(_read(path))
            except (OSError, ValueError) as error:
                problems = [f"document: {error}"]
            failed |= bool(problems)
            typer.echo(f"{path}: {'refused' if problems else 'valid'}")
            for problem in problems:
                typer.echo(f"  - {problem}")
    finally:
        container.close()
    raise typer.Exit(1 if failed else 0)


@connectors_app.command("load")
def load(
    files: Annotated[list[Path], typer.Argument(help="connector documents (.yaml or .json)")],
) -> None:
    """Validate and load connector documents: each becomes its connector's next version,
    unless it is the current one already. A document with problems loads nothing."""
    from domain.errors import DomainError  # noqa: PLC0415

    container = _container()
    failed = False
    try:
        for path in files:
            try:
                connector, new = container.connector_admin.load(_read(path), "cli")
                state = "loaded as" if new else "is current as"
                typer.echo(f"{path}: {connector.name} {state} v{connector.version}")
            except (OSError, DomainError) as error:
                failed = True
                echo_refusal(path, error)
    finally:
        container.close()
    raise typer.Exit(1 if failed else 0)


@connectors_app.command("list")
def listing() -> None:
    """List the connectors: current version, kind, last run and what waits in quarantine."""
    container = _container()
    try:
        rows = container.connectors.listing()
    finally:
        container.close()
    table = Table(
        Column("name", no_wrap=True), "version", "kind", Column("last run", no_wrap=True),
        "seen", "ingested", "quarantine",
    )  # fmt: skip
    for row in rows:
        last = row["last_run_at"].strftime("%Y-%m-%d %H:%M") if row["last_run_at"] else "never"
        table.add_row(
            row["name"], f"v{row['version']}", row["kind"], last,
            str(row["seen"] or 0), str(row["ingested"] or 0), str(row["waiting"]),
        )  # fmt: skip
    Console().print(table)


@connectors_app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="the connector to run")],
    once: Annotated[
        bool, typer.Option(help="stop when the source has nothing new (a bulk import)")
    ] = False,
    batch_size: Annotated[int, typer.Option(help="records per batch (one save)")] = 1000,
) -> None:
    """Run a polled or consumed connector (SQL, file, Kafka, AMQP) until SIGINT or SIGTERM,
    or with --once until its source has nothing new, with a progress line. Nothing is
    acknowledged before it is stored: stop or kill it at any moment and run it again."""
    from infra.cli import _stop_on_signals  # noqa: PLC0415
    from infra.connector_runner import ConnectorRunner  # noqa: PLC0415

    stop = _stop_on_signals()
    container = _container(name=f"connector-{name}")
    try:
        with _progress(name) as show:
            runner = ConnectorRunner(
                container.connectors, container.ingestor, access_of(container), name,
                batch_size=batch_size, progress=show,
            )  # fmt: skip
            report = runner.run(stop, once=once)
    finally:
        container.close()
    typer.echo(_summary(report))


class _progress:
    """A rich progress line counting a run's records, on stderr."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.bar = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
            console=console, transient=False,
        )  # fmt: skip
        self.task = self.bar.add_task(f"{name}: starting")

    def __enter__(self) -> Any:
        self.bar.start()
        return self.show

    def __exit__(self, *_: object) -> None:
        self.bar.stop()

    def show(self, report: RunReport) -> None:
        self.bar.update(self.task, description=f"{self.name}: {_summary(report)}")


def _summary(report: RunReport) -> str:
    return (
        f"seen {report.seen:,}, ingested {report.ingested:,}, duplicates "
        f"{report.duplicates:,}, quarantined {report.quarantined:,}"
        + (f", replayed {report.replayed:,}" if report.replayed else "")
    )


@connectors_app.command("status")
def status(
    name: Annotated[str, typer.Argument(help="the connector")],
    runs: Annotated[int, typer.Option(help="how many recent runs to show")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """The connector's current version, position and the reconciliation of its recent runs:
    records seen = ingested + duplicates + quarantined."""
    container = _container()
    try:
        found = container.connector_admin.status(name, runs)
    finally:
        container.close()
    connector, position, recent, waiting = (
        found.connector,
        found.position,
        found.runs,
        found.waiting,
    )
    if as_json:
        body = {"name": name, "version": connector.version, "kind": connector.kind,
                "position": position, "quarantined_waiting": waiting, "runs": recent}  # fmt: skip
        typer.echo(json.dumps(body, default=str, indent=2))
        return
    typer.echo(f"{name} v{connector.version} ({connector.kind}), position {position}")
    typer.echo(f"{waiting} record(s) waiting in quarantine")
    table = Table("run", "started", "seen", "ingested", "duplicates", "quarantined", "replayed",
                  "error")  # fmt: skip
    for run_ in recent:
        table.add_row(
            run_["run_id"][:8], run_["started_at"].isoformat(timespec="seconds"),
            *(str(run_[k]) for k in ("seen", "ingested", "duplicates", "quarantined", "replayed")),
            run_["last_error"] or "",
        )  # fmt: skip
    Console().print(table)


@connectors_app.command("quarantine")
def quarantine(
    name: Annotated[str, typer.Argument(help="the connector")],
    limit: Annotated[int, typer.Option(help="how many records to show")] = 50,
) -> None:
    """The records the connector set aside, oldest first: why, where they came from, and the
    raw record. Fix the mapping (load a new version) or the case type, then `replay`."""
    container = _container()
    try:
        entries = container.quarantine.waiting(name, limit=limit)
    finally:
        container.close()
    for entry in entries:
        held = " (held behind an earlier record of its case)" if entry["held"] else ""
        typer.echo(f"#{entry['id']} {entry['position'] or ''}{held}: {entry['reason']}")
        raw = entry["record"] if entry["record"] is not None else entry["raw"]
        typer.echo(f"    {json.dumps(raw, default=str)[:300]}")
    typer.echo(f"{len(entries)} record(s) waiting")


@connectors_app.command("replay")
def replay_command(
    name: Annotated[str, typer.Argument(help="the connector")],
    ids: Annotated[
        list[int] | None, typer.Option("--id", help="replay only these entries (repeat)")
    ] = None,
) -> None:
    """Ingest quarantined records again with the connector's current version: all of them, or
    those given with --id (each with the records of its case held behind it, in order)."""
    container = _container()
    try:
        report, outcomes = container.connector_admin.replay(name, ids)
    finally:
        container.close()
    again = [o for o in outcomes if o.verdict in ("quarantined", "held")]
    typer.echo(f"replayed {report.replayed} of {len(outcomes)}; {len(again)} set aside again")
    for outcome in again:
        typer.echo(f"  - {outcome.record_id or '?'}: {outcome.reason}")
    raise typer.Exit(1 if again else 0)
