"""``caseledger up``: the whole stack in one command, on embedded servers by default."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import typer

from infra.bootstrap import SAMPLE_CASE_TYPES, bootstrap, install_case_types
from infra.embedded import EmbeddedBroker, MailSink, free_port, start_postgres
from infra.keys import PostgresKeyStore, development_label
from infra.settings import STACK_ENV, Settings
from services.auth import Role

CHILDREN = ("serve", "relay", "project", "sla-watch", "notify")


def run_stack(settings: Settings) -> int:
    if settings.environment == "production":
        raise RuntimeError(
            "`caseledger up` is for development (embedded servers, development keys): in "
            "production run `serve`, `relay`, `project`, `sla-watch` and `notify` as services"
        )
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    database_url, bootstrap_servers = settings.database_url, settings.kafka_bootstrap_servers
    _server = broker = mail = None
    children: list[subprocess.Popen[bytes]] = []
    try:
        if not database_url:
            typer.echo("starting embedded PostgreSQL ...")
            _server, database_url = start_postgres(settings.data_dir)
        if not bootstrap_servers:
            typer.echo("starting embedded Kafka-protocol broker (Tansu, in memory) ...")
            broker = EmbeddedBroker(settings.broker_port, log_dir / "broker.log").start()
            bootstrap_servers = broker.bootstrap
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
        children = [_spawn(verb, env, log_dir) for verb in CHILDREN]
        Path(STACK_ENV).write_text(
            f"DATABASE_URL={database_url}\nKAFKA_BOOTSTRAP_SERVERS={bootstrap_servers}\n"
        )
        _announce(resolved, keys, log_dir, mail.folder if mail else None)
        return _watch(children)
    finally:
        Path(STACK_ENV).unlink(missing_ok=True)
        _stop(children)
        if broker:
            broker.stop()
        if mail:
            mail.stop()
        typer.echo("stopped.")


def _prepare(settings: Settings) -> dict[str, str]:
    """Create the tables, load the sample case types and make the development keys before
    the children start."""
    container = bootstrap(settings, name="up")
    try:
        versions = install_case_types(container.case_types, SAMPLE_CASE_TYPES)
        typer.echo("case types: " + ", ".join(f"{n} v{v}" for n, v in versions.items()))
        return _development_keys(container.keys, settings.data_dir / "dev-keys.json")
    finally:
        container.close()


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()


def _spawn(verb: str, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    """Start ``caseledger VERB`` as a child process logging to ``log_dir``."""
    log = open(log_dir / f"{verb}.log", "ab")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        [sys.executable, "-m", "infra.cli", verb], env=env, stdout=log, stderr=subprocess.STDOUT
    )


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
    typer.echo(f"  Kafka topic {settings.kafka_topic} on {settings.kafka_bootstrap_servers}")
    typer.echo(f"  logs in {log_dir}/   status: caseledger status")
    if mail is not None:
        typer.echo(f"  e-mail notifications are filed in {mail}/ (no mail relay configured)")
    typer.echo("  development API keys (Authorization: Bearer <key>):")
    for role, key in keys.items():
        typer.echo(f"    {role:<11} {key}")
    typer.echo("Ctrl-C stops everything.")


def _watch(children: list[subprocess.Popen[bytes]]) -> int:
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        for verb, child in zip(CHILDREN, children, strict=True):
            if child.poll() is not None:
                typer.echo(f"caseledger {verb} exited ({child.returncode}); see its log. Stopping.")
                return 1
        time.sleep(0.5)
    return 0
