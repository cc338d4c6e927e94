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
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent(signal_number: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` for :class:`subprocess.Popen` that has the child receive
    ``signal_number`` when this process dies (``None`` where the system cannot do it).

    The kernel ties the request to the *thread* that starts the child: start children from
    a thread that lives as long as the process (``caseledger up`` starts them all from its
    main thread). The function is safe beside other threads (ruff's PLW1509): between fork
    and exec it only calls ``prctl``, ``getppid`` and ``kill``, and takes no lock."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it
    parent = os.getpid()

    def tie_to_parent() -> None:
        if prctl(_PR_SET_PDEATHSIG, signal_number, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before the request was made
            os.kill(os.getpid(), signal_number)

    return tie_to_parent
