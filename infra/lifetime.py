"""Process lifetime: child processes that end when their parent ends, however it ends.

On Linux a child can ask the kernel for a signal when its parent dies
(``prctl(PR_SET_PDEATHSIG)``), which also covers a parent killed with SIGKILL, where no
clean-up code of the parent runs. Elsewhere there is no such request, and
:func:`die_with_parent` asks for nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent(
    signal_number: int = signal.SIGTERM, parent: int | None = None
) -> Callable[[], None] | None:
    """A ``preexec_fn`` for :class:`subprocess.Popen` that has the child receive
    ``signal_number`` when this process (or the process ``parent``) dies (``None`` where the
    system cannot do it).

    The kernel ties the request to the *thread* that starts the child: start children from
    a thread that lives as long as the process (``caseledger up`` starts them all from its
    main thread). The function is safe beside other threads (ruff's PLW1509): between fork
    and exec it only calls ``prctl``, ``getppid`` and ``kill``, and takes no lock."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it
    parent = os.getpid() if parent is None else parent

    def tie_to_parent() -> None:
        if prctl(_PR_SET_PDEATHSIG, signal_number, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before the request was made
            os.kill(os.getpid(), signal_number)

    return tie_to_parent


def end_with_parent(parent: int, signal_number: int = signal.SIGKILL) -> None:
    """In a child that is already running (one this code did not start, e.g. a worker of
    uvicorn's own supervisor): receive ``signal_number`` when ``parent`` dies, at once if it
    already has. The request holds only if ``parent`` started this process from a thread
    that lives as long as it (uvicorn starts its workers from its main thread)."""
    tie = die_with_parent(signal_number, parent)
    if tie is not None:
        tie()


class ChildProcess:
    """A process this one started and may stop: what ``infra.supervisor`` asks of it."""

    process: subprocess.Popen[bytes] | None = None
    stop_timeout_s = 10.0

    def exited(self) -> str | None:
        """None while it runs; else its exit code (negative: the signal that ended it)."""
        code = self.process.poll() if self.process else 0
        return None if code is None else str(code)

    def terminate(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()

    def wait_stopped(self) -> None:
        """Wait for it to stop, killing it when it takes longer than ``stop_timeout_s``."""
        if self.process is None:
            return
        try:
            self.process.wait(self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
