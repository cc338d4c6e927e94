"""`caseledger up` as a real process in a folder of its own, for the end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import psutil

from tests.integration.helpers import wait_until

READY_LINE = "Ctrl-C stops everything"


@dataclass
class RunningUp:
    """A running `caseledger up`: its process, the API keys and every line it printed."""

    process: subprocess.Popen[str]
    folder: Path
    api_port: int
    broker_port: int
    lines: list[str] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def said(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def child(self, name: str) -> psutil.Process | None:
        """The live child of `up` that runs ``name``: a `caseledger` verb, ``broker`` or
        ``postgres``."""
        for process in psutil.Process(self.process.pid).children():
            try:
                if process.status() != psutil.STATUS_ZOMBIE and _runs(process.cmdline(), name):
                    return process
            except psutil.NoSuchProcess:
                continue
        return None

    def api_workers(self) -> list[psutil.Process]:
        """The live processes that serve the API: uvicorn's workers, children of `serve`."""
        serve = self.child("serve")
        if serve is None:
            return []
        workers = []
        for process in serve.children():
            try:
                if "--multiprocessing-fork" in process.cmdline() and process.status() != (
                    psutil.STATUS_ZOMBIE
                ):
                    workers.append(process)
            except psutil.NoSuchProcess:
                continue
        return workers

    def logs(self) -> str:
        return "".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
            for log in sorted((self.folder / ".caseledger" / "logs").glob("*.log"))
        )

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)


def _runs(cmdline: list[str], name: str) -> bool:
    if name == "postgres":
        return bool(cmdline) and Path(cmdline[0]).name == "postgres"
    if name == "broker":
        return cmdline[1:2] == ["broker"]
    return cmdline[-2:] == ["infra.cli", name]


def up_env(api_port: int, broker_port: int, demo: bool = False) -> dict[str, str]:
    """The environment of an `up` on embedded servers and the given ports (without the
    demo silos unless asked: their thousands of cases would flood what a test watches)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")
    }
    return env | {
        "CASELEDGER_API_PORT": str(api_port),
        "CASELEDGER_BROKER_PORT": str(broker_port),
        "CASELEDGER_API_WORKERS": "2",  # as on a 2-CPU machine, whatever this one has
        "CASELEDGER_DEMO_SILOS": str(demo).lower(),
    }


@contextmanager
def running_up(
    cwd: Path, api_port: int, broker_port: int, demo: bool = False
) -> Iterator[RunningUp]:
    """Run `caseledger up` in ``cwd`` until the API answers; stop it with Ctrl-C after the
    block (unless the block ended it) and check that it stopped cleanly."""
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "up"],
        cwd=cwd,
        env=up_env(api_port, broker_port, demo),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    up = RunningUp(process, cwd, api_port, broker_port)
    threading.Thread(target=up._read, daemon=True).start()
    try:
        try:
            wait_until(lambda: up.said(READY_LINE) or process.poll() is not None, 120, "`up`")
            assert up.said(READY_LINE), "caseledger up stopped early"
            wait_until(lambda: healthy(api_port), 60, "the API to answer /health")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{''.join(up.lines)}\n{up.logs()}") from None
        up.keys = dict(
            re.findall(
                r"^\s+(admin|manager|handler|integrator|auditor)\s+(\S+)$", "".join(up.lines), re.M
            )
        )
        yield up
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(60)
            assert process.returncode == 0, "".join(up.lines)


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False
