"""The auditor's view of a case in a real headless Chromium, offline: the case as it was
recorded at a chosen moment (``?as_of=``, shared by its URL), a legal hold placed and lifted,
erased personal fields, and the evidence bundle and audit report for the roles that may
download them (docs/dashboard.md, "Pages")."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import requests
from playwright.sync_api import Page, expect

from domain.context import CommandContext
from infra.bootstrap import Container
from services.auth import Role
from tests.e2e.browser import TIME_ZONE, browser, page, screenshot, server, sign_in, watch
from tests.integration.helpers import wait_until

__all__ = ["browser", "page", "server", "watch"]  # fixtures
ADMIN = CommandContext("test-setup", "admin")
PATIENT = {
    "name": "patient_file",
    "labels": {"en": "Patient file"},
    "states": {"open": {"initial": True}, "done": {"final": True}},
    "transitions": {"finish": {"from": "open", "to": "done"}},
    "fields": {
        "full_name": {"type": "text", "personal": True, "labels": {"en": "Full name"}},
        "ward": {"type": "text", "labels": {"en": "Ward"}},
    },
}


def call(server: str, key: str, method: str, path: str, body: Any = None) -> dict[str, object]:
    answer = requests.request(
        method, f"{server}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert answer.status_code < 300, answer.text
    result: dict[str, object] = answer.json()
    return result


def local_second(moment: datetime) -> str:
    """A moment as the browser's date-time input takes it: local time, to the second."""
    return moment.astimezone(ZoneInfo(TIME_ZONE)).strftime("%Y-%m-%dT%H:%M:%S")


def test_a_case_read_as_of_a_moment_before_a_change_then_now_again(
    server: str, page: Page, keys: dict[Role, str]
) -> None:
    handler = keys[Role.HANDLER]
    body = {"case_type": "generic", "title": "Leaking roof", "fields": {"amount": 120}}
    case_id = call(server, handler, "POST", "/cases", body)["id"]
    case = call(server, handler, "GET", f"/cases/{case_id}")
    opened = datetime.fromisoformat(str(case["opened_at"]))
    # The control picks whole seconds: change the case in a later second than it was opened.
    moment = opened.replace(microsecond=0) + timedelta(seconds=1)
    wait_until(lambda: datetime.now(UTC) > moment, 5, "the next second")
    call(server, handler, "POST", f"/cases/{case_id}/assign", {"assignee": "bob"})

    sign_in(page, server, handler, f"/ui/cases/{case_id}")
    facts = page.locator("#facts")
    expect(facts.locator(".fact", has_text="Assignee")).to_contain_text("bob")
    expect(page.locator("#past")).to_be_hidden()

    page.fill("#as-of", local_second(moment))
    page.click("#as-of-form button[type=submit]")
    banner = page.locator("#past")
    expect(banner).to_contain_text("You are looking at this case as it was recorded on")
    expect(banner).to_contain_text("(version 1)")
    expect(banner).to_contain_text(moment.astimezone(ZoneInfo(TIME_ZONE)).strftime("%H:%M:%S"))
    expect(facts.locator(".fact", has_text="Assignee")).to_contain_text("—")
    expect(page.locator("ol.timeline > li")).to_have_count(1)
    expect(page.locator("#act")).to_be_hidden()
    expect(page.locator("#page button:visible", has_text="Assign")).to_have_count(0)
    assert f"as_of={quote(moment.isoformat().replace('+00:00', 'Z'), safe='')}" in page.url
    screenshot(page, "case-as-of")

    page.reload()  # the URL carries the moment
    expect(page.locator("#past")).to_contain_text("(version 1)")
    expect(page.locator("#as-of")).to_have_value(local_second(moment))
    page.select_option("#language", "fr")
    expect(page.locator("#past")).to_contain_text("tel qu'il était enregistré le")
    page.select_option("#language", "en")

    page.click("#as-of-now")
    expect(page.locator("#past")).to_be_hidden()
    expect(facts.locator(".fact", has_text="Assignee")).to_contain_text("bob")
    expect(page.locator("ol.timeline > li")).to_have_count(2)
    expect(page.locator("#assign-form")).to_be_visible()
    assert "as_of" not in page.url

    page.fill("#as-of", local_second(opened - timedelta(days=1)))
    page.click("#as-of-form button[type=submit]")
    expect(page.locator("#error")).to_contain_text("opened")  # the API's own message
    expect(page.locator("#as-of-form")).to_be_visible()  # to pick another moment
    expect(page.locator("#case-title")).to_have_count(0)  # nothing shown as if it were then


def test_an_admin_places_and_lifts_a_legal_hold_and_erased_fields_read_as_erased(
    server: str, page: Page, keys: dict[Role, str], container: Container
) -> None:
    container.case_types.install(PATIENT, "test setup", ADMIN)
    admin = keys[Role.ADMIN]
    body = {"case_type": "patient_file", "title": "Admission", "party_id": "p-1",
            "fields": {"full_name": "Zoë Quill", "ward": "B2"}}  # fmt: skip
    case_id = call(server, admin, "POST", "/cases", body)["id"]

    sign_in(page, server, admin, f"/ui/cases/{case_id}")
    expect(page.locator("#case-title")).to_have_text("Admission")
    expect(page.locator("#legal-hold-badge")).to_be_hidden()
    expect(page.locator("#lift-hold-form")).to_be_hidden()
    page.fill("#hold-form [name=reason]", "litigation 2026-17")
    page.click("#hold-form button[type=submit]")
    badge = page.locator("#legal-hold-badge")
    expect(badge).to_have_text("Legal hold")
    expect(page.locator("#facts .fact", has_text="Legal hold")).to_contain_text(
        "litigation 2026-17"
    )
    expect(page.locator("#hold-form")).to_be_hidden()
    screenshot(page, "case-legal-hold")
    page.fill("#lift-hold-form [name=reason]", "settled")
    page.click("#lift-hold-form button[type=submit]")
    expect(badge).to_be_hidden()
    expect(page.locator("ol.timeline > li")).to_have_count(3)

    call(server, admin, "POST", "/subjects/p-1/erasure", {"reason": "GDPR art. 17"})
    page.reload()
    name = page.locator("#facts .fact", has_text="Full name")
    expect(name.locator("dd")).to_have_text("erased")
    expect(page.locator("#facts .fact", has_text="Ward").locator("dd")).to_have_text("B2")
    page.select_option("#language", "fr")
    expect(name.locator("dd")).to_have_text("effacé")


def test_the_auditor_downloads_the_evidence_and_the_report_and_a_handler_sees_neither(
    server: str, page: Page, keys: dict[Role, str]
) -> None:
    body = {"case_type": "generic", "title": "Leaking roof", "fields": {}}
    case_id = call(server, keys[Role.HANDLER], "POST", "/cases", body)["id"]

    sign_in(page, server, keys[Role.HANDLER], f"/ui/cases/{case_id}")
    expect(page.locator("#case-title")).to_have_text("Leaking roof")
    expect(page.locator("#downloads")).to_be_hidden()
    expect(page.locator("#hold-form")).to_be_hidden()  # handlers may not place a hold
    page.click("#sign-out")

    sign_in(page, server, keys[Role.AUDITOR], f"/ui/cases/{case_id}")
    expect(page.locator("#hold-form")).to_be_hidden()
    with page.expect_download() as evidence:
        page.click("#download-evidence")
    bundle = json.loads(evidence.value.path().read_text())
    assert [e["version"] for e in bundle["events"]] == [1], bundle.keys()
    with page.expect_download() as report:
        page.click("#download-report")
    assert report.value.suggested_filename == f"case-{case_id}.html"
    assert "Leaking roof" in report.value.path().read_text()
    screenshot(page, "case-auditor-downloads")
