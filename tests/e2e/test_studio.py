"""The case-type studio in a real headless Chromium, offline: an administrator edits labels, a
decision table, a notification template and a condition through forms and YAML, sees a
problem appear where it belongs and disappear when fixed, tries the draft on recorded cases
and submits it; a second administrator approves and publishes it; a new case follows the new
table. Screenshots of each step are kept (test-artifacts/screenshots/studio-*.png)."""

from __future__ import annotations

import re
from typing import Any

import requests
from playwright.sync_api import Page, expect

from domain.context import CommandContext
from infra.bootstrap import Container, install_case_types
from services.auth import Role
from tests.case_types import claim, shipped_document
from tests.e2e.browser import browser, page, screenshot, server, sign_in, watch

__all__ = ["browser", "page", "server", "watch"]  # fixtures
AUTHOR = CommandContext("someone-else", "admin")
MONEY_VS_NUMBER = "fields.claimed_amount > 10000"
RIGHT_FORM = "fields.claimed_amount.amount > 10000.0"
BIG_CLAIMS = "[data-rule=big_claims_need_an_expert]"


SCRATCH = {
    "name": "scratch",
    "labels": {"en": "Scratch"},
    "states": {"open": {"initial": True}, "done": {"final": True}},
}


def publish(container: Container, version: int) -> None:
    """Submit, approve and publish a draft of insurance_claim, each by another person."""
    case_types = container.case_types
    case_types.submit("insurance_claim", version, "ready", AUTHOR)
    case_types.approve("insurance_claim", version, "fine", CommandContext("reviewer", "manager"))
    case_types.publish("insurance_claim", version, "go", CommandContext("publisher", "admin"))


def open_claim(server: str, key: str) -> str:
    body: dict[str, Any] = {"case_type": "insurance_claim", "title": "A leak"}
    body["fields"] = claim("fire", 900)
    opened = requests.post(
        f"{server}/cases", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert opened.status_code == 201, opened.text
    return str(opened.json()["id"])


def tab(page: Page, name: str) -> None:
    page.click(f"#studio-tabs [data-tab={name}]")


def test_the_editor_keeps_forms_and_yaml_as_one_document_and_checks_as_you_type(
    server: str, page: Page, keys: dict[Role, str], container: Container
) -> None:
    install_case_types(container.case_types, ("insurance_claim.yaml",))
    _, draft, _ = container.case_types.draft(shipped_document("insurance_claim"), "a draft", AUTHOR)
    sign_in(page, server, keys[Role.ADMIN], f"/ui/studio/insurance_claim/{draft}")
    expect(page.locator("#studio-title")).to_have_text(f"Insurance claim · v{draft}")
    expect(page.locator("#check-status")).to_have_text("No problems")

    # A label typed in the form is in the YAML view, and in the changes.
    submitted_fr = page.locator("[data-pointer='/states/submitted/labels/fr']")
    expect(submitted_fr).to_have_value("Déclaré")
    submitted_fr.fill("Reçu")
    # ... and so is a field's help text, beside its labels.
    help_fr = page.locator("[data-pointer='/fields/incident_date/help/fr']")
    expect(help_fr).to_have_value("Le jour du sinistre, pas celui de sa découverte")
    help_fr.fill("Le jour des dégâts")
    # ... and a label in a language the document did not have yet.
    page.fill("#new-language", "Deutsch")
    page.click("#add-language button")
    expect(page.locator("#language-problem")).to_contain_text("not a language code")
    page.fill("#new-language", "de")
    page.click("#add-language button")
    expect(page.locator("#language-problem")).to_be_hidden()
    page.fill("[data-pointer='/labels/de']", "Versicherungsschaden")
    tab(page, "yaml")
    expect(page.locator("#yaml-text")).to_have_value(re.compile("de: Versicherungsschaden"))
    expect(page.locator("#yaml-text")).to_have_value(re.compile("fr: Reçu"))
    expect(page.locator("#yaml-text")).to_have_value(re.compile("fr: Le jour des dégâts"))
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
    # A field a role may now edit is one change of its list, not one per place after it.
    tab(page, "views")
    page.check("tr[data-field=policy_number] input[data-role=handler][data-kind=edit]")
    tab(page, "diff")
    expect(page.locator("#diff tr[data-path^='views.']")).to_have_count(1)
    expect(page.locator("#diff tr[data-path='views.handler.edit'] td").nth(3)).to_contain_text(
        "policy_number"
    )

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

    # A decision-table cell that can never match its input: the problem shows on the cell.
    tab(page, "tables")
    cell = page.locator("[data-table=routing] tr[data-row='1'] td:has([data-col='1'])")
    cell.locator("input").fill('"20000"')  # a number in quotes is text: never equal
    expect(cell.locator("ul.problems")).to_contain_text("write the number without quotes: 20000")
    expect(page.locator("#studio-tabs [data-tab=tables] .count")).to_have_text("1")
    screenshot(page, "studio-editor-table-problem")
    cell.locator("input").fill("> 20000")
    expect(cell.locator("ul.problems")).to_be_hidden()
    expect(page.locator("#check-status")).to_have_text("No problems")

    # Saved and published, the help text shows under its input where cases are filled in.
    page.click("#save")
    expect(page.locator("#dirty")).to_be_hidden()
    publish(container, draft)
    page.goto(f"{server}/ui/new?case_type=insurance_claim")
    page.select_option("#language", "fr")
    expect(page.locator("#open-fields [data-help=incident_date]")).to_have_text(
        "Le jour des dégâts"
    )
    case_id = open_claim(server, keys[Role.HANDLER])
    page.goto(f"{server}/ui/cases/{case_id}")
    expect(page.locator("#fields-form [data-help=contact_email]")).to_have_text(
        "Où nous envoyons l'accusé de réception"
    )
    expect(page.locator("#fields-form [data-help=category]")).to_be_hidden()  # none given


def test_a_draft_discarded_from_the_studio_appears_nowhere(
    server: str, page: Page, keys: dict[Role, str], container: Container
) -> None:
    install_case_types(container.case_types, ("insurance_claim.yaml",))
    _, first, _ = container.case_types.draft(shipped_document("insurance_claim"), "a", AUTHOR)
    _, second, _ = container.case_types.draft(shipped_document("insurance_claim"), "b", AUTHOR)
    container.case_types.draft(SCRATCH, "trying things", AUTHOR)
    sign_in(page, server, keys[Role.ADMIN], "/ui/search")
    expect(page.locator("#search-form option[value=scratch]")).to_have_count(1)

    # From the list: the scratch type's only draft, with a reason.
    page.goto(f"{server}/ui/studio")
    page.click("#studio-types tr[data-name=scratch] button.discard")
    expect(page.locator("#discard-form")).to_contain_text("Discard scratch v1?")
    expect(page.locator("#discard-confirm")).to_be_disabled()  # not without a reason
    page.fill("#discard-reason", "only trying")
    page.click("#discard-confirm")
    expect(page.locator("#discarded")).to_have_text("scratch v1 was discarded.")
    expect(page.locator("#studio-types tr[data-name=scratch]")).to_have_count(0)

    # From the editor: back to the list, where the type has one draft left.
    page.goto(f"{server}/ui/studio/insurance_claim/{first}")
    page.click("#discard")
    page.fill("#discard-reason", "started twice")
    page.click("#discard-confirm")
    expect(page).to_have_url(f"{server}/ui/studio")
    drafts = page.locator("#studio-types tr[data-name=insurance_claim] a.draft")
    expect(drafts).to_have_count(1)
    expect(drafts).to_have_attribute("data-version", str(second))

    page.goto(f"{server}/ui/case-types/insurance_claim")
    expect(page.locator("#versions tbody tr")).to_have_count(2)  # v1 and the draft left
    expect(page.locator(f"#versions tr[data-version='{first}']")).to_have_count(0)
    page.goto(f"{server}/ui/search")
    expect(page.locator("#search-form option[value=insurance_claim]")).to_have_count(1)
    expect(page.locator("#search-form option[value=scratch]")).to_have_count(0)


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


# Not marked slow (about 10 s): it is the proof, so `make test` and CI run it.
def test_an_admin_changes_a_case_type_a_second_admin_publishes_it_and_new_cases_follow(
    server: str, page: Page, keys: dict[Role, str], container: Container
) -> None:
    install_case_types(container.case_types, ("insurance_claim.yaml",))
    handler = {"Authorization": f"Bearer {keys[Role.HANDLER]}"}

    def open_claim(title: str, amount: float) -> dict[str, Any]:
        body: dict[str, Any] = {"case_type": "insurance_claim", "title": title}
        body["fields"] = claim("water_damage", amount)
        opened = requests.post(f"{server}/cases", json=body, headers=handler, timeout=10)
        assert opened.status_code == 201, opened.text
        shown = requests.get(f"{server}/cases/{opened.json()['id']}", headers=handler, timeout=10)
        case: dict[str, Any] = shown.json()
        return case

    recorded = open_claim("Small leak", 8_000)
    assert recorded["queue"] == "property"
    container.projections.catch_up_from_store(container.reader.head(), 10_000)  # the list
    second = container.keys.create(Role.ADMIN, label="second-admin")

    # The first administrator starts a draft from the published version.
    sign_in(page, server, keys[Role.ADMIN], "/ui/studio")
    page.click("#studio-types tr[data-name=insurance_claim] .new-draft")
    expect(page.locator("#studio-title")).to_have_text("Insurance claim · v2")
    expect(page.locator("#check-status")).to_have_text("No problems")

    # Labels, a decision table, a notification template.
    page.fill("[data-pointer='/states/submitted/labels/fr']", "Reçu")
    tab(page, "tables")
    senior = "[data-table=routing] tr[data-row='1'] td [data-col='1']"
    expect(page.locator(senior)).to_have_value("> 20000")
    page.fill(senior, "> 5000")
    screenshot(page, "studio-decision-table")
    tab(page, "simulate")  # the sample case starts as the recorded one; give it an address
    page.fill("#sample-form [data-field=contact_email]", "ann@example.com")
    tab(page, "notifications")
    subject = page.locator("[data-notification=claim_received] input.subject")
    subject.fill("We have your claim {{ case.title }} ({{ fields.category }})")
    preview = page.locator("[data-preview=claim_received] .preview-subject")
    expect(preview).to_have_text("We have your claim Small leak (water_damage)")
    screenshot(page, "studio-notification-preview")

    # A problem appears where it belongs, and goes when fixed.
    tab(page, "rules")
    condition = page.locator(f"{BIG_CLAIMS} textarea")
    condition.fill(MONEY_VS_NUMBER)
    expect(page.locator(f"{BIG_CLAIMS} ul.problems").first).to_contain_text("money")
    screenshot(page, "studio-problem")
    condition.fill(RIGHT_FORM)
    expect(page.locator("#check-status")).to_have_text("No problems")

    # Tried on the recorded cases, then submitted.
    tab(page, "simulate")
    expect(page.locator("#sample-outcome tr[data-attribute=queue] td")).to_have_text(
        ["Queue", "property", "senior-property"]
    )
    page.fill("#what-if-days", "7")
    page.click("#what-if-form button")
    expect(page.locator("#what-if-summary")).to_have_text("1 of 1 cases would differ.")
    queue = page.locator(f"#what-if-report tr[data-case='{recorded['id']}'][data-attribute=queue]")
    expect(queue.locator("td")).to_have_text(["Small leak", "Queue", "property", "senior-property"])
    expect(page.locator("#dirty")).to_be_hidden()  # saved before the replay
    screenshot(page, "studio-what-if")
    tab(page, "review")
    page.fill("#review-comment", "Water claims over 5,000 go to seniors")
    page.click("#submit-review")
    expect(page.locator("#studio-status")).to_have_text("Submitted for review")
    expect(page.locator("#approve")).to_be_hidden()  # not one's own draft
    screenshot(page, "studio-submitted")

    # A second administrator approves and publishes.
    page.click("#sign-out")
    sign_in(page, server, second, "/ui/studio/insurance_claim/2")
    tab(page, "diff")
    expect(
        page.locator("#diff tr[data-path='decision_tables.routing.rows[1].when[1]'] td")
    ).to_have_text(["decision_tables.routing.rows[1].when[1]", "changed", "> 20000", "> 5000"])
    tab(page, "review")
    page.fill("#review-comment", "Checked against last week's claims")
    page.click("#approve")
    expect(page.locator("#studio-status")).to_have_text("Approved: ready to publish")
    page.fill("#review-comment", "Seniors take water claims over 5,000")
    page.click("#publish")
    expect(page.locator("#studio-status")).to_have_text("Published")
    history = page.locator("#history tbody tr")
    expect(history.first.locator("td").nth(1)).to_have_text("Published · v2")
    expect(page.locator("#history tr[data-type=DraftApproved] td").nth(2)).to_have_text(
        "second-admin"
    )
    expect(page.locator("#history tr[data-type=DraftSubmitted] td").nth(3)).to_have_text(
        "Water claims over 5,000 go to seniors"
    )
    expect(page.locator("#save")).to_have_count(0)  # a published version is read-only
    screenshot(page, "studio-published")

    # A new case follows the new table.
    assert open_claim("Another leak", 8_000)["queue"] == "senior-property"
