"""The Jinja2 environment of the server-rendered pages, and the filters their templates use.

Autoescaping is on for every template, whatever its name (organization names and Meta's messages
are data, never markup). The environment is built on first use, not at import, and shared by
every app in the process: it holds no state but compiled templates. The sign-in pages
(`routes_auth`) render through `render` too, with the same layout.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

SECONDS_PER_MINUTE = 60
SECONDS_PER_HOUR = 3_600
SECONDS_PER_DAY = 86_400
RELATIVE_DAYS_LIMIT = 30  # past this, "5 Oct 2025" says more than "47 days ago"


def number(value: int | float | None) -> str:
    """10000 -> "10,000"; the tables and summary cards use it."""
    if value is None:
        return "—"
    return f"{value:,}"


def _as_datetime(value: float | datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(value, UTC)


def iso_time(value: float | datetime | None) -> str:
    """The machine-readable `datetime` attribute of a <time> element, in UTC."""
    moment = _as_datetime(value)
    return "" if moment is None else moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def absolute_time(value: float | datetime | None) -> str:
    """ "24 Nov 2025, 14:05 UTC": unambiguous for admins in any country."""
    moment = _as_datetime(value)
    if moment is None:
        return "never"
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def relative_time(value: float | datetime | None, now: float | None = None) -> str:
    """ "just now", "5 minutes ago", "3 hours ago", "2 days ago", then the absolute date."""
    moment = _as_datetime(value)
    if moment is None:
        return "never"
    reference = datetime.now(UTC).timestamp() if now is None else now
    seconds = max(0.0, reference - moment.timestamp())
    if seconds < SECONDS_PER_MINUTE:
        return "just now"
    for unit, size in (("day", SECONDS_PER_DAY), ("hour", SECONDS_PER_HOUR)):
        if seconds >= size:
            count = int(seconds // size)
            if unit == "day" and count > RELATIVE_DAYS_LIMIT:
                return absolute_time(moment)
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    count = int(seconds // SECONDS_PER_MINUTE)
    return f"{count} minute{'' if count == 1 else 's'} ago"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """plural(1, "event") -> "1 event"; plural(3, "event") -> "3 events"."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{number(count)} {word}"


@functools.cache
def templates() -> Jinja2Templates:
    """The shared template renderer; `render` is the usual way to use it."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(
        number=number,
        iso_time=iso_time,
        absolute_time=absolute_time,
        relative_time=relative_time,
    )
    env.globals["plural"] = plural
    return Jinja2Templates(env=env)


def render(
    request: Request, name: str, context: Mapping[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """Render a template (`request` is added to the context) as an HTML response.

    Pages are never cached: they show settings and toggles that change under the admin.
    """
    response = templates().TemplateResponse(
        request, name, dict(context), status_code=status_code, headers={"Cache-Control": "no-store"}
    )
    assert isinstance(response, HTMLResponse)
    return response
