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
from multiprocessing.connection import Connection

from domain.errors import BudgetExceeded
from services.expressions import run_here
from services.sandbox import WORKER_MEMORY, WORKER_NICENESS


def serve(connection: Connection) -> None:
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


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, WORKER_MEMORY))
    os.nice(WORKER_NICENESS)
    serve(Connection(int(sys.argv[1])))
