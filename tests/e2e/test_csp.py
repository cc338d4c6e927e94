"""The API docs run in a real Chromium under the app's strict CSP, offline: Swagger UI's files
come from the app, with no policy violation, no script error and no request that leaves the
app (the ``page`` fixture checks all three, for the dashboard's pages too: every test of
tests/e2e/test_dashboard*.py runs under the same watch)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.browser import browser, page, server, watch

__all__ = ["browser", "page", "server", "watch"]  # fixtures


def test_the_api_docs_render_offline_under_the_csp(server: str, page: Page) -> None:
    page.goto(f"{server}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("caseledger", timeout=15_000)
    expect(page.locator(".opblock-tag-section").first).to_be_visible()
