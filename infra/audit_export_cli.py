"""``caseledger audit export``: the full history of one case, or of every case changed in a
period, as JSON Lines, an HTML report, or a PDF printed from it by the system Chromium.

Run ``caseledger audit export --help``. docs/audit.md ("Time travel and exports") says what
an export holds and which role's view it shows."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from services.auth import Role

if TYPE_CHECKING:
    from infra.bootstrap import Container
    from services.audit_export import ExportScope
    from services.case_views import ToldHistory

console = Console(stderr=True)
PDF_TIMEOUT_S = 300
#: Chromium's flags for printing a local file: no sandbox (it may run as root in a
#: container), no network of its own, no header and footer with the file's path.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-pdf-header-footer",
)


class Format(StrEnum):
    jsonl = "jsonl"
    html = "html"
    pdf = "pdf"


class ExportRefused(Exception):
    """The export cannot be made as asked; the message says how to fix it."""


def add_export_command(app: typer.Typer) -> None:
    """Add ``export`` to the ``caseledger audit`` group."""
    app.command("export")(export)


def export(
    case: Annotated[
        str | None, typer.Option("--case", help="export this case (its id, a UUID)")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="export every case with a change recorded at or after this moment "
            "(ISO 8601 with an offset, e.g. 2026-03-01T00:00:00Z)"
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="with --since: changes recorded before this moment (default: now)"),
    ] = None,
    output_format: Annotated[
        Format,
        typer.Option(
            "--format",
            help="jsonl: one event envelope a line, with actor, reasons, the rule behind each "
            "automatic step and the source of ingested facts; html: a readable, printable "
            "report; pdf: that report printed by Chromium (`make browser` installs it)",
        ),
    ] = Format.jsonl,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="write to this file (default: stdout; pdf needs it)"),
    ] = None,
    role: Annotated[
        Role,
        typer.Option(
            help="whose view to show: auditor hides the fields the auditor's view of each "
            "case type hides (and names them in withheld); admin shows everything"
        ),
    ] = Role.AUDITOR,
) -> None:
    """Export the full history of one case (--case) or of every case changed in a period
    (--since, --until; by recorded time), as the chosen role sees it.

    Histories are read a page at a time and written as they are read, so an export of any
    size runs in constant memory; a progress bar counts the cases on stderr."""
    try:
        _export(case, since, until, output_format, output, role)
    except ExportRefused as refused:
        typer.echo(f"error: {refused}", err=True)
        raise typer.Exit(2) from None


def _export(
    case: str | None,
    since: str | None,
    until: str | None,
    output_format: Format,
    output: Path | None,
    role: Role,
) -> None:
    from services.audit_export import ExportScope  # noqa: PLC0415
    from services.time_travel import BadMoment, parse_moment  # noqa: PLC0415

    if (case is None) == (since is None):
        raise ExportRefused("give either --case ID or --since T (with --until T), not both")
    if output_format is Format.pdf:
        if output is None:
            raise ExportRefused("a PDF needs a file: add --output report.pdf")
        chromium()  # fail before reading anything when it is missing
    try:
        case_id = UUID(case) if case is not None else None
    except ValueError:
        raise ExportRefused(f"--case {case!r} is not a case id (a UUID)") from None
    try:
        start, end = parse_moment("--since", since), parse_moment("--until", until)
    except BadMoment as bad:
        raise ExportRefused(f"{bad.message}; {bad.hint}") from None
    scope = ExportScope(
        role=role.value,
        made_by="caseledger audit export",
        made_at=datetime.now(UTC),
        case_id=case_id,
        since=start,
        until=end or (datetime.now(UTC) if start else None),
    )
    container = _container()
    try:
        _write_export(container, scope, output_format, output)
    finally:
        container.close()


def _write_export(
    container: Container, scope: ExportScope, output_format: Format, output: Path | None
) -> None:
    from services.audit_export import AuditExport  # noqa: PLC0415
    from services.case_views import CaseViews, Reader  # noqa: PLC0415
    from services.errors import CaseNotFound  # noqa: PLC0415

    exporter = AuditExport(CaseViews(container.ledger))
    reader = Reader(Role(scope.role), "audit-export", ("en",))
    if scope.case_id is not None:
        try:
            container.ledger.get_case(scope.case_id)
        except CaseNotFound as missing:
            raise ExportRefused(f"{missing.message}: check the id") from None
        case_ids = [scope.case_id]
    else:
        assert scope.since is not None and scope.until is not None
        case_ids = container.reader.cases_touched(scope.since, scope.until)
    with _progress(len(case_ids)) as advance:
        trails = _counted(exporter.trails(case_ids, reader), advance)
        if output_format is Format.jsonl:
            _write_bytes(exporter.jsonl(trails), output)
        elif output_format is Format.html:
            _write_bytes((chunk.encode() for chunk in exporter.html(scope, trails)), output)
        else:
            assert output is not None
            print_pdf((c.encode() for c in exporter.html(scope, trails)), output)
    if output is not None:
        console.print(f"wrote {len(case_ids)} case(s) to {output}")


def _counted(trails: Iterator[ToldHistory], advance: Callable[[], None]) -> Iterator[ToldHistory]:
    """``trails``, advancing the bar as each case is done (when the next one is asked for)."""
    for index, trail in enumerate(trails):
        if index:
            advance()
        yield trail
    advance()


@contextmanager
def _progress(total: int) -> Iterator[Callable[[], None]]:
    """A bar counting exported cases on stderr (none for a single case)."""
    progress = Progress(
        TextColumn("exporting cases"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=total <= 1,
    )
    with progress:
        task = progress.add_task("cases", total=max(total, 1))
        yield lambda: progress.advance(task)


def _write_bytes(chunks: Iterable[bytes], output: Path | None) -> None:
    if output is None:
        _copy(chunks, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    with output.open("wb") as sink:
        _copy(chunks, sink)


def _copy(chunks: Iterable[bytes], sink: BinaryIO) -> None:
    for chunk in chunks:
        sink.write(chunk)


def chromium() -> str:
    """The system Chromium's path; a clear refusal when it is not installed."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise ExportRefused(
            "Chromium is not installed, and a PDF is printed with it: run `make browser` "
            "(or apt-get install chromium), or export --format html and print that"
        )
    return found


def print_pdf(html: Iterable[bytes], output: Path) -> None:
    """Write the HTML report to a private temporary file and print it to ``output`` with
    headless Chromium (``--print-to-pdf``); the report loads nothing from elsewhere."""
    browser = chromium()
    with tempfile.TemporaryDirectory(prefix="caseledger-export-") as work:
        page = Path(work) / "report.html"
        with page.open("wb") as sink:
            _copy(html, sink)
        target = output.resolve()
        command = [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={Path(work) / 'profile'}",
            f"--print-to-pdf={target}",
            page.as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, timeout=PDF_TIMEOUT_S, check=False)
        if done.returncode != 0 or not target.exists():
            detail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise ExportRefused(
                f"Chromium could not print the PDF (exit {done.returncode}): "
                f"{' / '.join(detail)}; export --format html instead"
            )


def _container() -> Container:
    from infra.bootstrap import bootstrap  # noqa: PLC0415 - see infra.connectors_cli
    from infra.cli import _settings  # noqa: PLC0415

    return bootstrap(_settings(), name="audit-export")
