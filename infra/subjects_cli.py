"""``caseledger subjects ...``: erase a data subject's personal data, see its cases.

    caseledger subjects erase cust-7 --reason "GDPR art. 17, request 42"
    caseledger subjects cases cust-7

docs/audit.md, "Personal data and erasure", tells what erasure does and what it proves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from domain.context import CommandContext
from domain.errors import DomainError

if TYPE_CHECKING:
    from infra.bootstrap import Container

subjects_app = typer.Typer(
    help=(
        "Data subjects: the party (party_id) whose personal data a case holds, or "
        "case:<id> for a case without a party. `erase` records the erasure on each of the "
        "subject's cases and destroys its key, after which its personal fields are "
        "unreadable everywhere (store, Kafka, read models, exports); refused while a case "
        "is on legal hold. `cases` lists the subject's cases."
    ),
    no_args_is_help=True,
)
console = Console(stderr=True)
Subject = Annotated[str, typer.Argument(help="the party id, or case:<case id>")]
CLI_ACTOR = CommandContext(actor_id="caseledger-cli", actor_role="admin")


def _container() -> Container:
    from infra.bootstrap import bootstrap  # noqa: PLC0415 - see infra.connectors_cli
    from infra.cli import _settings  # noqa: PLC0415

    return bootstrap(_settings(), name="subjects-cli")


def _fail(error: DomainError) -> None:
    typer.echo(f"error: {error.message}", err=True)
    if error.hint:
        typer.echo(f"  how to fix it: {error.hint}", err=True)
    raise typer.Exit(1)


@subjects_app.command("erase")
def erase(
    subject: Subject,
    reason: Annotated[str, typer.Option("--reason", help="why (recorded in each case's history)")],
) -> None:
    """Erase SUBJECT's personal data: safe to run again, and running it again finishes an
    erasure that was interrupted."""
    from services.subject_erasure import erase_subject  # noqa: PLC0415 - fast --help

    container = _container()
    progress = Progress(
        TextColumn(f"erasing {subject}"), BarColumn(), MofNCompleteColumn(), console=console
    )
    try:
        with progress:
            task = progress.add_task("cases", total=None)
            report = erase_subject(
                container.ledger,
                container.subject_keys,
                subject,
                reason,
                CLI_ACTOR,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    except DomainError as error:
        _fail(error)
        return
    finally:
        container.close()
    key = "destroyed its key" if report.key_destroyed else "its key was already destroyed"
    typer.echo(
        f"{subject}: {len(report.cases)} case(s), {len(report.recorded)} recorded the "
        f"erasure now; {key}"
    )


@subjects_app.command("cases")
def cases(subject: Subject) -> None:
    """List the cases holding SUBJECT's personal data, and whether it is erased."""
    container = _container()
    try:
        found = container.subject_keys.cases_of(subject)
        erased = container.subject_keys.is_erased(subject)
    finally:
        container.close()
    for case_id in found:
        typer.echo(str(case_id))
    typer.echo(f"{len(found)} case(s); {'erased' if erased else 'not erased'}", err=True)
