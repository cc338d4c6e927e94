"""The case-type studio in a real headless Chromium, offline: an administrator edits labels, a
decision table, a notification template and a condition through forms and YAML, sees a
problem appear where it belongs and disappear when fixed, tries the draft on recorded cases
and submits it; a second administrator approves and publishes it; a new case follows the new
table. Screenshots of each step are kept (test-artifacts/screenshots/studio-*.png)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect

from domain.context import CommandContext
from infra.bootstrap import Container, install_case_types
from services.auth import Role
from tests.case_types import shipped_document
from tests.e2e.browser import browser, page, screenshot, server, sign_in, watch

__all__ = ["browser", "page", "server", "watch"]  # fixtures
AUTHOR = CommandContext("someone-else", "admin")
MONEY_VS_NUMBER = "fields.claimed_amount > 10000"
RIGHT_FORM = "fields.claimed_amount.amount > 10000.0"
BIG_CLAIMS = "[data-rule=big_claims_need_an_expert]"


def claim(category: str, amount: float) -> dict[str, Any]:
    return {
        "policy_number": "AB-123456",
        "policy_holder": "P-77",
        "incident_date": "2026-11-02",
        "category": category,
        "claimed_amount": {"amount": amount, "currency": "EUR"},
    }


def tab(page: Page, name: str) -> None:
    page.click(f"#studio-tabs [data-tab={name}]")


def test_the_editor_keeps_forms_and_yaml_as_one_document_and_checks_as_you_type(
    server: str, page: Page, keys: dict[Role, str], container: Container
) -> None:
    install_case_types(container.case_types, ("insurance_claim.yaml",))
    _, draft, _ = container.case_types.draft(
        shipped_document("insurance_claim"), "a draft", AUTHOR
    )
    sign_in(page, server, keys[Role.ADMIN], f"/ui/studio/insurance_claim/{draft}")
    expect(page.locator("#studio-title")).to_have_text(f"Insurance claim · v{draft}")
    expect(page.locator("#check-status")).to_have_text("No problems")

    # A label typed in the form is in the YAML view, and in the changes.
    submitted_fr = page.locator("[data-pointer='/states/submitted/labels/fr']")
    expect(submitted_fr).to_have_value("Déclaré")
    submitted_fr.fill("Reçu")
    tab(page, "yaml")
    expect(page.locator("#yaml-text")).to_have_value(re.compile("fr: Reçu"))
    # ... and YAML typed in the YAML view is in the forms.
    yaml = page.locator("#yaml-text")
    yaml.fill(yaml.input_value().replace("en: Under review", "en: Being reviewed"))
    tab(page, "labels")
    expect(page.locator("[data-pointer='/states/under_review/labels/en']")).to_have_value(
        "Being reviewed"
    )
    tab(page, "diff")
    expect(page.locator("#diff tr[data-path='states.submitted.labels.fr'] td")).to_have_text(
        ["states.submitted.labels.fr", "changed", "Déclaré", "Reçu"]
    )
    screenshot(page, "studio-editor-diff")

    # Money compared with a number: the problem shows beside the condition, then goes.
    tab(page, "rules")
    condition = page.locator(f"{BIG_CLAIMS} textarea")
    condition.fill(MONEY_VS_NUMBER)
    problem = page.locator(f"{BIG_CLAIMS} ul.problems").first  # the condition's
    expect(problem).to_contain_text("money")
    expect(page.locator("#problems li")).to_have_count(1)
    expect(page.locator("#studio-tabs [data-tab=rules] .count")).to_have_text("1")
    expect(page.locator("#save")).to_be_disabled()
    screenshot(page, "studio-editor-problem")
    tab(page, "yaml")
    expect(page.locator(".yaml .gutter li.bad")).to_have_count(1)
    tab(page, "rules")
    condition.fill(RIGHT_FORM)
    expect(problem).to_be_hidden()
    expect(page.locator("#check-status")).to_have_text("No problems")
    expect(page.locator("#save")).to_be_enabled()


def test_other_roles_read_the_studio_without_editing_controls(
    server: str, page: Page, keys: dict[Role, str], container: Container
) -> None:
    install_case_types(container.case_types, ("insurance_claim.yaml",))
    sign_in(page, server, keys[Role.HANDLER], "/ui/studio/insurance_claim/1")
    expect(page.locator("#read-only")).to_have_text(
        "Read only: your role does not author case types."
    )
    expect(page.locator("#save")).to_have_count(0)
    expect(page.locator("[data-pointer='/states/submitted/labels/fr']")).to_be_disabled()
