"""Headless Chromium against a real `retargeting serve` process and the Graph API stand-in.

Each test gets a world of its own: a fresh SQLite database (a copy of the migrated template with
the superadmin already in it, so no test pays for hashing a password), a Graph API stand-in, a
server process, and a fresh browser context at 1280x900. A server takes about 3 s to start, most
of it imports, so the next test's world boots in a background thread while the current test
runs. The database layer is covered on PostgreSQL by the integration tier; the browser tier runs
on SQLite only, to stay within about two minutes.

Playwright and the browser live for this package only (not the session): Playwright's sync API
marks an asyncio loop as running in the main thread while it is alive, which the async tests in
other packages would trip over. Debian's Chromium is launched by path; `playwright install` is
never needed (see /work/shared/notes/machine.md).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, Response, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from retargeting.db.engine import make_engine
from retargeting.services import credentials
from tests.browser.live import ADMIN_EMAIL, ADMIN_PASSWORD, TIMEOUT_MS, VIEWPORT, Live
from tests.factories import ACCESS_TOKEN, PIXEL_ID, TEST_KEY
from tests.fakes.graph_stand_in import GraphStandIn
from tests.support import secret_watch
from tests.support.live_server import LiveServer, live_server

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
BOOT_TIMEOUT_SECONDS = 60.0  # the server's own start-up wait is 30 s

expect.set_options(timeout=TIMEOUT_MS)


# -- worlds: database + stand-in + server ----------------------------------------------------------


class World:
    """One server on its own database and stand-in, started in a thread until `stop()`."""

    def __init__(self, template: Path, directory: Path) -> None:
        self.directory = directory
        database = directory / "browser.sqlite3"
        shutil.copyfile(template, database)
        self.database_url = f"sqlite:///{database}"
        self.graph = GraphStandIn({ACCESS_TOKEN}, {PIXEL_ID}).start()
        self.env = {
            "RETARGETING_ENVIRONMENT": "test",
            "RETARGETING_DATABASE_URL": self.database_url,
            "RETARGETING_SECRET_KEY": TEST_KEY,
            "RETARGETING_VAR_DIR": str(directory),
            "RETARGETING_GRAPH_API_URL": self.graph.url,
            "RETARGETING_GRAPH_TIMEOUT_SECONDS": "1",
            "RETARGETING_LINGER_SECONDS": "0.05",
            "RETARGETING_SETTINGS_POLL_SECONDS": "0.1",
        }
        self.server: LiveServer | None = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._run, name="browser-world", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with live_server(self.env, self.directory) as server:
                self.server = server
                self._ready.set()
                self._release.wait()
        except BaseException as exc:  # handed to the test that waits for this world
            self.error = exc
        finally:
            self._ready.set()

    def wait(self) -> LiveServer:
        if not self._ready.wait(BOOT_TIMEOUT_SECONDS):
            raise RuntimeError("the server did not start in time")
        if self.error is not None:
            raise RuntimeError("the server did not start") from self.error
        assert self.server is not None
        return self.server

    def stop(self) -> str:
        """Stop the server and the stand-in; returns the server's log."""
        self._release.set()
        self._thread.join(BOOT_TIMEOUT_SECONDS)
        self.graph.stop()
        return self.server.log() if self.server is not None else ""


class Worlds:
    """Hands out ready worlds, always booting the next one in the background."""

    def __init__(self, template: Path, factory: pytest.TempPathFactory) -> None:
        self._template = template
        self._factory = factory
        self._spare: World | None = None

    def _boot(self, template: Path | None = None) -> World:
        return World(template or self._template, self._factory.mktemp("world"))

    def take(self) -> World:
        world = self._spare or self._boot()
        self._spare = None
        try:
            world.wait()
        except BaseException:
            world.stop()
            raise
        self._spare = self._boot()
        return world

    def first_run(self, empty_template: Path) -> World:
        """A world without any user: the server prints a one-time setup link."""
        world = self._boot(empty_template)
        world.wait()
        return world

    def close(self) -> None:
        if self._spare is not None:
            self._spare.stop()
            self._spare = None


@pytest.fixture(scope="package")
def browser_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The migrated template plus the superadmin, hashed once for the whole package."""
    path = tmp_path_factory.mktemp("browser-template") / "template.sqlite3"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    try:
        credentials.create_user(
            engine, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, is_superadmin=True, now=time.time()
        )
    finally:
        engine.dispose()
    return path


@pytest.fixture(scope="package")
def worlds(browser_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worlds]:
    pool = Worlds(browser_template, tmp_path_factory)
    yield pool
    pool.close()


def _live(world: World) -> Iterator[Live]:
    engine = make_engine(world.database_url)
    try:
        yield Live(world.wait(), world.graph, engine)
    finally:
        log = world.stop()
        engine.dispose()
    assert ACCESS_TOKEN not in log
    assert ADMIN_PASSWORD not in log


@pytest.fixture
def live(worlds: Worlds) -> Iterator[Live]:
    """A running server with a superadmin; the pixel and organizations are up to each test."""
    yield from _live(worlds.take())


@pytest.fixture
def first_run_live(worlds: Worlds, sqlite_template: Path) -> Iterator[Live]:
    """A running server on a database without any user (the first start of a deployment)."""
    yield from _live(worlds.first_run(sqlite_template))


# -- the browser -----------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make system-packages` (apt-get install chromium)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


def _open_page(browser: Browser, live: Live, *, javascript: bool = True) -> Iterator[Page]:
    context = browser.new_context(
        base_url=live.url,
        viewport=VIEWPORT,
        java_script_enabled=javascript,
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    responses: list[Response] = []
    page.on("request", lambda request: secret_watch.capture_url("the browser", request.url))
    page.on("response", lambda response: responses.append(response))
    yield page
    _capture_pages(page, responses)
    context.close()
    assert problems == [], problems


def _capture_pages(page: Page, responses: list[Response]) -> None:
    """Hand what the browser was shown to the secret watch: documents, fetches, final DOM."""
    for response in responses:
        if response.request.resource_type not in {"document", "fetch", "xhr"}:
            continue
        try:
            body = response.text()
        except PlaywrightError:  # redirects and evicted resources have no body
            continue
        secret_watch.capture(f"the browser's {response.request.method} {response.url}", body)
    with contextlib.suppress(PlaywrightError):
        secret_watch.capture(f"the page at {page.url}", page.content())


@pytest.fixture
def page(browser: Browser, live: Live) -> Iterator[Page]:
    """A page in a fresh context; fails the test on uncaught script errors and CSP refusals."""
    yield from _open_page(browser, live)


@pytest.fixture
def plain_page(browser: Browser, live: Live) -> Iterator[Page]:
    """A page with JavaScript off: what the server alone renders and answers."""
    yield from _open_page(browser, live, javascript=False)


@pytest.fixture
def first_run_page(browser: Browser, first_run_live: Live) -> Iterator[Page]:
    yield from _open_page(browser, first_run_live)
