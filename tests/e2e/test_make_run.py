"""`caseledger up` (what `make run` starts): the whole stack on embedded servers, for real."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx

from infra.embedded import free_port, port_open


@contextmanager
def stack(cwd: Path, api_port: int, broker_port: int) -> Iterator[dict[str, str]]:
    """Run `caseledger up` in ``cwd``; yields the API keys it printed, stops it with Ctrl-C."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")
    }
    env |= {"CASELEDGER_API_PORT": str(api_port), "CASELEDGER_BROKER_PORT": str(broker_port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "up"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        output = ""
        while "Ctrl-C stops everything." not in output:
            line = process.stdout.readline()
            assert line, f"caseledger up stopped early:\n{output}"
            output += line
        keys = dict(
            re.findall(r"^\s+(admin|manager|handler|integrator|auditor)\s+(\S+)$", output, re.M)
        )
        try:
            wait_for(lambda: healthy(api_port), 60, "the API to answer /health")
        except AssertionError as error:
            logs = "".join(
                f"--- {log.name}\n{log.read_text()[-3000:]}"
                for log in sorted((cwd / ".caseledger" / "logs").glob("*.log"))
            )
            raise AssertionError(f"{error}\n{output}\n{logs}") from None
        yield keys
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)
    assert process.returncode == 0


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def samples_rules_and_mail(base: str, keys: dict[str, str], mail: Path) -> None:
    """The sample case types are loaded; a rule's e-mail reaches the local mail sink and the
    notifier records its delivery on the case."""
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    types = {t["name"]: t["current_version"] for t in httpx.get(
        f"{base}/case-types", headers=admin).json()}  # fmt: skip
    assert types == {
        "generic": 1,
        "insurance_claim": 1,
        "patient_care": 1,
        "customer_complaint": 1,
    }
    fields = {"customer": "C-1", "channel": "phone", "topic": "billing", "severity": "high",
              "description": "billed twice"}  # fmt: skip
    opened = httpx.post(f"{base}/cases", headers=admin, json={
        "case_type": "customer_complaint", "title": "Billed twice", "fields": fields})  # fmt: skip
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["id"]

    def delivered() -> bool:
        history = httpx.get(f"{base}/cases/{case_id}/history", headers=admin).json()
        return any(h["type"] == "CaseNotificationSent" for h in history)

    wait_for(delivered, 60, "the notifier to send the manager alert")
    [message] = [m.read_text() for m in mail.glob("*.eml")]
    assert "Subject: Complaint Billed twice needs attention" in message
    assert "manager@caseledger.local" in message


def test_up_serves_the_stack_and_keeps_cases_across_a_restart(tmp_path: Path) -> None:
    api_port, broker_port = free_port(), free_port()
    base = f"http://127.0.0.1:{api_port}"
    with stack(tmp_path, api_port, broker_port) as keys:
        assert set(keys) == {"admin", "manager", "handler", "integrator", "auditor"}
        headers = {"Authorization": f"Bearer {keys['handler']}"}
        opened = httpx.post(
            f"{base}/cases", json={"case_type": "generic", "title": "Kept"}, headers=headers
        )
        assert opened.status_code == 201, opened.text
        case_id = opened.json()["id"]

        def listed() -> bool:
            page = httpx.get(f"{base}/cases", headers=headers).json()
            return [c["id"] for c in page["cases"]] == [case_id]

        wait_for(listed, 60, "the case to reach the case list through Kafka")
        status = subprocess.run(
            [sys.executable, "-m", "infra.cli", "status", "--json"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
            env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        )
        report = json.loads(status.stdout)
        assert report["relay"]["lag"] == 0
        samples_rules_and_mail(base, keys, tmp_path / ".caseledger" / "mail")
        assert report["projections"]["case_list"]["lag"] == 0
        assert report["work"]["sla_overdue"] == 0
        assert report["kafka"]["bootstrap_servers"] == f"127.0.0.1:{broker_port}"
    assert not port_open(api_port) and not port_open(broker_port), "Ctrl-C left a server up"
    assert not (tmp_path / ".caseledger" / "stack.env").exists()

    with stack(tmp_path, api_port, broker_port) as keys_again:
        assert keys_again == keys  # the development keys are kept too
        answer = httpx.get(f"{base}/cases/{case_id}", headers=headers)
        assert answer.status_code == 200
        assert answer.json()["title"] == "Kept"
