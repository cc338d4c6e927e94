"""`caseledger up` supervises: whatever process of the stack dies comes back within seconds
while the API answers, a killed `up` leaves no process behind, and a failed `up` stops
nothing it did not start. Real processes, real servers, real signals."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import httpx2 as httpx
import psutil
import psycopg
import pytest

from infra.embedded import EmbeddedPostgres, free_port, port_open
from tests.e2e.up_process import RunningUp, healthy, running_up, up_env
from tests.integration.helpers import wait_until

WORKERS = ("relay", "project", "sla-watch", "notify")
RECOVERY_S = 90  # "within seconds" on a loaded 2-core machine; the test prints the real figures


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningUp]:
    with running_up(tmp_path_factory.mktemp("up"), free_port(), free_port()) as running:
        yield running


def handler(up: RunningUp) -> dict[str, str]:
    return {"Authorization": f"Bearer {up.keys['handler']}"}


def open_case(up: RunningUp, title: str) -> str | None:
    """The id of a case opened through the API, or None if the API refused or did not answer."""
    try:
        answer = httpx.post(
            f"{up.base}/cases",
            json={"case_type": "generic", "title": title},
            headers=handler(up),
            timeout=10,
        )
    except httpx.HTTPError:
        return None
    return str(answer.json()["id"]) if answer.status_code == 201 else None


def listed_ids(up: RunningUp) -> set[str]:
    """Every case id in the case list (the read model fed through Kafka)."""
    ids: set[str] = set()
    cursor: str | None = None
    while True:
        params = {"limit": "500"} | ({"cursor": cursor} if cursor else {})
        page = httpx.get(f"{up.base}/cases", params=params, headers=handler(up), timeout=10)
        assert page.status_code == 200, page.text
        ids |= {case["id"] for case in page.json()["cases"]}
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return ids


class ViewProbe:
    """Opens a case at its first call, then tells whether the case list shows it: whether
    the relay, the broker and the projector all work again."""

    def __init__(self, up: RunningUp) -> None:
        self.up = up
        self.case_id: str | None = None

    def __call__(self) -> bool:
        if self.case_id is None:
            self.case_id = open_case(self.up, f"probe {uuid4()}")
            return False
        return self.case_id in listed_ids(self.up)


@dataclass
class Load:
    """Cases opened one after the other in a thread, each answer kept with its time."""

    up: RunningUp
    acknowledged: list[str] = field(default_factory=list)
    refused: list[tuple[float, float]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.wait(0.02):
            sent = time.monotonic()
            case_id = open_case(self.up, f"load {len(self.acknowledged)}")
            if case_id is None:
                self.refused.append((sent, time.monotonic()))
            else:
                self.acknowledged.append(case_id)


def kill_and_wait_back(up: RunningUp, name: str, back: Callable[[], bool]) -> tuple[float, float]:
    """SIGKILL the child ``name`` of `up`; returns when it was killed and when ``back`` held
    after `up` had said so and started a new one."""
    old = up.child(name)
    assert old is not None, f"`up` runs no {name}"
    killed = time.monotonic()
    old.kill()
    wait_until(lambda: up.said(f"{name} exited (-9); restarting in"), 30, f"`up` to say {name}")
    new = lambda: (child := up.child(name)) is not None and child.pid != old.pid  # noqa: E731
    try:
        wait_until(new, RECOVERY_S, f"a new {name}")
        wait_until(back, RECOVERY_S, f"{name} to be back")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{''.join(up.lines[-20:])}\n{up.logs()}") from None
    return killed, time.monotonic()


@pytest.mark.slow
def test_every_process_up_loses_is_back_within_seconds_and_no_acknowledged_case_is_lost(
    up: RunningUp,
) -> None:
    def api_answers() -> bool:
        return open_case(up, "after the restart") is not None

    load = Load(up)
    loader = threading.Thread(target=load.run)
    loader.start()
    outages: dict[str, tuple[float, float]] = {}
    try:
        for name in WORKERS:
            outages[name] = kill_and_wait_back(up, name, lambda: True)
        for name in ("relay", "project", "broker"):
            outages[f"{name} (view)"] = kill_and_wait_back(up, name, ViewProbe(up))
        outages["serve"] = kill_and_wait_back(up, "serve", lambda: healthy(up.api_port))
        outages["postgres"] = kill_and_wait_back(up, "postgres", api_answers)
    finally:
        load.stop.set()
        loader.join(30)
    print("\nrecovery after SIGKILL, s:")
    for name, (killed, back) in outages.items():
        print(f"  {name:<14} {back - killed:5.1f}")
    print(f"  {len(load.acknowledged)} cases acknowledged, {len(load.refused)} refused")

    def during_an_outage_of_the_api(sent: float, answered: float) -> bool:
        return any(
            sent <= outages[name][1] and answered >= outages[name][0]
            for name in ("serve", "postgres")
        )

    assert len(load.acknowledged) > 100
    assert [r for r in load.refused if not during_an_outage_of_the_api(*r)] == []
    wait_until(
        lambda: set(load.acknowledged) <= listed_ids(up), RECOVERY_S, "every case in the view"
    )


def test_a_killed_broker_is_restarted_on_its_port_and_the_view_heals(up: RunningUp) -> None:
    killed, back = kill_and_wait_back(up, "broker", lambda: port_open(up.broker_port))
    print(f"\nbroker back on port {up.broker_port} in {back - killed:.1f} s")
    wait_until(ViewProbe(up), RECOVERY_S, "a case opened after the restart in the view")


def on_the_fast_server_stack(worker: psutil.Process) -> bool:
    """Whether the process runs uvicorn on uvloop's event loop and httptools' parser."""
    mapped = " ".join(m.path for m in worker.memory_maps())
    return "/uvloop/loop." in mapped and "/httptools/parser/parser." in mapped


def test_the_api_runs_in_two_fast_workers_and_a_killed_one_is_replaced(up: RunningUp) -> None:
    wait_until(lambda: len(up.api_workers()) == 2, RECOVERY_S, "two API workers")
    serve, first = up.child("serve"), up.api_workers()
    assert all(on_the_fast_server_stack(worker) for worker in first)
    first[0].kill()

    def replaced() -> bool:
        workers = up.api_workers()
        return len(workers) == 2 and first[0] not in workers and first[1] in workers

    wait_until(replaced, RECOVERY_S, "a new API worker beside the one left")
    serve_log = up.folder / ".caseledger" / "logs" / "serve.log"
    assert f"Child process [{first[0].pid}] died" in serve_log.read_text()
    first[1].suspend()  # now only the new worker can take a connection
    try:
        wait_until(lambda: open_case(up, "served by the new worker") is not None, RECOVERY_S,
                   "the new worker to open a case")  # fmt: skip
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):  # uvicorn kills one that hangs 5 s
            first[1].resume()
    assert up.child("serve") == serve  # uvicorn replaced its worker, `up` had nothing to do


def test_killing_up_leaves_no_process_behind(up: RunningUp) -> None:
    family = psutil.Process(up.process.pid).children(recursive=True)
    names = ("serve", *WORKERS, "broker", "postgres")
    assert all(up.child(name) is not None for name in names), [p.cmdline() for p in family]
    up.process.kill()
    _, alive = psutil.wait_procs(family, timeout=30)
    assert [p.cmdline() for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []
    assert not port_open(up.api_port) and not port_open(up.broker_port)


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """An embedded PostgreSQL in a project folder, started by someone other than `up`."""
    folder = tmp_path_factory.mktemp("project")
    server = EmbeddedPostgres(folder / ".caseledger", folder / "postgres.log").start()
    yield server
    server.terminate()
    server.wait_stopped()


def answers(url: str) -> bool:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


def test_a_failed_up_leaves_running_the_postgresql_it_did_not_start(
    postgres: EmbeddedPostgres,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        failed = subprocess.run(
            [sys.executable, "-m", "infra.cli", "up"],
            check=False,
            cwd=postgres.pgdata.parent.parent,
            env=up_env(free_port(), port),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert failed.returncode == 1, failed.stdout
    assert f"port {port} is taken" in failed.stderr
    assert postgres.exited() is None and answers(postgres.url)


def test_a_reused_postgresql_is_left_running_by_the_one_that_reused_it(
    postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    reuser = EmbeddedPostgres(postgres.pgdata.parent, tmp_path / "postgres.log").start()
    assert postgres.process is not None and reuser.reused_pid == postgres.process.pid
    reuser.terminate()
    reuser.wait_stopped()
    assert reuser.exited() is None and answers(postgres.url)
