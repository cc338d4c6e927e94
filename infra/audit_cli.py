"""``caseledger audit ...``: prove that the event history was not altered.

docs/audit.md ("Tamper evidence") explains what is hashed, signed and checked."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from infra.audit_export_cli import add_export_command
from infra.audit_replay_cli import republish

if TYPE_CHECKING:
    from infra.audit_verify import Report
    from infra.bootstrap import Container

audit_app = typer.Typer(
    help=(
        "Audit the event store: export histories, prove them unaltered, replay them.\n\n"
        "`export` writes the history of a case, or of every case changed in a period, as "
        "JSON Lines or a readable report; `republish` sends a range of the store to Kafka "
        "again.\n\n"
        "Tamper evidence: every event is hash-chained to its case's "
        "previous one by PostgreSQL as it is stored, and the whole log is a Merkle tree whose "
        "root is signed (a checkpoint, every minute under `caseledger up`) with a key kept "
        "outside the database and published on the audit-checkpoints topic. `verify` "
        "recomputes all of it and names every case and version that was changed, deleted, "
        "inserted, reordered or moved; `bundle` gives an auditor one case's proof, which "
        "`verifier` (a standalone Python script) checks offline against `public-key`."
    ),
    no_args_is_help=True,
)
console = Console(stderr=True)
CaseId = Annotated[str, typer.Argument(help="the case's id (a UUID)")]
#: Problems `verify` prints unless told otherwise (the rest are counted).
SHOWN = 50
Output = Annotated[
    Path | None, typer.Option("--output", "-o", help="write to this file (default: stdout)")
]


def _container() -> Container:
    from infra.bootstrap import bootstrap  # noqa: PLC0415 - see infra.connectors_cli
    from infra.cli import _settings  # noqa: PLC0415

    return bootstrap(_settings(), name="audit-cli")


def _write(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n")
        typer.echo(f"wrote {output}", err=True)


@audit_app.command()
def checkpoint() -> None:
    """Sign a checkpoint of every event log that grew since its last one, and publish it on
    the audit topic (one the broker does not take now is published by the next attempt).
    `caseledger up` runs this every minute by default (`caseledger audit-checkpoints`); run
    it by hand to seal the history up to now, e.g. before an audit.

    Exit codes: 0 signed (or nothing new to sign); 1 refused because the log has a missing
    or inserted event: nothing is signed over it; run `caseledger audit verify` to see what
    and where."""
    from infra.audit_bundle import AuditTrail  # noqa: PLC0415
    from services.audit import LogNotDense  # noqa: PLC0415

    container = _container()
    try:
        made = AuditTrail(container.audit).checkpoint()
    except LogNotDense as error:
        typer.echo(f"refused: {error.message}\n  how to fix it: {error.hint}", err=True)
        raise typer.Exit(1) from None
    finally:
        container.close()
    for c in made:
        state = "published" if c.published else "publication pending (broker unavailable)"
        typer.echo(f"{c.log}: checkpoint #{c.id} of {c.size:,} events, root {c.root} ({state})")
    if not made:
        typer.echo("no log grew since its last checkpoint: nothing to sign")


@audit_app.command("public-key")
def public_key() -> None:
    """Print the checkpoint signing key's public half, in hex and PEM, and its id: give it to
    auditors, who pass it to the verifier (`--public-key`) and to `audit verify
    --trusted-key` on another machine. Hand it over by a channel the database's
    administrators do not control, or compare its id with the key_id of the published
    checkpoints.

    It reads the key of this configuration (CASELEDGER_AUDIT_SIGNING_KEY_FILE, else
    CASELEDGER_DATA_DIR/audit/checkpoint-signing.key); when that file does not exist it
    refuses (exit 1) rather than make a key no checkpoint was signed with."""
    from infra.audit_keys import key_file, signing_key  # noqa: PLC0415
    from infra.cli import _settings  # noqa: PLC0415

    settings = _settings()
    if not key_file(settings).exists():
        typer.echo(
            f"error: there is no checkpoint signing key at {key_file(settings)}\n"
            "  how to fix it: point CASELEDGER_AUDIT_SIGNING_KEY_FILE (or CASELEDGER_DATA_DIR) "
            "at the key the checkpointer uses; a new key is made by the first checkpoint "
            "(`caseledger audit checkpoint`)",
            err=True,
        )
        raise typer.Exit(1)
    key = signing_key(settings)
    typer.echo(f"key id: {key.key_id}   (file {key_file(settings)})")
    typer.echo(f"hex:    {key.public_hex}")
    typer.echo(key.public_pem.rstrip())


@contextmanager
def _bar(description: str) -> Iterator[Callable[[int, int], None]]:
    progress = Progress(
        TextColumn(description),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed:,.0f} of {task.total:,.0f} rows"),
        TimeRemainingColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task(description, total=1)

        def show(done: int, total: int) -> None:
            progress.update(task, completed=done, total=max(total, 1))

        yield show


def _trusted(extra: list[str]) -> dict[str, bytes]:
    """The keys whose checkpoints count: the signing key (when its file exists) and any
    given with --trusted-key."""
    from domain.evidence import UnreadableInput, key_id_of, public_key_from_text  # noqa: PLC0415
    from infra.audit_keys import key_file, load_or_create  # noqa: PLC0415
    from infra.cli import _settings  # noqa: PLC0415

    keys: dict[str, bytes] = {}
    path = key_file(_settings())
    if path.exists():
        key = load_or_create(path)
        keys[key.key_id] = key.public_raw
    for text in extra:
        try:
            raw = public_key_from_text(text)
        except UnreadableInput as error:
            typer.echo(f"error: --trusted-key {text!r}: {error}", err=True)
            raise typer.Exit(2) from None
        keys[key_id_of(raw)] = raw
    return keys


@audit_app.command()
def verify(
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    trusted_key: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-key",
            help="also trust checkpoints of this public key (64 hex digits), e.g. a retired "
            "signing key; repeat as needed",
        ),
    ] = None,
    skip_topic: Annotated[
        bool,
        typer.Option(
            "--skip-topic",
            help="do not read the published checkpoints (a deleted checkpoint row then goes "
            "unnoticed)",
        ),
    ] = False,
    show: Annotated[
        int,
        typer.Option(
            "--show",
            min=0,
            help="print at most this many problems, then how many more (0: all that were "
            "kept, up to 10,000); --json always gives them all",
        ),
    ] = SHOWN,
) -> None:
    """Check that no recorded event was changed, deleted, inserted, reordered or moved:
    recompute every event's hash from its content, every case's chain, the Merkle tree,
    every checkpoint's root and signature, and compare the checkpoints table with the
    copies published on the audit topic. Read-only; a progress bar shows on stderr.

    Prints each problem with the log, case, version and position it concerns (the first
    --show of them; --json gives them all, up to 10,000), a count per kind, and what to do.
    Checkpoints count when signed by this configuration's signing key or a --trusted-key:
    on a machine without the key file, pass the key `caseledger audit public-key` printed.

    Exit codes: 0 intact; 1 a problem found (or the published copies could not be read:
    fix the broker's address, or accept the risk with --skip-topic); 2 bad arguments."""
    from infra.audit_verify import Verifier  # noqa: PLC0415

    trusted = _trusted(trusted_key or [])
    container = _container()
    try:
        verifier = Verifier(container.pool, container.audit.tables, container.settings, trusted)
        with _bar("verifying the event logs") as progress:
            report = verifier.verify(progress, read_topic=not skip_topic)
    finally:
        container.close()
    if as_json:
        typer.echo(json.dumps(report.as_json(), indent=2))
    else:
        _print(report, show)
    raise typer.Exit(0 if report.ok else 1)


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def _print(report: Report, show: int = 0) -> None:
    for note in report.notes:
        typer.echo(f"note: {note}")
    shown = report.problems[:show] if show else report.problems
    for problem in shown:
        typer.echo(f"PROBLEM {problem}")
    if (rest := report.count - len(shown)) > 0:
        more = "use --show 0 or --json for the rest" if report.problems[len(shown) :] else ""
        typer.echo(
            f"... and {_plural(rest, 'more problem')} {f'({more})' if more else ''}".rstrip()
        )
    events = ", ".join(f"{n:,} in {t}" for t, n in report.events.items())
    summary = (
        f"{events}; {_plural(report.checkpoints, 'checkpoint')} in the table, "
        f"{_plural(report.published, 'published copy', 'published copies')}"
    )
    if report.ok:
        typer.echo(f"intact: {summary}")
        return
    kinds = ", ".join(f"{kind} {n:,}" for kind, n in report.by_kind().items())
    typer.echo(f"NOT INTACT: {_plural(report.count, 'problem')} ({kinds}); {summary}")
    typer.echo("\nWhat to do:")
    for line in report.what_to_do():
        typer.echo(f"  {line}")


def _bundle(case_id: str, output: Path | None) -> None:
    from infra.audit_bundle import EvidenceBundles  # noqa: PLC0415
    from services.audit import LogNotDense  # noqa: PLC0415
    from services.errors import CaseNotFound  # noqa: PLC0415

    try:
        case = UUID(case_id)
    except ValueError:
        typer.echo(f"error: {case_id!r} is not a case id (a UUID)", err=True)
        raise typer.Exit(2) from None
    container = _container()
    try:
        bundle = EvidenceBundles(container.audit).bundle(case)
    except (CaseNotFound, LogNotDense) as error:
        typer.echo(f"error: {error.message}\n  how to fix it: {error.hint}", err=True)
        raise typer.Exit(1) from None
    finally:
        container.close()
    _write(json.dumps(bundle, indent=1), output)


@audit_app.command()
def bundle(case_id: CaseId, output: Output = None) -> None:
    """Write the evidence bundle of one case (JSON): its events with their hashes and Merkle
    inclusion proofs, and the signed checkpoint they are proved against (a fresh one when the
    latest does not cover the case's newest event). Give it to the auditor with the script
    of `caseledger audit verifier` and the key of `caseledger audit public-key`; they check
    it offline, without access to caseledger.

    Exit codes: 0 written; 1 no such case, or the log has a missing or inserted event (no
    proof is made over it: run `caseledger audit verify`); 2 CASE_ID is not a UUID."""
    _bundle(case_id, output)


@audit_app.command(hidden=True)
def evidence(case_id: CaseId, output: Output = None) -> None:
    """Same as `bundle`."""
    _bundle(case_id, output)


@audit_app.command()
def verifier(output: Output = None) -> None:
    """Write the standalone verifier for auditors: one Python 3 file, standard library
    only, nothing of caseledger needed. Run it as `python verifier.py BUNDLE.json
    --public-key KEY` with the key of `caseledger audit public-key` (never the one inside the
    bundle): it recomputes every event's hash, checks each inclusion proof against the
    checkpoint's root and the checkpoint's Ed25519 signature.

    The script exits 0 when the bundle holds, 1 when it found problems (each printed with the
    case, version and what is wrong: the case's history as bundled is not what was signed),
    2 when the bundle or key cannot be read."""
    import domain.evidence  # noqa: PLC0415

    _write(Path(domain.evidence.__file__).read_text().rstrip("\n"), output)


audit_app.command()(republish)  # infra.audit_replay_cli, docs/audit.md "Replay"


# `caseledger audit export`: case histories as JSON Lines, HTML or PDF (time travel and exports).
add_export_command(audit_app)
