"""Fixtures for the dashboard tests: a real server on a free port (with the relay and the
projection worker), and pages of one real headless Chromium that can reach nothing but that
server, so every test also proves the dashboard works offline.

Test modules import the fixtures they use (``from tests.e2e.browser import page, server``):
``server`` is the API alone, ``listing_server`` also runs what fills the case list.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, sync_playwright

from infra.bootstrap import Container, build_api, build_projector
from infra.embedded import free_port
from tests.integration.helpers import running, wait_until

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
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
LOCAL = re.compile(r"^(https?|wss?)://(127\.0\.0\.1|localhost)(:\d+)?/")
# The browser's own time zone in these tests: the pages must show times in it, not in UTC.
TIME_ZONE = "Europe/Paris"


@dataclass
class Watch:
    """What a page did: requests that left the machine (aborted), CSP violations and script
    errors reported on its console."""

    outside: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def clean(self) -> None:
        assert self.outside == [], f"the page tried to reach outside the app: {self.outside}"
        assert self.violations == [], f"Content-Security-Policy violations: {self.violations}"
        assert self.errors == [], f"script errors: {self.errors}"


@contextmanager
def serving(container: Container) -> Iterator[str]:
    """The API on a free port, for the duration of the block."""
    port = free_port()
    config = uvicorn.Config(build_api(container), host="127.0.0.1", port=port, log_level="error")
    web = uvicorn.Server(config)
    thread = threading.Thread(target=web.run, daemon=True)
    thread.start()
    wait_until(lambda: web.started, 30, "the API to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        web.should_exit = True
        thread.join(10)


@pytest.fixture
def server(container: Container) -> Iterator[str]:
    """The API alone: pages that read cases by id (the event store) need nothing more."""
    with serving(container) as url:
        yield url


@pytest.fixture
def listing_server(container: Container) -> Iterator[str]:
    """The API with the relay and the projection worker: the case list follows the cases."""
    projector = build_projector(container)
    with serving(container) as url, running(container.relay.run), running(projector.run):
        yield url


# Per module: each test module imports this fixture, and two sync Playwright sessions may not
# run at once.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "install Chromium: apt-get install chromium (make browser)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def page(browser: Browser, watch: Watch) -> Iterator[Page]:
    """A page in a fresh browser context (its own storage) that can reach only this machine;
    the test fails if the page tried to leave it, broke the CSP or raised a script error."""
    context = browser.new_context(timezone_id=TIME_ZONE, locale="en-GB")
    context.set_default_timeout(10_000)

    def outside(route: Route) -> None:
        watch.outside.append(route.request.url)
        route.abort("internetdisconnected")

    context.route(lambda url: not LOCAL.match(url) and not url.startswith("data:"), outside)
    opened = context.new_page()

    def console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            watch.violations.append(message.text)
        elif "Alpine" in message.text or (
            message.type == "error" and "Failed to load resource" not in message.text
        ):
            watch.errors.append(message.text)

    opened.on("console", console)
    opened.on("pageerror", lambda error: watch.errors.append(str(error)))
    yield opened
    context.close()
    watch.clean()


def screenshot(page: Page, name: str) -> None:
    """Keep what the page looked like, as a test artifact (CI publishes the folder)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, server: str, key: str, path: str = "/ui/") -> None:
    page.goto(f"{server}{path}")
    page.fill("#key", key)
    page.click("#key-form button")
    page.locator("#who").wait_for(state="visible")
