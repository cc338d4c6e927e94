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
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from domain.errors import DomainError
from infra.analysts_cli import analysts_app
from infra.audit_cli import audit_app
from infra.audit_replay_cli import case_types_what_if
from infra.connectors_cli import connectors_app, echo_refusal
from infra.projections_cli import projections_app
from infra.settings import Settings
from infra.subjects_cli import subjects_app
from services.auth import Role

if TYPE_CHECKING:
    from fastapi import FastAPI

    from domain.context import CommandContext
    from infra.bootstrap import Container
    from infra.outage import Worker
    from infra.secrets import SecretStore


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
keys_app = typer.Typer(
    help="Create, list and revoke API keys for the HTTP API.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
secrets_app = typer.Typer(
    help="Set, list and delete the secrets that case types name (values are never shown).",
    no_args_is_help=True,
)
app.add_typer(secrets_app, name="secrets")
types_app = typer.Typer(
    help="Administer case types: load documents, review drafts (submit, approve, reject), "
    "publish, list them, discard drafts, migrate open cases. Every verb that changes a case "
    "type records who ran it (--as, default: your login name).",
    no_args_is_help=True,
)
app.add_typer(types_app, name="case-types")
app.add_typer(connectors_app, name="connectors")
app.add_typer(projections_app, name="projections")
app.add_typer(analysts_app, name="analysts")
app.add_typer(audit_app, name="audit")
app.add_typer(subjects_app, name="subjects")


def _settings() -> Settings:
    logging.basicConfig(
        level=os.environ.get("CASELEDGER_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    try:
        return Settings()
    except ValidationError as error:  # its text would quote every setting, secrets included
        reasons = [str(e.get("ctx", {}).get("error", e["msg"])) for e in error.errors()]
        raise RuntimeError("; ".join(reasons)) from None


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@app.command()
def up() -> None:
    """Start the whole stack: embedded PostgreSQL and broker (unless DATABASE_URL or
    KAFKA_BOOTSTRAP_SERVERS point elsewhere), then the API and the workers. Prints the URLs
    and a development API key per role. Whatever exits is started again; Ctrl-C or SIGTERM
    stops what it started."""
    from infra.settings import STACK_ENV
    from infra.stack import clear_stale_stack_env, run_stack

    clear_stale_stack_env(Path(STACK_ENV))
    raise typer.Exit(run_stack(_settings()))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
) -> None:
    """Serve the HTTP API (needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS) in
    CASELEDGER_API_WORKERS processes on one port; a worker that dies is replaced."""
    import uvicorn

    from infra.metrics_dir import prepare_metrics_dir

    prepare_metrics_dir()  # first: its workers share their metrics there (infra.metrics_dir)
    from infra.bootstrap import bootstrap, build_api

    settings = _settings()
    if host is not None:
        settings = settings.model_copy(update={"api_host": host})
        if settings.environment == "production" and settings.production_problems():
            raise RuntimeError("; ".join(settings.production_problems()))
    container = bootstrap(settings, name="api")  # tables and built-in types, once for all
    try:
        build_api(container)  # refused here, in one line, rather than in each worker
    finally:
        container.close()
    uvicorn.run(API_APP, **server_options(settings, port or settings.api_port))


API_APP = "infra.cli:api_app"


def server_options(settings: Settings, port: int) -> dict[str, Any]:
    """How uvicorn serves the API (bench/http.py serves its baseline the same way): built by
    a factory in each of ``api_workers`` processes, on uvloop with the httptools parser (on
    the pure-Python h11 and asyncio, bench/http.py's no-op POST is 1.6-3x slower)."""
    return {
        "factory": True,
        "workers": settings.api_workers,
        "http": "httptools",
        "loop": "uvloop",
        "host": settings.api_host,
        "port": port,
        "log_level": "info",  # says in serve.log when a worker died and was replaced
        "access_log": False,
        "ssl_certfile": settings.tls_cert_file,
        "ssl_keyfile": settings.tls_key_file,
    }


def api_app() -> FastAPI:
    """The API of one server process, which uvicorn builds in each of its workers: each has
    its own connection pools, key cache and sandbox workers, closed when it stops. A worker
    ends with `serve` however `serve` ends (with SIGKILL, it would go on serving the port)."""
    from multiprocessing import parent_process

    from infra.bootstrap import bootstrap, build_api
    from infra.lifetime import end_with_parent

    parent = parent_process()
    if parent is not None and parent.pid is not None:
        end_with_parent(parent.pid)
    container = bootstrap(_settings(), name="api")
    api = build_api(container)
    serving = api.router.lifespan_context

    @asynccontextmanager
    async def closing_on_shutdown(app: FastAPI) -> AsyncIterator[Any]:
        async with serving(app) as state:
            yield state
        container.close()

    api.router.lifespan_context = closing_on_shutdown
    return api


def _run_worker(name: str, build: Callable[[Container], Worker]) -> None:
    """Run one long-lived worker until SIGINT or SIGTERM, through any outage of PostgreSQL
    or the broker (it waits for them at the start too)."""
    from infra.bootstrap import bootstrap
    from infra.outage import keep_running

    settings = _settings()
    stop = _stop_on_signals()
    log = logging.getLogger(f"caseledger.{name}")
    log.info("%s started", name)
    keep_running(name, lambda: bootstrap(settings, name=name), build, stop, log)


@app.command()
def relay() -> None:
    """Publish every stored event to the Kafka topic, in order (one active relay at a time;
    extra relays stand by and take over when it stops)."""
    _run_worker("relay", lambda container: container.relay)


@app.command()
def project() -> None:
    """Run a projection worker: keeps every read model (case list, case history, SLA timers
    and notification outbox) up to date from the topic. Run several to share the partitions;
    `caseledger projections --help` rebuilds, verifies and unblocks them."""
    from infra.bootstrap import build_projector

    _run_worker("projector", build_projector)


@app.command("sla-watch")
def sla_watch() -> None:
    """Record SLA warnings and breaches when they fall due (business hours of each case
    type's calendar). Each is recorded once, even across restarts or with several watchers."""
    from infra.bootstrap import build_sla_watcher

    _run_worker("sla-watcher", build_sla_watcher)


@app.command()
def ingest() -> None:
    """Run every loaded connector that caseledger reads itself (SQL tables, file drops, Kafka
    topics, RabbitMQ queues), each in its own thread, and pick up connectors loaded later.
    Webhooks need no worker: they arrive at the API."""
    from infra.bootstrap import build_ingest_worker

    _run_worker("ingest", build_ingest_worker)


@app.command("live-metrics")
def live_metrics() -> None:
    """Count cases opened, closed and SLA-breached per hour, and the backlog, live from the
    topic (a faust app; GET /live-metrics serves them). Run several to share the partitions."""
    from infra.live_metrics_worker import LiveMetricsWorker

    _run_worker("live-metrics", LiveMetricsWorker)


@app.command("audit-checkpoints")
def audit_checkpoints() -> None:
    """Sign the event logs' Merkle roots every CASELEDGER_AUDIT_CHECKPOINT_INTERVAL_S (when
    a log grew) and publish them on the audit topic (`caseledger audit --help`)."""
    from infra.audit_worker import Checkpointer

    _run_worker(
        "audit-checkpoints",
        lambda c: Checkpointer(c.audit, c.settings.audit_checkpoint_interval_s),
    )


@app.command("demo-feed", hidden=True)
def demo_feed() -> None:
    """Feed the demo silos of `caseledger up` (a claim row and a signed webhook every 5 s, a
    CSV export every 30 s)."""
    from infra.demo import DemoFeeder
    from infra.outage import keep_running

    settings = _settings()
    log = logging.getLogger("caseledger.demo-feed")
    keep_running("demo-feed", lambda: DemoFeeder(settings), lambda f: f, _stop_on_signals(), log)


@app.command()
def notify() -> None:
    """Send the notifications that case-type rules request (e-mail over CASELEDGER_SMTP_URL,
    webhooks, Kafka topics) and record on each case whether it was delivered."""
    from infra.bootstrap import build_notifier

    _run_worker("notifier", build_notifier)


def _operator(name: str | None) -> CommandContext:
    """Who runs a case-type verb, as recorded in its history: ``--as``, else the login name.
    The CLI runs beside the database: it trusts the name it is given, as it trusts whoever
    may read the database's password."""
    from domain.context import CommandContext

    actor = (name or "").strip() or _login_name()
    return CommandContext(actor_id=actor, actor_role="admin", source_system="cli")


def _login_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a user entry)
        return "operator"


Operator = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="who you are, recorded as the actor (use the label of your API key, so that "
        "four eyes knows you); default: your login name",
    ),
]


@types_app.command("load")
def case_types_load(
    files: Annotated[list[Path], typer.Argument(help="case-type documents (.yaml or .json)")],
    reason: Annotated[str, typer.Option(help="why, for the audit trail")] = "loaded from file",
    draft_only: Annotated[bool, typer.Option(help="save drafts without submitting them")] = False,
    no_review: Annotated[
        bool,
        typer.Option(
            "--no-review",
            help="publish at once, without four-eyes review; the history records that you "
            "waived it (for an operator installing a reviewed file, or an emergency)",
        ),
    ] = False,
    actor: Operator = None,
) -> None:
    """Draft case-type documents and submit them for review (four eyes): another reviewer
    approves each (`caseledger case-types approve`, or the studio), then it is published
    (`caseledger case-types publish`). With --no-review they are published at once and the
    waived review is recorded. A document whose content is already the current version is
    left alone, and one already waiting as a draft is not drafted twice; a document with
    problems is refused with each of them, and nothing of it is stored."""
    from infra.bootstrap import bootstrap
    from services.case_type_document import read_document

    if draft_only and no_review:
        typer.echo(
            "refused: --draft-only and --no-review contradict each other; pick one", err=True
        )
        raise typer.Exit(2)
    context = _operator(actor)
    container = bootstrap(_settings(), name="cli")
    registry = container.case_types
    failed = False
    try:
        for path in files:
            kind = "application/json" if path.suffix == ".json" else "application/yaml"
            try:
                document = read_document(path.read_bytes(), kind)
                name = str(document.get("name"))
                if (current := registry.current_version_of(document)) is not None:
                    typer.echo(f"{path}: {name} v{current} is current")
                    continue
                if no_review:
                    version = registry.install(
                        document, reason, context, waiver=f"--no-review by {context.actor_id}"
                    )
                    typer.echo(f"{path}: {name} v{version} is current (review waived)")
                    continue
                version = (
                    registry.waiting_draft_of(document)
                    or registry.draft(document, reason, context)[1]
                )
                if draft_only:
                    typer.echo(f"{path}: drafted {name} v{version}")
                    continue
                review = registry.version(name, version).review
                if review in ("draft", "rejected"):
                    registry.submit(name, version, reason, context)
                publish = f"caseledger case-types publish {name} {version}"
                typer.echo(
                    f"{path}: {name} v{version} is approved; publish it: {publish}"
                    if review == "approved"
                    else f"{path}: {name} v{version} awaits review: another reviewer approves "
                    f"it (caseledger case-types approve {name} {version} --as THEM --comment "
                    f"...), then: {publish}"
                )
            except (OSError, DomainError) as error:
                failed = True
                echo_refusal(path, error)
    finally:
        container.close()
    raise typer.Exit(1 if failed else 0)


def _review_step(
    verb: str, name: str, version: int, text: str, actor: str | None, done: str
) -> None:
    """Run one review verb of the registry; a refusal is printed with how to fix it."""
    from infra.bootstrap import bootstrap

    container = bootstrap(_settings(), name="cli")
    try:
        getattr(container.case_types, verb)(name, version, text, _operator(actor))
        typer.echo(f"{name} v{version} {done}")
    except DomainError as error:
        typer.echo(f"refused: {error.message}", err=True)
        for problem in getattr(error, "problems", []):
            typer.echo(f"  - {problem}", err=True)
        if error.hint:
            typer.echo(f"  {error.hint}", err=True)
        raise typer.Exit(1) from None
    finally:
        container.close()


Comment = Annotated[
    str, typer.Option(help="for the history: what to look at, or why you approve or reject")
]
Name = Annotated[str, typer.Argument(help="the case type")]
DraftVersion = Annotated[int, typer.Argument(help="the draft's version")]


@types_app.command("submit")
def case_types_submit(
    name: Name, version: DraftVersion, comment: Comment, actor: Operator = None
) -> None:
    """Submit draft VERSION of NAME for review. It is refused if the draft has problems."""
    _review_step("submit", name, version, comment, actor, "submitted for review")


@types_app.command("approve")
def case_types_approve(
    name: Name, version: DraftVersion, comment: Comment, actor: Operator = None
) -> None:
    """Approve a submitted draft (four eyes: not if you edited or submitted it; ask another
    reviewer). It can then be published."""
    _review_step("approve", name, version, comment, actor, "approved: it can be published")


@types_app.command("reject")
def case_types_reject(
    name: Name, version: DraftVersion, comment: Comment, actor: Operator = None
) -> None:
    """Send a submitted draft back to its authors, saying why (--comment); they edit it and
    submit it again."""
    _review_step("reject", name, version, comment, actor, "rejected")


@types_app.command("publish")
def case_types_publish(
    name: Name,
    version: DraftVersion,
    reason: Annotated[str, typer.Option(help="why, for the audit trail")] = "published from CLI",
    actor: Operator = None,
) -> None:
    """Publish an approved draft: new cases of NAME open under it. A draft that was not
    approved is refused (submit it, have another reviewer approve it)."""
    _review_step("publish", name, version, reason, actor, "published: new cases open under it")


@types_app.command("list")
def case_types_list() -> None:
    """List the case types with their current and latest versions."""
    from infra.bootstrap import bootstrap

    container = bootstrap(_settings(), name="cli")
    try:
        for summary in container.case_types.summaries():
            current = f"v{summary.current}" if summary.current else "unpublished"
            typer.echo(f"{summary.name:<24} current {current:<12} latest v{summary.latest}")
    finally:
        container.close()


@types_app.command("discard")
def case_types_discard(
    name: Annotated[str, typer.Argument(help="the case type")],
    version: Annotated[int, typer.Argument(help="the unpublished draft to discard")],
    reason: Annotated[str, typer.Option(help="why, for the audit trail")] = "discarded from CLI",
    actor: Operator = None,
) -> None:
    """Discard an unpublished draft of NAME: it leaves every list and its number is not used
    again; the case type's history keeps who discarded it and why."""
    from infra.bootstrap import bootstrap

    container = bootstrap(_settings(), name="cli")
    try:
        container.case_types.discard(name, version, reason, _operator(actor))
    except DomainError as error:
        typer.echo(f"refused: {error.message}\n  {error.hint}", err=True)
        raise typer.Exit(1) from None
    finally:
        container.close()
    typer.echo(f"{name} v{version} discarded")


types_app.command("what-if")(case_types_what_if)  # infra.audit_replay_cli


@types_app.command("migrate")
def case_types_migrate(
    name: Annotated[str, typer.Argument(help="the case type")],
    to: Annotated[int, typer.Option("--to", help="the published version to migrate to")],
    state: Annotated[
        list[str] | None, typer.Option("--map", help="OLD=NEW state mapping; repeat as needed")
    ] = None,
    apply: Annotated[bool, typer.Option(help="migrate for real (default: dry run)")] = False,
) -> None:
    """Migrate the open cases of NAME to version --to. Without --apply this is a dry run that
    reports, case by case, what would change; with --apply each case records a Migrated
    event. A progress bar shows how far it is."""
    from rich.progress import Progress

    from infra.bootstrap import INSTALLER, bootstrap
    from services.migrations import check_state_map, migrate_cases

    state_map = dict(pair.split("=", 1) for pair in state or [] if "=" in pair)
    container = bootstrap(_settings(), name="cli")
    try:
        new = container.case_types.definition(name, to)
        check_state_map(new, state_map)
        ids = container.case_list.open_case_ids(name, to)
        with Progress(transient=False) as progress:
            task = progress.add_task("dry run" if not apply else "migrating", total=len(ids))
            reports = migrate_cases(
                container.ledger,
                ids,
                new,
                state_map,
                not apply,
                INSTALLER,
                progress=lambda _: progress.advance(task),
            )
    finally:
        container.close()
    for report in reports:
        detail = "; ".join(report.problems + report.warnings)
        typer.echo(
            f"{report.case_id}  v{report.from_version} {report.from_status} -> "
            f"v{to} {report.to_status or '-'}  {report.outcome}  {detail}"
        )
    counts: dict[str, int] = {}
    for report in reports:
        counts[report.outcome] = counts.get(report.outcome, 0) + 1
    typer.echo(", ".join(f"{n} {outcome}" for outcome, n in counts.items()) or "no open cases")


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="the role the key acts in", case_sensitive=False)],
    label: Annotated[str, typer.Option(help="who or what holds the key (shown as the actor)")] = "",
    expires_in: Annotated[
        str | None, typer.Option(help="how long the key works: 30d, 12h, 90m (default: ever)")
    ] = None,
) -> None:
    """Create an API key for ROLE and print it (it is shown only once)."""
    from infra.bootstrap import bootstrap
    from services.auth import parse_lifetime

    lifetime = parse_lifetime(expires_in) if expires_in is not None else None
    container = bootstrap(_settings(), name="cli")
    try:
        typer.echo(container.keys.create(role, label, lifetime))
    finally:
        container.close()


@keys_app.command("list")
def keys_list() -> None:
    """List every key: id, role, label, when it was created, expires and was revoked (never
    the key itself)."""
    from infra.bootstrap import bootstrap

    container = bootstrap(_settings(), name="cli")
    try:
        holders = container.keys.list()
    finally:
        container.close()
    for holder in holders:
        dates = [f"created {_day(holder.created_at)}"]
        if holder.expires_at is not None:
            dates.append(f"expires {_day(holder.expires_at)}")
        if holder.revoked_at is not None:
            dates.append(f"revoked {_day(holder.revoked_at)}")
        typer.echo(
            f"{holder.key_id}  {holder.role.value:<10}  {holder.label or '-':<20}  "
            + "  ".join(dates)
        )


def _day(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "?"


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id, as `caseledger keys list` shows")],
) -> None:
    """Revoke a key: every API process refuses it within a second."""
    from infra.bootstrap import bootstrap

    container = bootstrap(_settings(), name="cli")
    try:
        holder = container.keys.revoke(key_id)
    finally:
        container.close()
    typer.echo(f"{holder.key_id} ({holder.role.value}, {holder.label or 'no label'}) revoked")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for scripts")] = False,
) -> None:
    """Show the database, the broker and topic, the position and lag of the relay and of
    each projection (lag is counted against the event store's head), and the SLA timers and
    notifications waiting (overdue timers mean the SLA watcher is not running)."""
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
    partitions = kafka.get("partitions") or "not created yet"
    typer.echo(
        f"kafka:     {kafka['bootstrap_servers']}  topic {kafka['topic']}"
        f"  partitions {partitions} (configured {kafka['configured']})"
        if "error" not in kafka
        else f"kafka:     {kafka['bootstrap_servers']}  unavailable: {kafka['error']}"
    )
    if "warning" in kafka:
        typer.echo(f"  warning: {kafka['warning']}")
    typer.echo(f"store:     head position {report['event_store']['head_position']}")
    relay_state = report["relay"]
    typer.echo(f"relay:     position {relay_state['position']}  lag {relay_state['lag']}")
    for name, state in report["projections"].items():
        applied = state.get("applied_events", 0)
        held = state.get("held_cases", 0)
        typer.echo(
            f"projection {name}: position {state.get('max_position', 0)}  applied {applied}"
            f"  lag {state['lag']}"
            + (f"  {held} cases held (caseledger projections status {name})" if held else "")
        )
    work = report["work"]
    typer.echo(
        f"SLA timers: {work['sla_timers']} running, {work['sla_overdue']} overdue   "
        f"notifications: {work['notifications_pending']} pending, "
        f"{work['notifications_retrying']} retrying"
    )
    for name, connector in report.get("connectors", {}).items():
        run = connector["last_run"]
        typer.echo(
            f"connector {name} v{connector['version']} ({connector['kind']}): last run seen "
            f"{run['seen']}, ingested {run['ingested']}, duplicates {run['duplicates']}, "
            f"quarantined {run['quarantined']}; {connector['quarantine_waiting']} waiting"
        )


@app.command()
def contracts(
    out: Annotated[Path, typer.Option(help="folder to write them to")] = Path("docs"),
) -> None:
    """Write the public contracts generated from the code: the event envelope's JSON Schema
    (`case-event-envelope.schema.json`), one JSON Schema per event type
    (`events/<EventType>.schema.json`), the AsyncAPI document of the Kafka topics
    (`asyncapi.yaml`) and the HTTP API's OpenAPI document (`openapi.json`). Event schemas of
    event types that no longer exist are removed."""
    from services.api.openapi import openapi_text
    from services.contract import EVENTS_FOLDER, contract_files

    topic = Settings.model_fields["kafka_topic"].default  # the default the documents name
    files = {**contract_files(topic), "openapi.json": openapi_text()}
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    for stale in (out / EVENTS_FOLDER).glob("*.schema.json"):
        if f"{EVENTS_FOLDER}/{stale.name}" not in files:
            stale.unlink()
            typer.echo(f"removed {stale}")
    typer.echo(f"wrote {len(files)} contracts to {out}/")


@secrets_app.command("set")
def secrets_set(
    name: Annotated[str, typer.Argument(help="the name case types use (secret: NAME)")],
) -> None:
    """Create or replace the secret NAME; its value is asked for without being echoed (or
    read from standard input). A webhook sends it as its Authorization header, e.g.
    `Bearer abc123`."""
    from infra.bootstrap import bootstrap

    value = typer.prompt("value", hide_input=True)
    _on_secrets(bootstrap(_settings(), name="cli"), lambda store: store.set(name, value))
    typer.echo(f"secret {name} is set")


@secrets_app.command("list")
def secrets_list() -> None:
    """List the secrets' names and dates (never their values)."""
    from infra.bootstrap import bootstrap

    container = bootstrap(_settings(), name="cli")
    try:
        entries = container.secrets.entries()
    finally:
        container.close()
    for entry in entries:
        typer.echo(
            f"{entry.name:<32} created {entry.created_at:%Y-%m-%d %H:%M}  "
            f"updated {entry.updated_at:%Y-%m-%d %H:%M}"
        )
    if not entries:
        typer.echo("no secrets; set one with `caseledger secrets set NAME`")


@secrets_app.command("delete")
def secrets_delete(name: Annotated[str, typer.Argument(help="the secret to delete")]) -> None:
    """Delete the secret NAME; webhooks naming it fail until it is set again."""
    from infra.bootstrap import bootstrap

    _on_secrets(bootstrap(_settings(), name="cli"), lambda store: store.delete(name))
    typer.echo(f"secret {name} is deleted")


def _on_secrets(container: Container, change: Callable[[SecretStore], None]) -> None:
    """Run ``change`` on the secrets; a refusal prints its reason and hint, and exits 1."""
    from domain.errors import DomainError

    try:
        change(container.secrets)
    except DomainError as error:
        typer.echo(f"refused: {error.message}\n  {error.hint}", err=True)
        raise typer.Exit(1) from None
    finally:
        container.close()


def main() -> None:
    """Run the CLI, turning configuration and connection failures into one clear line."""
    from psycopg import OperationalError

    from domain.errors import DomainError

    try:
        app()
    except (RuntimeError, OperationalError, DomainError) as error:
        typer.echo(f"caseledger: {error}", err=True)
        if isinstance(error, DomainError) and error.hint:
            typer.echo(f"  {error.hint}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
