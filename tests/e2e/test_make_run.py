"""`caseledger up` (what `make run` starts): the whole stack on embedded servers, for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import pytest

from infra.embedded import free_port, port_open
from tests.e2e.up_process import running_up
from tests.integration.helpers import wait_until


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

    wait_until(delivered, 60, "the notifier to send the manager alert")
    [message] = [m.read_text() for m in mail.glob("*.eml")]
    assert "Subject: Complaint Billed twice needs attention" in message
    assert "manager@caseledger.local" in message


def test_up_serves_the_stack_and_keeps_cases_across_a_restart(tmp_path: Path) -> None:
    api_port, broker_port = free_port(), free_port()
    base = f"http://127.0.0.1:{api_port}"
    with running_up(tmp_path, api_port, broker_port) as up:
        keys = up.keys
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

        wait_until(listed, 60, "the case to reach the case list through Kafka")
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

    with running_up(tmp_path, api_port, broker_port) as again:
        assert again.keys == keys  # the development keys are kept too
        answer = httpx.get(f"{base}/cases/{case_id}", headers=headers)
        assert answer.status_code == 200
        assert answer.json()["title"] == "Kept"


@pytest.mark.slow
def test_make_run_feeds_cases_from_three_demo_silos(tmp_path: Path) -> None:
    """What a newcomer sees without doing anything: claims from the legacy database, complaints
    from the CSV drop, admissions from the signed webhook, and three poison rows quarantined."""
    with running_up(tmp_path, free_port(), free_port(), demo=True) as up:
        headers = {"Authorization": f"Bearer {up.keys['integrator']}"}

        def arrived(case_type: str) -> bool:
            page = httpx.get(f"{up.base}/cases?case_type={case_type}", headers=headers).json()
            return bool(page["cases"])

        for case_type in ("insurance_claim", "customer_complaint", "patient_care"):
            wait_until(lambda c=case_type: arrived(c), 120, f"{case_type} cases from a silo")  # type: ignore[misc]
        waiting = httpx.get(f"{up.base}/connectors/demo_claims_db/quarantine", headers=headers)
        assert len(waiting.json()) == 3, waiting.text
        assert (tmp_path / ".caseledger" / "drop" / "crm" / "archive").exists()
