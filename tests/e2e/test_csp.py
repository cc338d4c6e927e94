"""The dashboard's pages and the API docs run in a real Chromium under the app's strict CSP,
offline: each page loads, with no policy violation, no script error, and no request that
leaves the app (the ``page`` fixture checks all three)."""

from __future__ import annotations

from uuid import uuid4

from playwright.sync_api import Page, expect

from services.auth import Role
from tests.e2e.browser import Watch, browser, page, server, sign_in, watch

__all__ = ["browser", "page", "server", "watch"]  # fixtures


def test_the_api_docs_render_offline_under_the_csp(server: str, page: Page) -> None:
    page.goto(f"{server}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("caseledger", timeout=15_000)
    expect(page.locator(".opblock-tag-section").first).to_be_visible()


def test_every_dashboard_page_loads_under_the_csp(
    server: str, page: Page, keys: dict[Role, str], watch: Watch
) -> None:
    sign_in(page, server, keys[Role.HANDLER])
    headings = {
        "/ui/": "My work queue",
        "/ui/search": "Search and lists",
        "/ui/manager": "Manager dashboard",
        "/ui/new": "Open a new case",
    }
    for path, heading in headings.items():
        page.goto(f"{server}{path}")
        expect(page.locator("#page h2").first).to_have_text(heading)
    page.goto(f"{server}/ui/cases/{uuid4()}")  # a case that does not exist says so
    expect(page.locator("#error")).to_contain_text("no case has id")
    watch.clean()
