"""``caseledger analysts ...``: read-only database logins for analysts and BI tools
(Metabase, Superset, psql) that see only the ``analytics`` schema.

docs/read-models.md documents the schema's views; ``infra.analyst_roles`` says what a role
may and may not do."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from infra.bootstrap import Container

analysts_app = typer.Typer(
    help=(
        "Give analysts and BI tools a read-only PostgreSQL login that sees only the "
        "`analytics` schema (views documented in docs/read-models.md), or take it away."
    ),
    no_args_is_help=True,
)
Name = Annotated[str, typer.Argument(help="the role's name, e.g. metabase")]


def _container() -> Container:
    from infra.bootstrap import bootstrap  # noqa: PLC0415 - see infra.connectors_cli
    from infra.cli import _settings  # noqa: PLC0415

    return bootstrap(_settings(), name="analysts-cli")


@analysts_app.command()
def grant(
    name: Name,
    password_from_stdin: Annotated[
        bool,
        typer.Option(
            "--password-from-stdin",
            help="read the password from standard input (first line); else one is made",
        ),
    ] = False,
) -> None:
    """Create the read-only role NAME (or update its password and grants), and print the
    connection string to give the BI tool."""
    from infra.analyst_roles import grant_analyst  # noqa: PLC0415 - the CLI starts fast

    password = sys.stdin.readline().rstrip("\r\n") if password_from_stdin else None
    if password_from_stdin and not password:
        typer.echo("error: no password on standard input", err=True)
        raise typer.Exit(2)
    container = _container()
    try:
        container.analytics.refresh_labels(force=True)
        granted = grant_analyst(container.pool, container.settings.dsn, name, password)
    finally:
        container.close()
    typer.echo(
        f"role {name} {'created' if granted.created else 'updated'}: read-only, "
        "schema analytics only"
    )
    for warning in granted.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(granted.url)


@analysts_app.command()
def revoke(name: Name) -> None:
    """Take every privilege of the analyst role NAME away and drop it."""
    from infra.analyst_roles import revoke_analyst  # noqa: PLC0415

    container = _container()
    try:
        dropped = revoke_analyst(container.pool, name)
    finally:
        container.close()
    if dropped:
        typer.echo(f"role {name} dropped")
    else:
        typer.echo(
            f"role {name} lost its privileges here and may no longer log in; it still holds "
            "privileges in another database, so it was not dropped"
        )


@analysts_app.command("refresh-labels")
def refresh_labels() -> None:
    """Copy the labels of every published case-type version into analytics.labels now
    (processes also do it on start, and the read-model API when a version was published)."""
    container = _container()
    try:
        copied = container.analytics.refresh_labels(force=True)
    finally:
        container.close()
    typer.echo(f"labels of {copied} case-type versions copied")
