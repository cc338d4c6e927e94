"""The folder where the API's processes share their metrics (prometheus_client's
multiprocess mode): ``caseledger serve`` prepares it before its workers start.

prometheus_client reads ``PROMETHEUS_MULTIPROC_DIR`` once, when it is first imported; from
then on each process that has it writes what it observes to files there, and ``GET /metrics``
in any of them sums every process's files. The folder must start empty: files left by an
earlier run would be counted again. This module does not import prometheus_client, so that
it can run first.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir() -> Path:
    """Empty the folder ``PROMETHEUS_MULTIPROC_DIR`` names (of its metric files only), or
    make a private one, removed when this process exits, and name it in the environment
    that this process and the workers it starts read."""
    if "prometheus_client.values" in sys.modules and VARIABLE not in os.environ:
        raise RuntimeError(
            "prometheus_client was imported before the metrics folder was prepared: this "
            "process would keep its metrics to itself; call prepare_metrics_dir() first"
        )
    configured = os.environ.get(VARIABLE)
    if configured:
        folder = Path(configured)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink(missing_ok=True)
    else:
        folder = Path(tempfile.mkdtemp(prefix="caseledger-metrics-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        os.environ[VARIABLE] = str(folder)
    return folder
