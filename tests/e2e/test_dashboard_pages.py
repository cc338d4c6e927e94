"""Each dashboard page in a real headless Chromium, offline: the handler's work queue, what
each role may do on a case, search with filters and saved views, and the manager dashboard,
whose numbers must be the API's."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import requests
from playwright.sync_api import Locator, Page, Route, expect

from infra.bootstrap import Container, install_case_types
from services.auth import Role
from tests.e2e.browser import browser, listing_server, page, screenshot, server, sign_in, watch
from tests.integration.helpers import wait_until

__all__ = ["browser", "listing_server", "page", "server", "watch"]  # fixtures


class Api:
    """The HTTP API, as one key calls it."""

    def __init__(self, server: str, key: str) -> None:
        self.server = server
        self.headers = {"Authorization": f"Bearer {key}"}

    def get(self, path: str, **query: str) -> Any:
        answer = requests.get(
            f"{self.server}{path}", params=query, headers=self.headers, timeout=10
        )
        return answer.json() if answer.status_code != 404 else None

    def post(self, path: str, body: dict[str, Any]) -> Any:
        answer = requests.post(f"{self.server}{path}", json=body, headers=self.headers, timeout=10)
        assert answer.status_code < 300, answer.text
        return answer.json()

    def open(self, title: str, case_type: str = "generic", **fields: Any) -> str:
        case_id: str = self.post(
            "/cases", {"case_type": case_type, "title": title, "fields": fields}
        )["id"]
        return case_id

    def listed(self, **query: str) -> list[dict[str, Any]]:
        cases: list[dict[str, Any]] = self.get("/cases", limit="500", **query)["cases"]
        return cases

    def wait_listed(self, count: int, **query: str) -> list[dict[str, Any]]:
        """The case list once the projection holds ``count`` cases matching ``query``."""
        wait_until(lambda: len(self.listed(**query)) == count, 30, f"{count} cases {query}")
        return self.listed(**query)


def claim(category: str, amount: float) -> dict[str, Any]:
    return {
        "policy_number": "AB-123456",
        "policy_holder": "P-77",
        "incident_date": "2026-11-02",
        "category": category,
        "claimed_amount": {"amount": amount, "currency": "EUR"},
    }


def titles(page: Page, table: str) -> Locator:
    """The titles a table of cases lists (expect(...).to_have_text([...]) waits for them)."""
    return page.locator(f"#{table} tbody td[data-column=title]")


def test_the_work_queue_shows_my_cases_and_my_queues_unassigned_ones_most_urgent_first(
    listing_server: str, page: Page, keys: dict[Role, str], container: Container
) -> None:
    install_case_types(container.case_types, ("insurance_claim.yaml",))
    api = Api(listing_server, keys[Role.HANDLER])
    bike = api.open("Stolen bike", "insurance_claim", **claim("theft", 900))  # theft-desk
    api.post(f"/cases/{bike}/transitions", {"transition": "start_review"})  # 4 h SLA met
    api.open("Kitchen fire", "insurance_claim", **claim("fire", 4000))  # high, 4 h SLA runs
    mine = api.open("Printer jam")
    api.post(f"/cases/{mine}/assign", {"assignee": "test-handler"})
    api.wait_listed(1, assignee="test-handler")
    api.wait_listed(1, status="under_review")
    unassigned = api.wait_listed(2, unassigned="true", final="false")

    sign_in(page, listing_server, keys[Role.HANDLER])
    expect(titles(page, "mine-table")).to_have_text(["Printer jam"])
    expect(page.locator("#pool-table tbody tr")).to_have_count(len(unassigned))
    # The fire claim is more urgent both ways: the nearer SLA deadline and the higher priority.
    expect(titles(page, "pool-table")).to_have_text(["Kitchen fire", "Stolen bike"])
    fire = page.locator("#pool-table tbody tr").first
    expect(fire).to_contain_text("High")
    expect(fire.locator("td[data-column=urgency]")).to_contain_text("left")  # its sla_deadline

    page.locator("fieldset.queues label", has_text="theft-desk").locator("input").check()
    expect(page.locator("#pool-table tbody tr")).to_have_count(1)
    page.reload()  # the chosen queues are remembered in this browser
    expect(page.locator("#pool-table tbody tr")).to_have_count(1)
    expect(titles(page, "pool-table")).to_have_text(["Stolen bike"])
    screenshot(page, "work-queue")

    page.click("#pool-table a")
    expect(page.locator("#case-title")).to_have_text("Stolen bike")
    page.click("#assign-form button.secondary")  # Assign to me
    expect(page.locator("#facts")).to_contain_text("test-handler")
    api.wait_listed(2, assignee="test-handler")
    page.goto(f"{listing_server}/ui/")
    expect(page.locator("#mine-table tbody tr")).to_have_count(2)
    expect(page.locator("#pool-table tbody tr")).to_have_count(0)


def test_the_case_page_follows_the_role_and_the_state(
    server: str, page: Page, keys: dict[Role, str], container: Container
) -> None:
    install_case_types(container.case_types, ("insurance_claim.yaml",))
    handler = Api(server, keys[Role.HANDLER])
    big = handler.open("Burglary", "insurance_claim", **claim("theft", 60_000))
    handler.post(f"/cases/{big}/transitions", {"transition": "start_review"})  # -> expert
    handler.post(f"/cases/{big}/transitions", {"transition": "expert_report_received"})
    done = handler.open("Finished business")
    handler.post(f"/cases/{done}/close", {"reason": "done"})

    sign_in(page, server, keys[Role.HANDLER], f"/ui/cases/{big}")
    approve = page.locator("button[data-transition=approve]")
    expect(approve).to_be_disabled()  # the guard: over 50,000 only a manager approves
    reason = page.locator("#transitions li", has=approve).locator(".reason")
    expect(reason).to_have_text("The conditions for this step are not met yet")
    expect(page.locator("button[data-transition=request_documents]")).to_be_enabled()
    expect(page.locator("button[data-transition=reject]")).to_have_count(0)  # managers only
    page.goto(f"{server}/ui/cases/{done}")
    expect(page.locator("#facts")).to_contain_text("Closed")
    expect(page.locator("#reopen-form")).to_be_hidden()  # handlers may not reopen
    page.click("#sign-out")

    sign_in(page, server, keys[Role.AUDITOR], f"/ui/cases/{big}")
    expect(page.locator("#who")).to_have_text("test-auditor · Auditor")
    expect(page.locator("#read-only")).to_be_visible()
    expect(page.locator("#act button:visible:enabled")).to_have_count(0)
    for form in ("assign", "close", "reopen", "note"):
        expect(page.locator(f"#{form}-form")).to_be_hidden()
    expect(page.locator("#fields")).to_be_hidden()
    expect(page.locator("header nav a", has_text="New case")).to_be_hidden()
    expect(page.locator("ol.timeline > li").first).to_contain_text("Burglary")  # it can read
    screenshot(page, "case-as-auditor")
    page.click("#sign-out")

    sign_in(page, server, keys[Role.MANAGER], f"/ui/cases/{uuid4()}")
    expect(page.locator("#error")).to_contain_text("no case has id")  # and how to find one
    page.goto(f"{server}/ui/cases/{done}")
    expect(page.locator("#close-form")).to_be_hidden()
    page.fill("#reopen-form [name=reason]", "one more thing")
    page.click("#reopen-form button[type=submit]")
    expect(page.locator("#facts")).to_contain_text("Open")
    expect(page.locator("#reopen-form")).to_be_hidden()  # Reopen only on closed cases
    expect(page.locator("#close-form")).to_be_visible()
    expect(page.locator("ol.timeline > li").last).to_contain_text("one more thing")


def test_search_with_labelled_filters_my_cases_and_saved_views(
    listing_server: str, page: Page, keys: dict[Role, str], container: Container
) -> None:
    install_case_types(container.case_types, ("insurance_claim.yaml",))
    api = Api(listing_server, keys[Role.HANDLER])
    fire = api.open("Kitchen fire", "insurance_claim", **claim("fire", 4000))
    api.open("Stolen bike", "insurance_claim", **claim("theft", 900))
    api.post(f"/cases/{fire}/assign", {"assignee": "test-handler"})
    neighbour = {"case_type": "generic", "title": "Noisy neighbour", "party_id": "P-900"}
    party = api.post("/cases", neighbour)
    api.wait_listed(3)
    api.wait_listed(1, assignee="test-handler")

    sign_in(page, listing_server, keys[Role.HANDLER], "/ui/search")
    expect(page.locator("#results tbody tr")).to_have_count(3)
    page.select_option("#search-form [name=case_type]", "insurance_claim")
    status = page.locator("#search-form [name=status]")
    expect(status.locator("option", has_text="Submitted")).to_have_attribute("value", "submitted")
    status.select_option(label="Submitted")  # chosen by its label, sent as its name
    page.select_option("#search-form [name=priority]", label="High")
    page.click("#search-form button[type=submit]")
    expected = api.listed(case_type="insurance_claim", status="submitted", priority="high")
    expect(page.locator("#results tbody tr")).to_have_count(len(expected))
    assert [c["title"] for c in expected] == ["Kitchen fire"]
    expect(titles(page, "results")).to_have_text(["Kitchen fire"])
    expect(page.locator("#results thead")).to_contain_text("Category")  # the view's columns

    page.fill("#save-view [name=view]", "Hot claims")
    page.click("#save-view button")
    page.goto(f"{listing_server}/ui/search")  # saved views are kept in this browser
    expect(page.locator("#results tbody tr")).to_have_count(3)
    page.click("button[data-view='Hot claims']")
    expect(page.locator("#results tbody tr")).to_have_count(1)
    expect(page.locator("#search-form [name=priority]")).to_have_value("high")

    page.goto(f"{listing_server}/ui/search")
    page.fill("#search-form [name=q]", "P-900")  # a party
    page.click("#search-form button[type=submit]")
    expect(page.locator("#results tbody tr")).to_have_count(1)
    expect(titles(page, "results")).to_have_text(["Noisy neighbour"])
    page.click("#my-cases")
    expect(titles(page, "results")).to_have_text(["Kitchen fire"])
    page.select_option("#search-form [name=assignee]", label="nobody")
    page.select_option("#search-form [name=final]", label="open")
    page.click("#search-form button[type=submit]")
    nobodys = [c["title"] for c in api.listed(unassigned="true", final="false")]
    assert sorted(nobodys) == ["Noisy neighbour", "Stolen bike"]
    expect(titles(page, "results")).to_have_text(nobodys)

    page.select_option("#language", "fr")
    expect(page.locator("#search-form [name=priority] option[value=high]")).to_have_text("Haute")
    page.select_option("#search-form [name=case_type]", "insurance_claim")
    expect(status.locator("option[value=submitted]")).to_have_text("Déclaré")
    expect(page.locator("#results thead")).to_contain_text("Nature du sinistre")
    expect(titles(page, "results")).to_have_text(["Stolen bike"])  # open, nobody's claims
    expect(page.locator("#results td[data-column='fields.category']")).to_have_text(["Vol"])
    screenshot(page, "search-fr")

    page.fill("#search-form [name=q]", party["id"])  # an id opens the case
    page.click("#search-form button[type=submit]")
    expect(page.locator("#case-title")).to_have_text("Noisy neighbour")


# What the read models answer (issue 11), as the manager dashboard was written against.
CONTRACT: dict[str, Any] = {
    "/read-models/counts?by=status": {
        "items": [
            {"key": "submitted", "label": "Submitted", "count": 7},
            {"key": "closed", "label": "Closed", "count": 3},
        ]
    },
    "/read-models/counts?by=case_type": {
        "items": [{"key": "insurance_claim", "label": "Insurance claim", "count": 10}]
    },
    "/read-models/sla-status?state=breached": {
        "items": [
            {
                "case_id": "6f1c2a52-6a3c-4a35-9d8e-1d1f4c1a0b01",
                "title": "Kitchen fire",
                "sla": "first_response",
                "state": "breached",
                "due_at": "2026-12-01T09:00:00Z",
                "time_left_s": -7200,
            }
        ]
    },
    "/read-models/sla-status?state=at_risk": {"items": []},
    "/read-models/cycle-times": {
        "items": [
            {
                "case_type": "insurance_claim",
                "state": None,
                "month": None,
                "p50_s": 86_400,
                "p90_s": 172_800,
                "p99_s": 259_200,
                "count": 42,
            }
        ]
    },
    "/read-models/throughput?days=30": {
        "items": [
            {"day": "2026-12-01", "opened": 5, "closed": 2, "reopened": 0},
            {"day": "2026-12-02", "opened": 3, "closed": 4, "reopened": 1},
        ]
    },
    "/read-models/workload?by=assignee": {
        "items": [{"key": "ann", "label": "ann", "open": 6, "at_risk": 2, "breached": 1}]
    },
    "/read-models/workload?by=queue": {
        "items": [{"key": "property", "label": "property", "open": 9, "at_risk": 1, "breached": 0}]
    },
    "/live-metrics": {
        "since": "2026-12-06T01:00:00Z",
        "hours": [
            {
                "hour": "2026-12-07T10:00:00Z",
                "case_type": "insurance_claim",
                "queue": "property",
                "opened": 2,
                "closed": 1,
                "breached": 0,
            },
            {
                "hour": "2026-12-07T10:00:00Z",
                "case_type": "generic",
                "queue": None,
                "opened": 1,
                "closed": 0,
                "breached": 0,
            },
            {
                "hour": "2026-12-07T11:00:00Z",
                "case_type": "generic",
                "queue": None,
                "opened": 2,
                "closed": 0,
                "breached": 1,
            },
        ],
        "backlog": [{"case_type": "generic", "queue": None, "open_cases": 4}],
        "workers": [],
        "updated_at": "2026-12-07T11:20:00Z",
    },
}


def _numbers(body: dict[str, Any]) -> list[str]:
    """The counts of a read model's answer, in the order its panel's table shows them."""
    names = ("count", "opened", "closed", "reopened", "open", "at_risk", "breached", "open_cases")
    return [
        str(item[name])
        for item in body.get("items", body.get("backlog", []))
        for name in names
        if isinstance(item.get(name), int)
    ]


def _panel_numbers(page: Page, panel: str) -> list[str]:
    cells = page.locator(f"#{panel} td.number")
    return [str(cell.get_attribute("data-value")) for cell in cells.all()]


PANELS = {
    "by-status": "/read-models/counts?by=status",
    "by-type": "/read-models/counts?by=case_type",
    "cycle-times": "/read-models/cycle-times",
    "throughput": "/read-models/throughput?days=30",
    "workload-handler": "/read-models/workload?by=assignee",
    "workload-queue": "/read-models/workload?by=queue",
    "backlog": "/live-metrics",
}


def test_the_manager_dashboard_shows_the_apis_numbers_and_draws_the_read_models(
    listing_server: str, page: Page, keys: dict[Role, str]
) -> None:
    api = Api(listing_server, keys[Role.MANAGER])
    api.open("Printer jam")
    api.wait_listed(1)
    sign_in(page, listing_server, keys[Role.MANAGER], "/ui/manager")
    for panel, path in PANELS.items():
        section = page.locator(f"#{panel}")
        expect(section).not_to_have_attribute("data-state", "loading")
        body = api.get(path)
        if body is None:
            expect(section).to_have_attribute("data-state", "unavailable")
            expect(section).to_contain_text(f"this server does not answer {path}")
        else:
            assert _panel_numbers(page, panel) == _numbers(body), panel
    screenshot(page, "manager-dashboard")

    # The read models as their contract says they answer, drawn in French.
    def answer(route: Route) -> None:
        path = route.request.url.removeprefix(listing_server)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(CONTRACT[path]))

    page.route(f"{listing_server}/read-models/**", answer)
    page.route(f"{listing_server}/live-metrics", answer)
    page.select_option("#language", "fr")
    expect(page.locator("#page h2")).to_have_text("Tableau de bord")
    for panel, path in PANELS.items():
        if path in CONTRACT:  # the page reads them again when the language changes
            expect(page.locator(f"#{panel} td.number")).to_have_text(_numbers(CONTRACT[path]))
    # Per hour, every case type and queue summed: 10:00 opened 3, closed 1; 11:00 opened 2 ...
    expect(page.locator("#live-hours td.number")).to_have_text(["3", "1", "0", "2", "0", "1"])
    expect(page.locator("#live-hours tbody tr").first).to_contain_text("11:00")  # Paris time
    drawn = page.locator("canvas[data-chart]:visible")
    expect(drawn).to_have_count(7)  # status, type, cycle times, throughput, 2 workloads, live
    for canvas in drawn.all():
        assert canvas.evaluate("c => c.width > 0 && window.Chart.getChart(c) !== undefined")
    breached = page.locator("#breached tbody tr")
    expect(breached).to_have_count(1)
    expect(breached).to_contain_text("Kitchen fire")
    expect(breached).to_contain_text("2 h")  # overdue by two hours
    expect(breached.locator("a")).to_have_attribute(
        "href", "/ui/cases/6f1c2a52-6a3c-4a35-9d8e-1d1f4c1a0b01"
    )
    expect(page.locator("#at-risk")).to_contain_text("Rien à montrer pour l'instant.")
    expect(page.locator("#throughput thead")).to_contain_text("Rouverts")
    expect(page.locator("#throughput tbody tr").first).to_contain_text("1 déc. 2026")
    screenshot(page, "manager-dashboard-contract-fr")
