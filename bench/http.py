"""Benchmark 6: notes over HTTP with the whole stack running, vs a no-op FastAPI POST.

``caseledger serve``, ``relay`` and ``project`` run as real processes on a fresh database
and broker; `wrk` (Debian's package; ``make bench`` installs it) keeps CONNECTIONS
keep-alive connections busy POSTing ``/cases/{id}/notes`` (a) on SHARED_CASES cases chosen
at random, where two notes often race for one case (no ``expected_version``: the server
retries), and (b) on distinct cases, each thread going round its own cases, so that no two
requests in flight touch one case. The baseline, measured in the same run by the same wrk
with the same body, is a FastAPI POST that parses the body and does nothing, served by
uvicorn with the API's own options (``infra.cli.server_options``: workers, httptools,
uvloop). The same no-op served by h11 on asyncio (uvicorn without ``[standard]``) shows
what the fast server stack brings. Every answer that is not 2xx is counted (a Lua
``response`` hook) and printed: a rate made of failures would mean nothing.

Run on its own: ``.venv/bin/python -m bench.http [--quick]`` (from the project root).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.common import CONSOLE, CTX, BenchEnv, Figure, Scale, bench_environment, run_alone
from bench.latency import PROJECT_ROOT, check_alive, processes, stop_child
from infra.embedded import free_port
from infra.settings import Settings
from services.auth import Role

NAME = "http"
CONNECTIONS = 32
THREADS = 2
SHARED_CASES = 64
DISTINCT_CASES = 1_024  # per thread 512, far more than the 16 requests it has in flight
START_TIMEOUT = 90.0
BODY = json.dumps({"text": "called the customer back"})
LUA = Path(__file__).with_name("http_notes.lua")


@dataclass(frozen=True)
class Load:
    """What one wrk run measured."""

    requests: int
    non_2xx: int
    statuses: dict[str, int]
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def ok_per_s(self) -> float:
        return (self.requests - self.non_2xx) / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        failed = (
            f", [red]{self.non_2xx:,} not 2xx {self.statuses}[/]" if self.non_2xx else ", all 2xx"
        )
        errors = f", [red]{self.errors:,} socket errors/timeouts[/]" if self.errors else ""
        return (
            f"{self.ok_per_s:,.0f}/s 2xx (p50 {self.p50_ms:,.1f} ms, p99 {self.p99_ms:,.1f} ms)"
            f"{failed}{errors}"
        )


def wrk(url: str, seconds: float, cases: list[str], mode: str, authorization: str = "-") -> Load:
    """Run wrk against ``url`` for ``seconds`` on ``cases`` (``mode``: shared or distinct)."""
    raw = run_wrk(url, seconds, LUA, [mode, str(THREADS), BODY, authorization, *cases])
    return load_of(raw)


def run_wrk(url: str, seconds: float, script: Path, setup: list[str]) -> dict[str, Any]:
    """Run wrk with the Lua ``script``, which reads the lines ``setup`` from the file named
    after the URL and prints ``WRK_JSON {...}`` in its ``done``; answers that JSON."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: `make bench` installs it (apt-get install wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as lines:
        lines.write("\n".join(setup) + "\n")
    args = [
        "wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds:.0f}s", "--timeout", "10s",
        "-s", str(script), url, lines.name,
    ]  # fmt: skip
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, check=False, timeout=seconds + 60
        )
    finally:
        Path(lines.name).unlink()
    marker = done.stdout.rfind("WRK_JSON ")
    if done.returncode != 0 or marker < 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw: dict[str, Any] = json.loads(done.stdout[marker + len("WRK_JSON ") :].splitlines()[0])
    return raw


def load_of(raw: dict[str, Any]) -> Load:
    """The figures of a wrk run, from what the Lua scripts print."""
    return Load(
        requests=int(raw["requests"]),
        non_2xx=int(raw["non_2xx"]),
        statuses={str(k): int(v) for k, v in (raw["statuses"] or {}).items()},
        errors=sum(int(v) for v in raw["errors"].values()),
        seconds=float(raw["duration_us"]) / 1e6,
        p50_ms=float(raw["p50_us"]) / 1000,
        p99_ms=float(raw["p99_us"]) / 1000,
    )


# --- baseline: a no-op FastAPI POST ----------------------------------------------------


@contextmanager
def noop_server(settings: Settings, fast: bool, log: Path) -> Iterator[str]:
    code = f"from bench.noop_api import serve; serve({settings.model_dump_json()!r}, {fast})"
    with open(log, "ab") as out:
        child = subprocess.Popen(
            [sys.executable, "-c", code], cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        base = f"http://127.0.0.1:{settings.api_port}"
        wait_ready(lambda: child.poll() is None, f"{base}/docs", log, settings.api_workers)
        yield base
    finally:
        stop_child(child)


def wait_ready(alive: Any, url: str, log: Path, workers: int) -> None:
    """Until ``url`` answers 200 and each worker said its start-up is complete."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if not alive():
            raise RuntimeError(f"the server exited:\n{log.read_text()[-2_000:]}")
        started = log.read_text().count("Application startup complete")
        if started >= workers and answers(url):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer in {START_TIMEOUT:.0f} s")
        time.sleep(0.2)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


# --- caseledger: the whole stack ------------------------------------------------------


def open_cases(env: BenchEnv, count: int) -> list[str]:
    ledger = env.container.ledger
    return [str(ledger.open_case("generic", f"http {i}", {}, None, CTX).id) for i in range(count)]


@contextmanager
def stack(env: BenchEnv) -> Iterator[str]:
    """``serve``, ``relay`` and ``project`` running; yields the API's base URL."""
    settings = env.settings
    log = env.workdir / "serve.log"
    log.unlink(missing_ok=True)
    with processes(env, ["serve", "relay", "project"]) as children:
        base = f"http://127.0.0.1:{settings.api_port}"
        alive = lambda: check_alive(children, env)  # noqa: E731
        wait_ready(alive, f"{base}/health", log, settings.api_workers)
        yield base
        check_alive(children, env)


@dataclass(frozen=True)
class Round:
    """Every figure measured with one number of API workers."""

    workers: int
    noop: Load
    noop_slow: Load
    shared: Load
    distinct: Load


def measure(env: BenchEnv, workers: int, seconds: float, cases: dict[str, list[str]]) -> Round:
    settings = env.settings.model_copy(update={"api_workers": workers, "api_port": free_port()})
    env = replace(env, settings=settings)
    loads: dict[str, Load] = {}
    for fast in (True, False):
        with noop_server(settings, fast, env.workdir / f"noop-{workers}-{fast}.log") as base:
            wrk(base, 1, cases["shared"], "shared")  # warm-up
            loads[f"noop {fast}"] = wrk(base, seconds, cases["shared"], "shared")
    key = f"Bearer {env.container.keys.create(Role.HANDLER, label='bench http')}"
    with stack(env) as base:
        wrk(base, 2, cases["warm-up"], "distinct", key)
        shared = wrk(base, seconds, cases["shared"], "shared", key)
        distinct = wrk(base, seconds, cases["distinct"], "distinct", key)
    return Round(workers, loads["noop True"], loads["noop False"], shared, distinct)


def report(round_: Round) -> list[Figure]:
    n = f"{round_.workers} worker{'s' if round_.workers > 1 else ''}"
    CONSOLE.print(f"  [bold]{n}[/]")
    for what, load in (
        ("no-op POST, httptools + uvloop", round_.noop),
        ("no-op POST, h11 + asyncio", round_.noop_slow),
        (f"notes on {SHARED_CASES} shared cases", round_.shared),
        (f"notes on {DISTINCT_CASES} distinct cases", round_.distinct),
    ):
        CONSOLE.print(f"    {what:<36} {load.line()}")
    baseline = f"no-op FastAPI POST, {n}"
    figures = [
        Figure(NAME, f"notes/s over HTTP, {SHARED_CASES} shared cases, {n}",
               round_.shared.ok_per_s, "req/s", baseline, round_.noop.ok_per_s),
        Figure(NAME, f"notes/s over HTTP, distinct cases, {n}",
               round_.distinct.ok_per_s, "req/s", baseline, round_.noop.ok_per_s),
        Figure(NAME, f"no-op POST on h11 + asyncio, {n}",
               round_.noop_slow.ok_per_s, "req/s", f"{baseline} (httptools + uvloop)",
               round_.noop.ok_per_s),
    ]  # fmt: skip
    for figure in figures[:2]:
        CONSOLE.print(f"    {figure.label}: [bold cyan]{figure.verdict()}[/] (target 0.3x)")
    return figures


def run(scale: Scale) -> list[Figure]:
    configured = Settings(_env_file=None).api_workers
    CONSOLE.rule(
        f"[bold]6. notes over HTTP with wrk ({CONNECTIONS} connections), relay and projection"
        f" running, vs a no-op FastAPI POST; 1 and {configured} API workers"
    )
    seconds = 5.0 if scale.quick else 15.0
    figures: list[Figure] = []
    with bench_environment(NAME) as env:
        cases = {
            "shared": open_cases(env, SHARED_CASES),
            "distinct": open_cases(env, DISTINCT_CASES),
            "warm-up": open_cases(env, DISTINCT_CASES // 4),
        }
        for workers in sorted({1, configured}):
            figures += report(measure(env, workers, seconds, cases))
    return figures


if __name__ == "__main__":
    run_alone(run)
