"""The dashboard in a real headless Chromium, against a real server, offline: a handler opens
and works a case; an insurance claim is worked in French through its rules and guards."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from infra.bootstrap import Container, install_case_types
from services.auth import Role
from tests.e2e.browser import TIME_ZONE, browser, page, screenshot, server, sign_in, watch

__all__ = ["browser", "page", "server", "watch"]  # fixtures


def test_a_handler_signs_in_opens_a_case_takes_a_transition_and_reads_it_as_sentences(
    server: str, page: Page, keys: dict[Role, str]
) -> None:
    page.goto(f"{server}/ui/new")
    page.fill("#key", "cl_handler_not-a-real-key")
    page.click("#key-form button")
    expect(page.locator("#error")).to_contain_text("unknown API key")  # and what to do
    expect(page.locator("#error")).to_contain_text("caseledger keys create")
    expect(page.locator("#page")).to_have_count(0)

    sign_in(page, server, keys[Role.HANDLER], "/ui/new")
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#who")).to_have_text("test-handler · Handler")
    expect(page.locator("#health")).to_have_text("database and broker up")
    expect(page.locator("#open-type")).to_have_value("generic")
    page.fill("#open-form [name=title]", "Water damage in the kitchen")
    page.fill("#open-fields textarea", '{"amount": 1200}')
    page.click("#open-form button[type=submit]")

    expect(page.locator("#case-title")).to_have_text("Water damage in the kitchen")
    timeline = page.locator("ol.timeline > li")
    expect(timeline).to_have_count(1)
    expect(timeline.first).to_contain_text("test-handler")
    page.fill("#assign-form [name=assignee]", "bob")
    page.click("#assign-form button[type=submit]")
    expect(timeline).to_have_count(2)
    expect(timeline.nth(1)).to_contain_text("bob")

    page.click("button[data-transition=start_work]")
    expect(page.locator("#facts")).to_contain_text("In progress")
    expect(timeline).to_have_count(3)
    moved = timeline.nth(2)
    expect(moved).to_contain_text("In progress")  # "test-handler moved … from Open to In progress"
    recorded = moved.locator("time").get_attribute("datetime")
    assert recorded is not None
    local = datetime.fromisoformat(recorded).astimezone(ZoneInfo(TIME_ZONE))
    expect(moved.locator("time")).to_contain_text(local.strftime("%H:%M"))  # the browser's zone

    expect(page.locator("#assign-form")).to_be_visible()
    expect(page.locator("#fields")).to_be_visible()
    page.fill("#close-form [name=reason]", "repaired")
    page.click("#close-form button[type=submit]")
    expect(page.locator("#facts")).to_contain_text("Closed")
    expect(page.locator("#close-form")).to_be_hidden()
    expect(page.locator("#reopen-form")).to_be_hidden()  # handlers may not reopen
    expect(page.locator("#transitions")).to_be_hidden()
    expect(page.locator("#assign-form")).to_be_hidden()  # a closed case is locked
    expect(page.locator("#fields")).to_be_hidden()  # ... its fields too
    screenshot(page, "case-closed-by-handler")


CLAIM = {
    "policy_number": "AB-123456",
    "policy_holder": "P-77",
    "incident_date": "2026-11-02",
}


def test_an_insurance_claim_in_french_routed_by_rules_and_moved_by_its_transitions(
    server: str, page: Page, keys: dict[Role, str], container: Container
) -> None:
    install_case_types(container.case_types, ("insurance_claim.yaml",))
    sign_in(page, server, keys[Role.HANDLER], "/ui/new")
    page.select_option("#language", "fr")
    expect(page.locator("#page h2")).to_have_text("Ouvrir un nouveau dossier")
    page.reload()  # the choice of language is remembered
    expect(page.locator("#language")).to_have_value("fr")
    expect(page.locator("#who")).to_contain_text("test-handler · Gestionnaire")

    page.select_option("#open-type", "insurance_claim")
    expect(page.locator("#open-type option:checked")).to_have_text("Déclaration de sinistre")
    expect(page.locator("#open-fields")).to_contain_text("Montant réclamé *")
    page.fill("#open-form [name=title]", "Dégât des eaux")
    for name, value in CLAIM.items():
        page.fill(f"#open-fields [data-field={name}]", value)
    category = page.locator("#open-fields [data-field=category]")
    expect(category.locator("option[value=water_damage]")).to_have_text("Dégât des eaux")
    category.select_option(label="Dégât des eaux")  # chosen by its label, sent as its key
    page.fill("#open-fields [data-field=claimed_amount] [data-part=amount]", "25000")
    page.click("#open-form button[type=submit]")

    expect(page.locator("#case-title")).to_have_text("Dégât des eaux")
    facts = page.locator("#facts")
    expect(facts).to_contain_text("Déclaré")
    expect(facts).to_contain_text("Haute")  # priority, in French
    expect(facts).to_contain_text("senior-property")  # routed by the decision table
    expect(facts).to_contain_text("2 nov. 2026")  # a date field, in the French format
    expect(facts.locator(".fact", has_text="Nature du sinistre")).to_contain_text("Dégât des eaux")
    timeline = page.locator("#timeline")
    expect(timeline.locator(".rule").first).to_contain_text("route_new_claim")
    expect(page.locator("#slas")).to_contain_text("first_response · en cours")

    page.locator("#transitions button", has_text="Commencer l'instruction").click()
    expect(facts).to_contain_text("Expertise")  # a rule sends big claims to an expert
    expect(timeline).to_contain_text("big_claims_need_an_expert")
    page.fill("#fields-form [data-field=contact_email]", "not an address")
    page.click("#save-fields")
    error = page.locator("#error")
    expect(error).to_contain_text("does not match the pattern")
    expect(error).to_contain_text("Conseil : fields of 'insurance_claim'")
    page.fill("#fields-form [data-field=contact_email]", "claimant@example.com")
    page.click("#save-fields")
    change = timeline.locator(".changes li", has_text="claimant@example.com")
    expect(change).to_have_text("E-mail de contact : — → claimant@example.com")  # before → after
    expect(error).to_be_hidden()
    page.select_option("#fields-form [data-field=category]", label="Incendie")
    page.click("#save-fields")
    recategorised = timeline.locator(".changes li", has_text="Incendie")
    expect(recategorised).to_have_text("Nature du sinistre : Dégât des eaux → Incendie")
    expect(facts.locator(".fact", has_text="Nature du sinistre")).to_contain_text("Incendie")

    page.locator("#transitions button", has_text="Rapport d'expertise reçu").click()
    expect(facts).to_contain_text("En instruction")
    page.locator("#transitions button", has_text="Accepter").click()
    expect(facts).to_contain_text("Accepté")
    settle = page.locator("#transitions button", has_text="Indemniser")
    expect(settle).to_be_enabled()  # it needs a field first, which the form asks for
    settle.click()
    needs = page.locator("#needs-form")
    expect(needs).to_contain_text("Montant de l'indemnité *")
    page.fill("#needs-form [data-field=settlement_amount] [data-part=amount]", "30000")
    page.fill("#transitions [name=reason]", "rapport d'expertise")
    needs.locator("button[type=submit]").click()
    expect(error).to_contain_text("is not allowed now")  # more than was claimed
    expect(facts).to_contain_text("Accepté")
    page.fill("#needs-form [data-field=settlement_amount] [data-part=amount]", "20000")
    needs.locator("button[type=submit]").click()
    expect(facts).to_contain_text("Indemnisé")
    expect(facts).to_contain_text("20 000,00 €")
    expect(needs).to_be_hidden()
    expect(page.locator("#transitions")).to_be_hidden()
    screenshot(page, "claim-settled-fr")
