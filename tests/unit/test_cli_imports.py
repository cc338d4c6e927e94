"""`caseledger serve` prepares its metrics folder before prometheus_client is imported (each
API worker process shares its metrics through it): the CLI module must not import it early."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_cli_does_not_import_prometheus_client() -> None:
    probe = "import sys, infra.cli; print('prometheus_client' in sys.modules)"
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == "False", "a module infra.cli imports at its top imports prometheus_client"
