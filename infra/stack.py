"""``caseledger up``: the whole stack in one command, on embedded servers by default."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import psutil
import typer

from infra.bootstrap import SAMPLE_CASE_TYPES, bootstrap, install_case_types
from infra.demo import drop_folder, install_demo
from infra.embedded import EmbeddedBroker, EmbeddedPostgres, MailSink, free_port, port_open
from infra.keys import PostgresKeyStore, development_label
from infra.lifetime import ChildProcess, die_with_parent
from infra.settings import STACK_ENV, Settings
from infra.supervisor import Supervisor
from services.auth import Role

CHILDREN = (
    "serve",
    "relay",
    "project",
    "sla-watch",
    "notify",
    "ingest",
    "live-metrics",
    "audit-checkpoints",
)
_OWNER = "# written by caseledger up, pid "


def clear_stale_stack_env(path: Path) -> None:
    """Remove ``path`` when the `up` that wrote it is gone; refuse to start a second `up`
    beside one that still runs (its file tells `status` and `keys` where the stack is)."""
    if not path.exists():
        return
    first = path.read_text(errors="replace").partition("\n")[0]
    owner = first.removeprefix(_OWNER)
    pid = int(owner) if first.startswith(_OWNER) and owner.isdigit() else 0
    if pid and pid != os.getpid() and psutil.pid_exists(pid):
        raise RuntimeError(
            f"another `caseledger up` (pid {pid}) runs in this folder: stop it first (Ctrl-C "
            "in its terminal), or start this one from another folder"
        )
    path.unlink(missing_ok=True)  # left by a stack that did not stop cleanly


def run_stack(settings: Settings) -> int:
    """Start the stack, keep it running (see :mod:`infra.supervisor`) until Ctrl-C or
    SIGTERM, then stop what it started."""
    if settings.environment == "production":
        raise RuntimeError(
            "`caseledger up` is for development (embedded servers, development keys): in "
            "production run `serve`, `relay`, `project`, `sla-watch` and `notify` as services"
        )
    if port_open(settings.api_port):
        raise RuntimeError(
            f"port {settings.api_port} is taken (another `caseledger up`?): stop what listens "
            "there, or set CASELEDGER_API_PORT"
        )
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    database_url, bootstrap_servers = settings.database_url, settings.kafka_bootstrap_servers
    supervisor = Supervisor(say=typer.echo)
    mail = None
    stack_env, announced = Path(STACK_ENV), False
    try:
        if not bootstrap_servers:
            typer.echo("starting embedded Kafka-protocol broker (Tansu, in memory) ...")
            broker = EmbeddedBroker(settings.broker_port, log_dir / "broker.log").start()
            supervisor.keep(broker)
            bootstrap_servers = broker.bootstrap
        if not database_url:
            postgres = _start_postgres(settings.data_dir, log_dir)
            supervisor.keep(postgres)
            database_url = postgres.url
        update: dict[str, object] = {
            "database_url": database_url,
            "kafka_bootstrap_servers": bootstrap_servers,
        }
        if not settings.smtp_url:
            mail = MailSink(settings.data_dir / "mail", free_port()).start()
            update["smtp_url"] = mail.url
            if settings.notify_role_addresses == "{}":
                update["notify_role_addresses"] = json.dumps(
                    {role.value: [f"{role.value}@caseledger.local"] for role in Role}
                )
        resolved = settings.model_copy(update=update)
        keys = _prepare(resolved)
        env = {**os.environ, **resolved.as_env()}
        children = CHILDREN + (("demo-feed",) if resolved.demo_silos else ())
        supervisor.keep(*(Child(verb, env, log_dir).start() for verb in children))
        stack_env.write_text(
            f"{_OWNER}{os.getpid()}\n"
            f"DATABASE_URL={database_url}\nKAFKA_BOOTSTRAP_SERVERS={bootstrap_servers}\n"
        )
        announced = True
        _announce(resolved, keys, log_dir, mail.folder if mail else None)
        supervisor.watch(_stop_on_signals())
        return 0
    finally:
        if announced:  # a failed `up` leaves the file of a stack that runs
            stack_env.unlink(missing_ok=True)
        supervisor.stop()
        if mail:
            mail.stop()
        typer.echo("stopped.")


def _start_postgres(data_dir: Path, log_dir: Path) -> EmbeddedPostgres:
    typer.echo("starting embedded PostgreSQL ...")
    postgres = EmbeddedPostgres(data_dir, log_dir / "postgres.log").start()
    if postgres.reused_pid is not None:
        typer.echo(
            f"  reusing the one already running on {postgres.pgdata} (pid {postgres.reused_pid});"
            " it keeps running when this stack stops"
        )
    return postgres


def _prepare(settings: Settings) -> dict[str, str]:
    """Create the tables, load the sample case types and make the development keys before
    the children start."""
    container = bootstrap(settings, name="up")
    try:
        versions = install_case_types(container.case_types, SAMPLE_CASE_TYPES)
        typer.echo("case types: " + ", ".join(f"{n} v{v}" for n, v in versions.items()))
        if settings.demo_silos and settings.database_url:
            loaded = install_demo(container, settings.database_url)
            typer.echo(
                "demo silos (CASELEDGER_DEMO_SILOS=false turns them off): connectors "
                + ", ".join(loaded)
                + f"; CSV drops go to {drop_folder(settings)}"
            )
        return _development_keys(container.keys, settings.data_dir / "dev-keys.json")
    finally:
        container.close()


class Child(ChildProcess):
    """``caseledger VERB`` as a child process of ``up``, logging to ``log_dir/VERB.log``.

    It is killed (SIGKILL) when ``up`` dies without stopping it: every process of the stack
    is built to be killed, and on SIGTERM a worker would first wait, up to a minute, for the
    PostgreSQL that died with ``up``."""

    def __init__(self, verb: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = verb
        self.env = env
        self.log_path = log_dir / f"{verb}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "infra.cli", self.name],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,  # a Ctrl-C in the terminal reaches `up`, which stops it
                preexec_fn=die_with_parent(signal.SIGKILL),  # noqa: PLW1509 - see infra.lifetime
            )
        return self


def _development_keys(store: PostgresKeyStore, path: Path) -> dict[str, str]:
    """One key per role, made on the first run and kept in ``path`` for the next ones."""
    keys: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    now = datetime.now(UTC)
    for role in Role:
        key = keys.get(role.value)
        holder = store.holder_of(key) if key else None
        if holder is None or holder.refusal(now) is not None:  # new, revoked or expired
            keys[role.value] = store.create(role, label=development_label(role))
    path.write_text(json.dumps(keys, indent=2))
    path.chmod(0o600)
    return keys


def _announce(settings: Settings, keys: dict[str, str], log_dir: Path, mail: Path | None) -> None:
    base = f"http://{settings.api_host}:{settings.api_port}"
    typer.echo("")
    typer.echo(f"caseledger is up:  API {base}   docs {base}/docs   health {base}/health")
    typer.echo(f"  the API runs in {settings.api_workers} processes (CASELEDGER_API_WORKERS)")
    typer.echo(f"  Kafka topic {settings.kafka_topic} on {settings.kafka_bootstrap_servers}")
    typer.echo(f"  logs in {log_dir}/   status: caseledger status")
    if mail is not None:
        typer.echo(f"  e-mail notifications are filed in {mail}/ (no mail relay configured)")
    typer.echo("  development API keys (Authorization: Bearer <key>):")
    for role, key in keys.items():
        typer.echo(f"    {role:<11} {key}")
    typer.echo("Ctrl-C stops everything; whatever exits meanwhile is started again.")


def _stop_on_signals() -> threading.Event:
    """Set on Ctrl-C, SIGTERM or SIGHUP (the terminal closed): the only ways to stop."""
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stopping.set())
    return stopping
