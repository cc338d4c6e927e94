"""The dashboard in a real headless Chromium, against a real server, offline."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Page, expect, sync_playwright

from infra.bootstrap import Container, build_api, build_projector, install_case_types
from infra.embedded import free_port
from services.auth import Role
from tests.integration.helpers import running

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def server(container: Container) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(build_api(container), host="127.0.0.1", port=port, log_level="error")
    web = uvicorn.Server(config)
    thread = threading.Thread(target=web.run, daemon=True)
    thread.start()
    while not web.started:
        time.sleep(0.05)
    with running(container.relay.run), running(build_projector(container).run):
        yield f"http://127.0.0.1:{port}"
    web.should_exit = True
    thread.join(10)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    assert Path(CHROMIUM).exists(), "install Chromium: apt-get install chromium (make test does)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context()
        yield context.new_page()
        browser.close()


def test_a_handler_opens_works_and_reads_a_case_in_the_dashboard(
    server: str, page: Page, keys: dict[Role, str], tmp_path: Path
) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(server)
    expect(page.locator("#health")).to_have_text("database and broker up", timeout=15_000)

    page.fill("#key", keys[Role.HANDLER])
    page.click("#key-form button")
    page.click("#new-case summary")
    expect(page.locator("#open-type")).to_have_value("generic")
    page.fill("#open-form [name=title]", "Water damage in the kitchen")
    page.fill("#open-fields textarea", '{"amount": 1200}')
    page.click("#open-form button[type=submit]")
    row = page.locator("#cases tbody tr", has_text="Water damage in the kitchen")
    expect(row).to_be_visible(timeout=30_000)  # it went through Kafka to the projection

    expect(page.locator("#d-title")).to_have_text("Water damage in the kitchen")
    page.fill("[data-verb=assign] [name=assignee]", "bob")
    page.click("[data-verb=assign] button")
    expect(page.locator("#history li")).to_have_count(2)
    expect(page.locator("#history li").nth(1)).to_contain_text("assignee: bob")
    expect(row.locator("td").nth(5)).to_have_text("bob", timeout=15_000)
    page.click("#transitions button[data-transition=start_work]")
    expect(page.locator("#d-facts")).to_contain_text("In progress")

    page.fill("[data-verb=close] [name=reason]", "repaired")
    page.click("[data-verb=close] button")
    expect(page.locator("#history li")).to_have_count(4)
    page.fill("[data-verb=close] [name=reason]", "twice")  # the case is closed already
    page.click("[data-verb=close] button")
    expect(page.locator("#error")).to_contain_text("reopen the case first")
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

    assert requested, "the page made no request"
    outside = [url for url in requested if not url.startswith(server)]
    assert outside == [], f"the dashboard fetched from outside the app: {outside}"


CLAIM = {
    "policy_number": "AB-123456",
    "policy_holder": "P-77",
    "incident_date": "2026-11-02",
}


def test_an_insurance_claim_in_french_routed_by_rules_and_moved_by_its_transitions(
    server: str, page: Page, keys: dict[Role, str], container: Container, tmp_path: Path
) -> None:
    install_case_types(container.case_types, ("insurance_claim.yaml",))
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(server)
    page.fill("#key", keys[Role.HANDLER])
    page.click("#key-form button")
    page.select_option("#language", "fr")
    page.reload()  # the choice of language is remembered
    expect(page.locator("#language")).to_have_value("fr")

    page.click("#new-case summary")
    page.select_option("#open-type", "insurance_claim")
    expect(page.locator("#open-type option:checked")).to_have_text("Déclaration de sinistre")
    expect(page.locator("#open-fields")).to_contain_text("Montant réclamé *")
    page.fill("#open-form [name=title]", "Dégât des eaux")
    for name, value in CLAIM.items():
        page.fill(f"#open-fields [data-field={name}]", value)
    page.select_option("#open-fields [data-field=category]", "water_damage")
    page.fill("#open-fields [data-field=claimed_amount] [data-part=amount]", "25000")
    page.click("#open-form button[type=submit]")

    expect(page.locator("#d-title")).to_have_text("Dégât des eaux", timeout=15_000)
    facts = page.locator("#d-facts")
    expect(facts).to_contain_text("Déclaré")
    expect(facts).to_contain_text("senior-property")  # routed by the decision table
    expect(page.locator("#history")).to_contain_text("rule route_new_claim")
    expect(page.locator("#slas")).to_contain_text("first_response: running")

    page.select_option("#filters [name=case_type]", "insurance_claim")
    listed = page.locator("#cases tbody tr", has_text="Dégât des eaux")
    expect(listed).to_be_visible(timeout=30_000)
    expect(page.locator("#cases thead")).to_contain_text("Nature du sinistre")  # handler columns
    expect(listed).to_contain_text("water_damage")
    expect(listed).to_contain_text("senior-property")

    page.locator("#transitions button", has_text="Commencer l'instruction").click()
    expect(facts).to_contain_text("Expertise")  # a rule sends big claims to an expert
    expect(page.locator("#history")).to_contain_text("rule big_claims_need_an_expert")
    page.fill("#edit-fields [data-field=contact_email]", "not an address")
    page.click("#save-fields")
    expect(page.locator("#error")).to_contain_text("does not match the pattern")
    expect(page.locator("#error")).to_contain_text("Hint: fields of 'insurance_claim'")
    page.fill("#edit-fields [data-field=contact_email]", "claimant@example.com")
    page.click("#save-fields")
    expect(page.locator("#history")).to_contain_text("FieldsUpdated")
    expect(page.locator("#error")).to_be_hidden()

    page.locator("#transitions button", has_text="Rapport d'expertise reçu").click()
    expect(facts).to_contain_text("En instruction")
    page.locator("#transitions button", has_text="Accepter").click()
    expect(facts).to_contain_text("Accepté")
    page.locator("#transitions button", has_text="Indemniser").click()  # requires an amount
    needs = page.locator("#needs-form")
    expect(needs).to_contain_text("Montant de l'indemnité *")
    page.fill("#needs-fields [data-field=settlement_amount] [data-part=amount]", "30000")
    page.fill("#transition-form [name=reason]", "expert report")
    needs.locator("button[type=submit]").click()
    error = page.locator("#error")
    expect(error).to_contain_text("is not allowed now")  # more than was claimed
    expect(error).to_contain_text("Hint: change the case so the condition holds")
    expect(facts).to_contain_text("Accepté")
    page.fill("#needs-fields [data-field=settlement_amount] [data-part=amount]", "20000")
    needs.locator("button[type=submit]").click()
    expect(facts).to_contain_text("Indemnisé")
    expect(facts).to_contain_text("20000 EUR")
    expect(needs).to_be_hidden()
    expect(page.locator("#transitions")).to_have_text("none available")
    page.screenshot(path=str(tmp_path / "claim.png"), full_page=True)
    assert [url for url in requested if not url.startswith(server)] == []


def test_a_wrong_key_is_refused_with_a_way_forward(server: str, page: Page) -> None:
    page.goto(server)
    page.fill("#key", "cl_handler_not-a-real-key")
    page.click("#key-form button")
    expect(page.locator("#error")).to_contain_text("unknown API key")
    expect(page.locator("#sign-in")).to_be_visible()
