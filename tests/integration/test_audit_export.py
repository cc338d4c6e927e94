"""The audit export on the real event store: ``caseledger audit export`` and
``GET /cases/{id}/export`` write a case's whole history (actor, reasons, the rule behind each
automatic step, the source of ingested facts) as the exporting role sees it, as JSON Lines
or a self-contained, escaped HTML report, and PDF through the system Chromium."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from domain.context import CommandContext
from infra.bootstrap import Container
from infra.cli import app
from infra.settings import Settings
from services.audit_export import AuditExport
from services.auth import Role
from services.case_type_document import read_document
from services.case_views import CaseViews, Reader
from tests.conftest import auth

PAYOUT = """
name: payout
labels: {en: Payout}
states:
  open: {initial: true, labels: {en: Open}}
  approved: {labels: {en: Approved}}
transitions:
  approve: {from: open, to: approved, labels: {en: Approve}}
fields:
  amount: {type: number, labels: {en: Amount}}
  iban: {type: text, labels: {en: IBAN}}
rules:
  - name: big_payout
    on: [CaseFieldsUpdated]
    if: 'fields.amount > 1000.0'
    do:
      - set_priority: urgent
views:
  auditor: {see: [amount]}
  handler: {edit: [amount, iban]}
  integrator: {edit: [amount, iban]}
"""
IBAN = "BE71096123456769"
TITLE = "Refund <script>alert('x')</script> & co"


@pytest.fixture
def payout(container: Container) -> None:
    document = read_document(PAYOUT.encode(), "application/yaml")
    container.case_types.install(document, "test", CommandContext("tester", "admin"))


def _payout_case(client: TestClient, keys: dict[Role, str], title: str = TITLE) -> str:
    body = {"case_type": "payout", "title": title, "fields": {"amount": 10, "iban": IBAN}}
    opened = client.post("/cases", json=body, headers=auth(keys[Role.HANDLER]))
    assert opened.status_code == 201, opened.text
    case_id = str(opened.json()["id"])
    fact = {
        "fields": {"amount": 5000},
        "source": {"system": "ledger-silo", "record_id": "R-9"},
        "occurred_at": "2026-01-05T09:00:00+01:00",
    }
    changed = client.patch(
        f"/cases/{case_id}/fields", json=fact, headers=auth(keys[Role.INTEGRATOR])
    )
    assert changed.status_code == 200, changed.text
    moved = client.post(
        f"/cases/{case_id}/transitions",
        json={"transition": "approve", "reason": "checked the invoice"},
        headers=auth(keys[Role.MANAGER]),
    )
    assert moved.status_code == 200, moved.text
    return case_id


def _export(settings: Settings, *args: str, path: str = "PATH") -> Any:
    env = settings.as_env()
    if path != "PATH":
        env["PATH"] = path
    return CliRunner().invoke(app, ["audit", "export", *args], env=env)


def test_one_case_as_json_lines_as_the_auditor_sees_it(
    client: TestClient, keys: dict[Role, str], settings: Settings, payout: None, tmp_path: Path
) -> None:
    case_id = _payout_case(client, keys)
    out = tmp_path / "case.jsonl"
    done = _export(settings, "--case", case_id, "--output", str(out))
    assert done.exit_code == 0, done.output
    text = out.read_text()
    assert IBAN not in text  # the auditor's view hides it
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["case_version"] for line in lines] == list(range(1, len(lines) + 1))
    positions = [line["global_position"] for line in lines]
    assert positions == sorted(positions) and positions[0] > 0
    by_type = {line["type"]: line for line in lines}
    assert by_type["CaseOpened"]["withheld"] == ["iban"]
    assert by_type["CaseOpened"]["actor"] == {"id": "test-handler", "role": "handler"}
    ingested = by_type["CaseFieldsUpdated"]
    assert ingested["source"]["system"] == "ledger-silo"
    assert ingested["source"]["record_id"] == "R-9"
    assert ingested["effective_at"] == "2026-01-05T09:00:00+01:00"
    rule_step = by_type["CasePriorityChanged"]
    assert (rule_step["rule"], rule_step["actor"]["role"]) == ("big_payout", "system")
    assert rule_step["effective_at"] == ingested["effective_at"]  # dated by its cause
    assert by_type["CaseStatusChanged"]["data"]["reason"] == "checked the invoice"

    as_admin = _export(settings, "--case", case_id, "--role", "admin")
    assert as_admin.exit_code == 0, as_admin.output
    assert IBAN in as_admin.stdout


def test_cases_changed_in_a_period_as_an_escaped_html_report(
    client: TestClient, keys: dict[Role, str], settings: Settings, payout: None, tmp_path: Path
) -> None:
    earlier = _payout_case(client, keys, title="Opened before the period")
    since = datetime.now(UTC)
    first, second = _payout_case(client, keys), _payout_case(client, keys, title="Second")
    out = tmp_path / "report.html"
    done = _export(settings, "--since", since.isoformat(), "--format", "html", "-o", str(out))
    assert done.exit_code == 0, done.output
    report = out.read_text()
    assert first in report and second in report and earlier not in report
    assert "Refund &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co" in report
    assert "<script" not in report and "src=" not in report and "href=" not in report
    assert IBAN not in report
    assert "approve" in report.lower() and "checked the invoice" in report
    assert "big_payout" in report and "ledger-silo / R-9" in report
    assert '<td>test-handler<br><span class="small">handler</span></td>' in report  # who
    assert "@media print" in report

    refused = _export(settings, "--since", "2026-01-01T00:00:00")
    assert refused.exit_code == 2 and "no UTC offset" in refused.output
    both = _export(settings, "--case", first, "--since", since.isoformat())
    assert both.exit_code == 2 and "not both" in both.output


def test_paging_does_not_change_the_export(
    client: TestClient, keys: dict[Role, str], container: Container, payout: None
) -> None:
    case_id = UUID(_payout_case(client, keys))
    for n in range(5):
        container.ledger.add_note(case_id, f"note {n}", CommandContext("ann", "handler"), None)
    views, reader = CaseViews(container.ledger), Reader(Role.AUDITOR, "audit", ("en",))

    def export(page_size: int) -> list[bytes]:
        exporter = AuditExport(views, page_size=page_size)
        return list(exporter.jsonl(exporter.trails([case_id], reader)))

    assert export(2) == export(500)
    assert len(export(2)) == container.ledger.get_case(case_id).version


def test_the_api_exports_a_case_to_admins_and_auditors_only(
    client: TestClient, keys: dict[Role, str], payout: None
) -> None:
    case_id = _payout_case(client, keys)
    answer = client.get(f"/cases/{case_id}/export", headers=auth(keys[Role.AUDITOR]))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert lines[0]["type"] == "CaseOpened" and IBAN not in answer.text
    page = client.get(f"/cases/{case_id}/export?format=html", headers=auth(keys[Role.ADMIN]))
    assert page.status_code == 200 and IBAN in page.text and "&lt;script&gt;" in page.text
    refused = client.get(f"/cases/{case_id}/export", headers=auth(keys[Role.HANDLER]))
    assert refused.status_code == 403


def test_a_pdf_needs_chromium_and_says_how_to_get_it(
    settings: Settings, tmp_path: Path, client: TestClient, keys: dict[Role, str], payout: None
) -> None:
    case_id = _payout_case(client, keys)
    pdf = tmp_path / "case.pdf"
    missing = _export(settings, "--case", case_id, "--format", "pdf", "-o", str(pdf), path="")
    assert missing.exit_code == 2 and "make browser" in missing.output
    assert not pdf.exists()


def test_a_pdf_is_printed_by_chromium(
    settings: Settings, tmp_path: Path, client: TestClient, keys: dict[Role, str], payout: None
) -> None:
    # `make test` installs Chromium (as for the dashboard tests): its absence fails, never skips.
    assert shutil.which("chromium"), "install Chromium: apt-get install chromium (make browser)"
    case_id = _payout_case(client, keys)
    pdf = tmp_path / "case.pdf"
    done = _export(settings, "--case", case_id, "--format", "pdf", "-o", str(pdf))
    assert done.exit_code == 0, done.output
    assert pdf.read_bytes().startswith(b"%PDF-")
