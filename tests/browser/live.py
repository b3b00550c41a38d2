"""The world a browser test drives: a real server, the Graph API stand-in, and seeding helpers.

Data is seeded straight through the services and db layer (the server reads the same database),
so each test states its starting point in a few lines and then acts only through the browser.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import quote

import httpx
from playwright.sync_api import Locator, Page, Route, ViewportSize, expect
from sqlalchemy import Engine

from retargeting.db import orgs, outbox, settings_store
from retargeting.db.engine import READ_ONLY
from retargeting.domain.pixel import PixelSettings
from retargeting.services import credentials, org_retargeting, pixel_settings
from tests.factories import ACCESS_TOKEN, PIXEL_ID, make_cipher
from tests.fakes.graph_stand_in import GraphStandIn
from tests.support.live_server import LiveServer

PAGE_PATH = "/platform/retargeting"
LOGIN_PATH = "/login"
ADMIN_EMAIL = "sa@example.com"
ADMIN_PASSWORD = "correct horse battery staple"
EVENT_NAMES = (
    "GreetNow_WidgetView",
    "GreetNow_WidgetView_B2B",
    "GreetNow_CallStarted",
    "Lead",
    "GreetNow_CallStarted_B2B",
)
TOKEN_LAST4 = ACCESS_TOKEN[-4:]
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
TIMEOUT_MS = 10_000  # a healthy page answers in milliseconds; this only bounds a failure


@dataclass
class Live:
    server: LiveServer
    graph: GraphStandIn
    engine: Engine
    email: str = ADMIN_EMAIL
    password: str = ADMIN_PASSWORD

    @property
    def url(self) -> str:
        return self.server.url

    # -- seeding -------------------------------------------------------------------------------

    def org(
        self,
        org_id: str,
        name: str | None = None,
        *,
        status: str = "active",
        enabled: bool = False,
        pageviews: int = 0,
        calls: int = 0,
    ) -> str:
        now = time.time()
        with self.engine.begin() as conn:
            orgs.upsert(conn, org_id, name or org_id.replace("-", " ").title(), status, now)
            if enabled:
                orgs.set_retargeting(conn, org_id, True, now)
            if pageviews or calls:
                orgs.add_counts_returning_flags(conn, {org_id: (pageviews, calls)})
        return org_id

    def pixel(
        self,
        *,
        pixel_id: str = PIXEL_ID,
        access_token: str | None = ACCESS_TOKEN,
        enabled: bool = True,
        test_event_code: str = "",
    ) -> PixelSettings:
        return pixel_settings.update_pixel(
            self.engine,
            make_cipher(),
            actor="seed@example.com",
            update=pixel_settings.PixelUpdate(
                pixel_id=pixel_id,
                enabled=enabled,
                test_event_code=test_event_code,
                access_token=access_token,
            ),
            now=time.time(),
        )

    def api_key(self) -> str:
        return credentials.create_api_key(self.engine, name="widget-server", now=time.time()).secret

    def ingest(self, api_key: str, kind: str, org_id: str, **fields: str) -> None:
        """POST one widget view or call start as the platform's servers do (`kind` is the path)."""
        body = {
            "organization_id": org_id,
            "visitor_id": "visitor-1",
            "page_url": "https://customer.example/pricing",
            "client_ip_address": "203.0.113.7",
            "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
            **fields,
        }
        headers = {"Authorization": f"Bearer {api_key}"}
        deadline = time.monotonic() + 5
        while True:  # a new key is live in the server after its next settings poll
            answer = httpx.post(
                f"{self.url}/api/v1/events/{kind}", json=body, headers=headers, timeout=5
            )
            if answer.status_code != 401 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert answer.status_code == 202, answer.text

    def widget_view(self, api_key: str, org_id: str, visitor: str = "visitor-1") -> None:
        self.ingest(api_key, "widget-view", org_id, visitor_id=visitor)

    def toggle(self, org_id: str, enabled: bool, actor: str = "ops@example.com") -> None:
        """Switch an org through the service, as an admin would (it writes the audit log)."""
        org_retargeting.set_retargeting(
            self.engine, make_cipher(), actor=actor, org_id=org_id, enabled=enabled, now=time.time()
        )

    def wait_until_delivered(self, timeout: float = 15.0) -> None:
        """Until nothing waits in the outbox (delivered, failed or expired: all settled)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
                waiting = sum(row.queued for row in outbox.stats_by_event_name(conn))
            if not waiting:
                return
            assert time.monotonic() < deadline, f"{waiting} events still waiting"
            time.sleep(0.1)

    # -- reading back --------------------------------------------------------------------------

    def stored_org(self, org_id: str) -> orgs.Organization:
        with self.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            org = orgs.get(conn, org_id)
        assert org is not None
        return org

    def stored_pixel(self) -> PixelSettings:
        with self.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            return settings_store.read_pixel(conn, make_cipher())

    def stored_pause(self) -> settings_store.DeliveryPause | None:
        with self.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            return settings_store.read_pause(conn)


# -- driving the browser -------------------------------------------------------------------------


def sign_in(page: Page, live: Live, *, then: str = PAGE_PATH) -> None:
    """Sign in through the real /login form, which sends the browser on to `then`."""
    page.goto(f"{LOGIN_PATH}?next={quote(then, safe='')}")
    page.get_by_role("textbox", name="Email").fill(live.email)
    page.get_by_role("textbox", name="Password").fill(live.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(then) + r"(#.*)?$"))
    # The URL changes when the new page commits, before its scripts run; a click that came
    # sooner would post the form the no-JS way (seen once in a full run on a busy machine).
    page.wait_for_load_state("load")
    if then == PAGE_PATH:
        expect(page.get_by_role("heading", name="Retargeting", exact=True)).to_be_visible()


class HeldWrites:
    """Holds the page's writes (not GETs) to `pattern` until released, to see the saving state."""

    def __init__(self, page: Page, pattern: str) -> None:
        self.page = page
        self.pattern = pattern
        self.routes: list[Route] = []
        page.route(pattern, self._handle)

    def _handle(self, route: Route) -> None:
        if route.request.method == "GET":
            route.continue_()
        else:
            self.routes.append(route)

    def release(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.routes:
            assert time.monotonic() < deadline, f"the page sent nothing to {self.pattern}"
            self.page.wait_for_timeout(20)
        for route in self.routes:
            route.continue_()
        self.page.unroute(self.pattern, self._handle)


def org_switch(page: Page, name: str) -> Locator:
    return page.get_by_role("switch", name=f"Retargeting for {name}", exact=True)


def summary_card(page: Page, title: str) -> Locator:
    """A summary card: the article under the heading `title`."""
    return page.get_by_role("article").filter(
        has=page.get_by_role("heading", name=title, exact=True)
    )


def org_table(page: Page) -> Locator:
    """The organizations table: the one that holds the sortable "Pageviews" column."""
    return page.get_by_role("table").filter(has=page.get_by_role("columnheader", name="Pageviews"))


def data_rows(page: Page) -> Locator:
    """The table's rows that hold an organization (each has its retargeting switch)."""
    return org_table(page).get_by_role("row").filter(has=page.get_by_role("switch"))


def row_names(page: Page) -> list[str]:
    """Organization names in table order (each row's header cell)."""
    return [name.strip() for name in data_rows(page).get_by_role("rowheader").all_inner_texts()]
