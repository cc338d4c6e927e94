"""The case-type page in a real headless Chromium, offline: its versions, and "What if?" on a
draft, whose table shows the cases the draft would change, recorded against would-be."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from domain.context import CommandContext
from infra.bootstrap import Container, install_case_types
from services.auth import Role
from tests.case_types import claim, shipped_document
from tests.e2e.browser import browser, page, screenshot, server, sign_in, watch

__all__ = ["browser", "page", "server", "watch"]  # fixtures
HANDLER = CommandContext("ann", "handler")


def test_what_if_on_a_draft_shows_the_cases_it_would_change(
    server: str, page: Page, keys: dict[Role, str], container: Container
) -> None:
    install_case_types(container.case_types, ("insurance_claim.yaml",))
    ledger = container.ledger
    leak = ledger.open_case(
        "insurance_claim", "Small leak", claim("water_damage", 8_000), None, HANDLER
    )
    ledger.open_case("insurance_claim", "Flood", claim("water_damage", 30_000), None, HANDLER)
    document = shipped_document("insurance_claim")
    document["decision_tables"]["routing"]["rows"][1]["when"] = ['"water_damage"', "> 5000"]
    _, draft, _ = container.case_types.draft(document, "lower the senior threshold", HANDLER)
    container.projections.catch_up_from_store(container.reader.head(), 10_000)

    sign_in(page, server, keys[Role.ADMIN], "/ui/case-types/insurance_claim")
    expect(page.locator("#case-type-title")).to_have_text("Insurance claim")
    expect(page.locator("#versions tbody tr")).to_have_count(2)
    expect(page.locator(f"#versions tr[data-version='{draft}']")).to_contain_text("Draft")
    expect(page.locator("#versions tr[data-version='1']")).to_contain_text("current")

    page.fill("#what-if-days", "7")
    page.click("#what-if-form button")
    expect(page.locator("#what-if-summary")).to_have_text("1 of 2 cases would differ.")
    queue = page.locator(f"#what-if-report tr[data-case='{leak.id}'][data-attribute=queue]")
    expect(queue.locator("td")).to_have_text(["Small leak", "Queue", "property", "senior-property"])
    priority = page.locator(f"#what-if-report tr[data-case='{leak.id}'][data-attribute=priority]")
    expect(priority.locator("td")).to_have_text(["", "Priority", "Normal", "High"])
    screenshot(page, "case-type-what-if")

    page.select_option("#language", "fr")
    expect(page.locator("#what-if-summary")).to_have_text("1 dossiers sur 2 seraient différents.")
    expect(priority.locator("td")).to_have_text(["", "Priorité", "Normale", "Haute"])


def test_other_roles_see_the_versions_but_cannot_try_a_draft(
    server: str, page: Page, keys: dict[Role, str], container: Container
) -> None:
    container.case_types.draft(shipped_document("generic"), "a draft", HANDLER)
    sign_in(page, server, keys[Role.HANDLER], "/ui/case-types/generic")
    expect(page.locator("#versions tbody tr")).to_have_count(2)
    expect(page.locator("#what-if")).to_contain_text("Only administrators can try drafts.")
    expect(page.locator("#what-if-form")).to_be_hidden()
