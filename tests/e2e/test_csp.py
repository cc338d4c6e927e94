"""The dashboard and the API docs run in a real Chromium under the app's strict CSP, offline:
no policy violation, and no request leaves the app."""

from __future__ import annotations

from playwright.sync_api import ConsoleMessage, Page, expect

from services.auth import Role
from tests.e2e.test_dashboard import page, server

__all__ = ["page", "server"]  # fixtures shared with the dashboard test


def _watch(page: Page) -> tuple[list[str], list[str]]:
    violations: list[str] = []
    requested: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    page.on("console", console)
    page.on("request", lambda request: requested.append(request.url))
    return violations, requested


def test_the_api_docs_render_offline_under_the_csp(server: str, page: Page) -> None:
    violations, requested = _watch(page)
    page.goto(f"{server}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("caseledger", timeout=15_000)
    expect(page.locator(".opblock-tag-section").first).to_be_visible()
    assert violations == []
    assert all(url.startswith(server) or url.startswith("data:") for url in requested), requested


def test_the_dashboard_works_under_the_csp(server: str, page: Page, keys: dict[Role, str]) -> None:
    violations, requested = _watch(page)
    page.goto(server)
    expect(page.locator("#health")).to_have_text("database and broker up", timeout=15_000)
    page.fill("#key", keys[Role.HANDLER])
    page.click("#key-form button")
    expect(page.locator("#workspace")).to_be_visible()
    expect(page.locator("#open-type")).to_have_value("generic")
    assert violations == []
    assert all(url.startswith(server) or url.startswith("data:") for url in requested), requested
