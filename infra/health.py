"""``/health``: the state of the database and the broker, answered within a second whatever
is down. Each check runs on its own thread; a check that has not answered in time is reported
as down ("no answer"), and is not started again while it still hangs."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from infra.kafka import BrokerProbe

BUDGET_S = 0.9
Check = Callable[[], dict[str, Any]]


def database_check(pool: ConnectionPool[Connection[DictRow]]) -> Check:
    def check() -> dict[str, Any]:
        try:
            with pool.connection(timeout=BUDGET_S) as conn:
                conn.execute("SELECT 1")
            return {"ok": True}
        except Exception as error:  # noqa: BLE001 - any failure means "down", reported as such
            return {"ok": False, "error": f"{type(error).__name__}: {error}"}

    return check


def broker_check(probe: BrokerProbe) -> Check:
    def check() -> dict[str, Any]:
        ok, detail = probe.check()
        return {"ok": ok, "detail": detail}

    return check


class HealthChecks:
    """Runs every component's check at once and answers within :data:`BUDGET_S`."""

    def __init__(self, checks: dict[str, Check]) -> None:
        self.checks = checks
        self._threads = ThreadPoolExecutor(len(checks), thread_name_prefix="health")
        self._running: dict[str, tuple[float, Future[dict[str, Any]]]] = {}

    def __call__(self) -> dict[str, dict[str, Any]]:
        for name, check in self.checks.items():
            if name not in self._running or self._running[name][1].done():
                self._running[name] = (time.monotonic(), self._threads.submit(check))
        wait([future for _, future in self._running.values()], timeout=BUDGET_S)
        return {name: self._answer(name) for name in self.checks}

    def _answer(self, name: str) -> dict[str, Any]:
        started, future = self._running[name]
        if future.done():
            return future.result()
        waited = time.monotonic() - started
        return {"ok": False, "error": f"no answer for {waited:.1f} s"}

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
