"""``caseledger projections ...``: see, rebuild, verify and unblock the read models.

docs/read-models.md describes each projection and its tables."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

if TYPE_CHECKING:
    from infra.bootstrap import Container

projections_app = typer.Typer(
    help=(
        "Projections turn case events into the read models that lists, dashboards, analysts "
        "and the SLA watcher read. `list` and `status` show where each stands (position, "
        "lag, cases held behind an event it could not apply); `rebuild` builds one anew "
        "beside the live one and swaps it in without stopping queries; `verify` rebuilds "
        "into a shadow copy and reports every row that differs; `retry` applies held cases "
        "again after a fix."
    ),
    no_args_is_help=True,
)
console = Console(stderr=True)
Name = Annotated[str, typer.Argument(help="the projection: case_list, case_history, work_queues")]


def _container() -> Container:
    from infra.bootstrap import bootstrap  # noqa: PLC0415 - see infra.connectors_cli
    from infra.cli import _settings  # noqa: PLC0415

    return bootstrap(_settings(), name="projections-cli")


def _fail(error: Exception) -> None:
    hint = getattr(error, "hint", None)
    typer.echo(f"error: {getattr(error, 'message', error)}", err=True)
    if hint:
        typer.echo(f"  how to fix it: {hint}", err=True)
    raise typer.Exit(2)


@projections_app.command("list")
def list_projections(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Every projection with its tables, position, lag and held cases."""
    container = _container()
    try:
        with container.pool.connection() as conn:
            figures = container.projections.figures(conn)
        rows = {
            name: {
                "tables": [t.name for t in container.projections.runner(name).projection.tables],
                "position": f.get("max_position", 0),
                "applied_events": f.get("applied_events", 0),
                "lag": f["lag"],
                "held_cases": f["held_cases"],
                "rebuilt_at": str(f["rebuilt_at"]) if f.get("rebuilt_at") else None,
                "outdated": f["outdated"],
            }
            for name, f in figures.items()
        }
    finally:
        container.close()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("projection", "tables", "position", "applied", "lag", "held", "rebuilt")
    for name, r in rows.items():
        table.add_row(
            name,
            ", ".join(r["tables"]),
            str(r["position"]),
            str(r["applied_events"]),
            str(r["lag"]),
            str(r["held_cases"]),
            (r["rebuilt_at"] or "never")
            + (" (outdated: rebuild pending)" if r["outdated"] else ""),
        )
    Console().print(table)


@projections_app.command()
def status(
    name: Name,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """One projection's position and lag, and the events it set aside (each holds its case
    until `caseledger projections retry`)."""
    container = _container()
    try:
        with container.pool.connection() as conn:
            state = container.projections.runner(name).state(conn)
            lag = container.projections.runner(name).lag(conn)
            letters = container.projections.dead_letters(conn, name)
    except Exception as error:  # noqa: BLE001 - a clear line, not a traceback
        _fail(error)
        return
    finally:
        container.close()
    report = {
        "projection": name,
        "position": state.get("max_position", 0),
        "applied_events": state.get("applied_events", 0),
        "lag": lag,
        "held_cases": state.get("held_cases", 0),
        "dead_letters": [
            {
                "case_id": d.case_id,
                "case_version": d.case_version,
                "event_type": d.event_type,
                "error": d.error,
                "recorded_at": str(d.recorded_at),
            }
            for d in letters
        ],
    }
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(
        f"{name}: position {report['position']}  applied {report['applied_events']}"
        f"  lag {lag}  held cases {report['held_cases']}"
    )
    for d in letters:
        typer.echo(f"  held: case {d.case_id} at version {d.case_version} ({d.event_type})")
        typer.echo(f"        {d.error}")
    if letters:
        typer.echo(f"fix the cause, then: caseledger projections retry {name}")


@contextmanager
def _bar(description: str, head: int) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr, and the callback a rebuild reports its position to."""
    progress = Progress(
        TextColumn(description),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("position {task.completed:,.0f} of {task.total:,.0f}"),
        TimeRemainingColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task(description, total=max(head, 1))

        def show(position: int, head: int) -> None:
            progress.update(task, completed=position, total=max(head, 1))

        yield show


@projections_app.command()
def rebuild(
    name: Name,
    fresh: Annotated[
        bool, typer.Option(help="start over instead of resuming an interrupted rebuild")
    ] = False,
) -> None:
    """Build the projection anew from the event store beside the live one, then swap it in
    atomically: queries never stop. A rebuild killed midway resumes where it was."""
    from infra.projection_rebuild import Rebuilder  # noqa: PLC0415

    container = _container()
    try:
        runner = container.projections.runner(name)
        chunk = container.settings.projection_rebuild_chunk
        rebuilder = Rebuilder(runner, container.projections.after_swap, chunk)
        with _bar(f"rebuilding {name}", container.reader.head()) as show:
            report = rebuilder.rebuild(show, fresh=fresh)
    except Exception as error:  # noqa: BLE001
        _fail(error)
        return
    finally:
        container.close()
    resumed = f" (resumed from {report.resumed_from:,})" if report.resumed_from else ""
    typer.echo(
        f"{name} rebuilt{resumed}: {report.applied:,} events applied up to position "
        f"{report.position:,}, swapped in; {report.held_cases} cases held"
    )


@projections_app.command()
def verify(name: Name) -> None:
    """Rebuild the projection into a shadow copy and compare it row for row with the live
    one; every row that differs is printed. Exits 1 when any does."""
    from infra.projection_rebuild import Rebuilder  # noqa: PLC0415

    container = _container()
    try:
        runner = container.projections.runner(name)
        rebuilder = Rebuilder(runner, chunk=container.settings.projection_rebuild_chunk)
        with _bar(f"verifying {name}", container.reader.head()) as show:
            drifts = rebuilder.verify(show)
    except Exception as error:  # noqa: BLE001
        _fail(error)
        return
    finally:
        container.close()
    if not drifts:
        typer.echo(f"{name}: the live tables equal a rebuild from the store, row for row")
        return
    for drift in drifts:
        typer.echo(f"{drift.table}: only in {drift.side}: {json.dumps(drift.row, default=str)}")
    typer.echo(f"{name}: {len(drifts)} rows differ; `caseledger projections rebuild {name}`")
    raise typer.Exit(1)


@projections_app.command()
def retry(
    name: Name,
    case: Annotated[
        str | None, typer.Option(help="only this case (its id); all held cases otherwise")
    ] = None,
) -> None:
    """Apply the events of held cases again from the store, after the cause was fixed."""
    container = _container()
    try:
        case_id = UUID(case) if case else None
        outcome = container.projections.retry(name, case_id)
    except ValueError:
        typer.echo(f"error: {case!r} is not a case id (a UUID)", err=True)
        raise typer.Exit(2) from None
    except Exception as error:  # noqa: BLE001
        _fail(error)
        return
    finally:
        container.close()
    typer.echo(
        f"{name}: retried {outcome.retried} cases, {outcome.moved_on} moved on,"
        f" {outcome.applied} events applied"
    )
    if outcome.moved_on < outcome.retried:
        typer.echo(f"still held: caseledger projections status {name}")
        raise typer.Exit(1)
