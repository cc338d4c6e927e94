"""A sandbox worker: evaluates conditions, decision tables and templates sent by
:mod:`services.sandbox`, one at a time, until its connection closes.

Started by the pool as ``python -m services.sandbox_worker FD``, FD being its end of a socket
pair. It limits its own address space first, so that a runaway allocation fails here, and lowers
its priority, so that a runaway (or a worker starting) leaves the CPU to the API first.
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from domain.errors import BudgetExceeded
from services.sandbox import WORKER_MEMORY, WORKER_NICENESS

Run = Callable[[str, Any, dict[str, Any]], Any]


def serve(connection: Connection, run_here: Run) -> None:
    """Answer each task ``(kind, spec, facts)`` with ``{"ok": result}`` or ``{"limit": why}``."""
    connection.send_bytes(b"ok")
    while True:
        try:
            payload = connection.recv_bytes()
        except EOFError:
            return
        kind, spec, facts = pickle.loads(payload)  # noqa: S301 - sent by the pool, our parent
        try:
            answer = {"ok": run_here(kind, spec, facts)}
        except BudgetExceeded as error:
            answer = {"limit": error.message, "hint": error.hint}
        connection.send_bytes(json.dumps(answer).encode())


def main() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, WORKER_MEMORY))
    os.nice(WORKER_NICENESS)
    # Imported once niced: loading the engines is most of a worker's start, and a worker
    # replacing a killed one must leave the CPU to the API's requests.
    from services.plugins import run_here  # noqa: PLC0415 - plugins, else expressions

    serve(Connection(int(sys.argv[1])), run_here)


if __name__ == "__main__":
    main()
