"""Browser tests: Debian's Chromium, headless, driven by Playwright's sync API over the real server
(uvicorn in a background thread on a free port of 127.0.0.1, over the test's fresh database).

Playwright's Python package brings its driver; the browser is the system's (``/usr/bin/chromium``,
``.ci/run`` installs it from Debian when missing), never one downloaded by ``playwright install``.
Without a Chromium the tests fail rather than skip: they are part of CI. Screenshots go to
``tests/artifacts/screenshots/`` (ignored by git; CI keeps them as artefacts).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from appwarden.app import create_app
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.demo.traffic import LiveServer
from console_world import ConsoleWorld, build_console_world

CHROMIUM = os.environ.get("APPWARDEN_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
# Quiet, offline, no sandbox (CI runs as root in a container without user namespaces).
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Package scope: Playwright's sync API keeps an event loop running in this thread while it is open,
# and the ASGI TestClient of every later test module would refuse to start its own.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def console_world(db: Database) -> ConsoleWorld:
    return build_console_world(db)


@pytest.fixture
def server(settings: Settings, db: Database, console_world: ConsoleWorld) -> Iterator[str]:
    """The real app served over HTTP; yields its base URL."""
    live = settings.model_copy(update={"monitor_background": False})
    with LiveServer(create_app(live, db)) as running:
        yield running.base_url


@pytest.fixture
def new_page(browser: Browser) -> Iterator[object]:
    """``new_page()``: a page in a fresh browser context (its own cookies), closed after the test."""
    contexts = []

    def make() -> Page:
        context = browser.new_context(locale="ja-JP")
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot (the whole page by default) as a test artefact."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
