"""Everything the superadmin page shows, gathered in two read-only connections.

The page must stay fast with 10,000 organizations and millions of pageviews: it reads one page of
organizations (`orgs.page`), the enabled/total counts (`orgs.counts`), the per-organization
pageview and call counters (columns, never a COUNT over the pageview rows), the pixel, the last
audit entries and the delivery report (counters plus an index range). The audit log is turned
into human words here, so the template only lays text out; the access token never reaches it
(the log stores a masked public view).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection, Engine

from retargeting.db import audit, orgs, settings_store
from retargeting.db.engine import READ_ONLY
from retargeting.domain.events import ALL_EVENT_NAMES
from retargeting.domain.pixel import PixelSettings, PixelState, token_last4
from retargeting.security import TokenCipher
from retargeting.services import delivery_report
from retargeting.snapshot import Snapshot

ORG_PAGE_SIZE = 25
AUDIT_LIMIT = 10
MAX_SEARCH_LENGTH = 300  # the API's bound; a name is far shorter
MAX_PAGE = 1_000_000  # keeps OFFSET far inside a 64-bit integer

PIXEL_STATE_LABELS = {
    PixelState.NOT_CONFIGURED: "Not configured",
    PixelState.DISABLED: "Configured (Disabled)",
    PixelState.ACTIVE: "Active",
}


@dataclass(frozen=True, slots=True)
class OrgQuery:
    """The organizations list's filters, sort and page, as the query string carries them."""

    search: str = ""
    enabled_only: bool = False
    sort: orgs.SortKey = orgs.SortKey.NAME
    descending: bool = False
    page: int = 1

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> OrgQuery:
        """Lenient: a page link never fails; an unknown sort or a bad page falls back."""
        search = "".join(c for c in params.get("search", "") if c.isprintable())
        try:
            sort = orgs.SortKey(params.get("sort", orgs.SortKey.NAME.value))
        except ValueError:
            sort = orgs.SortKey.NAME
        try:
            page = min(max(int(params.get("page", "1")), 1), MAX_PAGE)
        except ValueError:
            page = 1
        return cls(
            search=search.strip()[:MAX_SEARCH_LENGTH],
            enabled_only=params.get("enabled", "") not in ("", "0", "false", "off"),
            sort=sort,
            descending=params.get("order", "asc") == "desc",
            page=page,
        )

    def params(self) -> dict[str, str]:
        """The non-default values, in a stable order, for links and hidden fields."""
        values: dict[str, str] = {}
        if self.search:
            values["search"] = self.search
        if self.enabled_only:
            values["enabled"] = "1"
        if self.sort is not orgs.SortKey.NAME:
            values["sort"] = self.sort.value
        if self.descending:
            values["order"] = "desc"
        if self.page != 1:
            values["page"] = str(self.page)
        return values

    def query_string(self, **changes: Any) -> str:
        """`?search=acme&page=2`, or "" for the defaults; `changes` as in dataclasses.replace."""
        encoded = urlencode(replace(self, **changes).params())
        return f"?{encoded}" if encoded else ""

    def sort_link(self, key: str) -> str:
        """The link of a column header: first click ascending, a second click flips the order."""
        sort = orgs.SortKey(key)
        descending = not self.descending if sort is self.sort else False
        return self.query_string(sort=sort, descending=descending, page=1)

    def aria_sort(self, key: str) -> str | None:
        if orgs.SortKey(key) is not self.sort:
            return None
        return "descending" if self.descending else "ascending"


@dataclass(frozen=True, slots=True)
class OrgPage:
    query: OrgQuery
    items: list[orgs.Organization]
    total: int
    page_size: int = ORG_PAGE_SIZE

    @property
    def page(self) -> int:
        return self.query.page

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))

    @property
    def first(self) -> int:
        return 0 if not self.items else (self.page - 1) * self.page_size + 1

    @property
    def last(self) -> int:
        return (self.page - 1) * self.page_size + len(self.items)

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.page_count


@dataclass(frozen=True, slots=True)
class PixelView:
    """What the page may show of the pixel: never the token, only whether one is set."""

    pixel_id: str
    token_set: bool
    token_last4: str | None
    test_event_code: str
    enabled: bool
    state: PixelState

    @classmethod
    def of(cls, pixel: PixelSettings) -> PixelView:
        return cls(
            pixel_id=pixel.pixel_id,
            token_set=bool(pixel.access_token),
            token_last4=token_last4(pixel.access_token),
            test_event_code=pixel.test_event_code,
            enabled=pixel.enabled,
            state=pixel.state,
        )

    @property
    def state_label(self) -> str:
        return PIXEL_STATE_LABELS[self.state]

    @property
    def can_send_test(self) -> bool:
        return self.state is not PixelState.NOT_CONFIGURED and bool(self.test_event_code)


@dataclass(frozen=True, slots=True)
class AuditLine:
    """One audit entry in words: "admin@x enabled retargeting for Acme, 5 minutes ago"."""

    id: int
    at: float
    actor: str
    summary: str
    details: tuple[str, ...]
    kind: str  # pixel, organization, test: picks the icon


@dataclass(frozen=True, slots=True)
class AdminPage:
    pixel: PixelView
    enabled_count: int
    organization_count: int
    organizations: OrgPage
    delivery: delivery_report.DeliveryReport
    audit: list[AuditLine]
    event_names: tuple[str, ...] = ALL_EVENT_NAMES

    @property
    def waiting_count(self) -> int:
        return sum(row.queued for row in self.delivery.events)


def _pixel_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    changes: list[str] = []
    if old.get("enabled") != new.get("enabled"):
        changes.append("Enabled the pixel" if new.get("enabled") else "Disabled the pixel")
    if old.get("pixel_id") != new.get("pixel_id"):
        changes.append(f"Pixel ID: {new.get('pixel_id') or 'cleared'}")
    if (old.get("access_token_set"), old.get("access_token_last4")) != (
        new.get("access_token_set"),
        new.get("access_token_last4"),
    ):
        last4 = new.get("access_token_last4")
        changes.append(f"New access token (…{last4})" if last4 else "New access token")
    if old.get("test_event_code") != new.get("test_event_code"):
        changes.append(f"Test event code: {new.get('test_event_code') or 'cleared'}")
    return tuple(changes)


def describe(entry: audit.AuditEntry) -> AuditLine:
    """The entry in the words an admin uses; values come from the masked log, never a secret."""
    old = entry.old_value if isinstance(entry.old_value, dict) else {}
    new = entry.new_value if isinstance(entry.new_value, dict) else {}
    kind = "other"
    details: tuple[str, ...] = ()
    if entry.action == "pixel.update":
        kind, summary, details = "pixel", "Saved pixel settings", _pixel_changes(old, new)
    elif entry.action == "organization.retargeting":
        name = new.get("name") or entry.target.removeprefix("organization:")
        verb = "Enabled" if new.get("retargeting_enabled") else "Disabled"
        kind, summary = "organization", f"{verb} retargeting for {name}"
    elif entry.action == "pixel.test_event":
        kind, summary = "test", "Sent a test event"
        if new.get("ok"):
            details = ("Meta accepted it",)
        elif new.get("error"):
            details = (f"Meta refused it: {new['error']}",)
        if new.get("fbtrace_id"):
            details += (f"fbtrace_id {new['fbtrace_id']}",)
    else:
        summary = entry.action
    return AuditLine(entry.id, entry.at, entry.actor, summary, details, kind)


def org_table(engine: Engine, cipher: TokenCipher, query: OrgQuery) -> tuple[OrgPage, PixelState]:
    """The organizations table alone (instant search), with the pixel state its switches obey."""
    with engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        return _org_page(conn, query), settings_store.read_pixel(conn, cipher).state


def org_name(engine: Engine, org_id: str) -> str | None:
    with engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        org = orgs.get(conn, org_id)
    return None if org is None else org.name


def _org_page(conn: Connection, query: OrgQuery) -> OrgPage:
    """One page of organizations; a page past the end shows the last page instead."""

    def fetch(q: OrgQuery) -> tuple[list[orgs.Organization], int]:
        return orgs.page(
            conn,
            search=q.search,
            enabled_only=q.enabled_only,
            sort=q.sort,
            descending=q.descending,
            limit=ORG_PAGE_SIZE,
            offset=(q.page - 1) * ORG_PAGE_SIZE,
        )

    items, total = fetch(query)
    if not items and total and query.page > 1:
        query = replace(query, page=math.ceil(total / ORG_PAGE_SIZE))
        items, total = fetch(query)
    return OrgPage(query=query, items=items, total=total)


def gather(engine: Engine, cipher: TokenCipher, snapshot: Snapshot, query: OrgQuery) -> AdminPage:
    """The whole page. The pixel is read from the database, not the snapshot, so a save made
    in another process shows at once; the pause comes from the snapshot (one poll old at most)."""
    with engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        pixel = settings_store.read_pixel(conn, cipher)
        organizations = _org_page(conn, query)
        enabled_count, organization_count = orgs.counts(conn)
        entries = audit.recent(conn, limit=AUDIT_LIMIT)
    return AdminPage(
        pixel=PixelView.of(pixel),
        enabled_count=enabled_count,
        organization_count=organization_count,
        organizations=organizations,
        delivery=delivery_report.build(engine, snapshot),
        audit=[describe(entry) for entry in entries],
    )
