"""One-shot messages across the redirect that ends a form post (post, 303, get).

With JavaScript off, saving the pixel, switching an organization or sending a test event is a
plain form post answered by a 303 back to the page; the message ("Settings saved", Meta's answer
to the test) travels in a short-lived cookie that the next page view shows once and deletes.
The cookie is encrypted and authenticated with the process's Fernet key, so nobody can plant
text on the page through it; it is scoped to the page's path and unreadable by scripts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import orjson
from fastapi import Request, Response

from retargeting.security import TokenCipher, UndecryptableSecret

COOKIE_NAME = "retargeting_flash"
COOKIE_PATH = "/platform/retargeting"
MAX_AGE_SECONDS = 60  # long enough for the redirect, short enough not to resurface later
MAX_MESSAGE_LENGTH = 1_000  # Meta's messages are a sentence or two; cookies hold 4 KiB

Kind = Literal["success", "error"]
Section = Literal["page", "pixel", "test-event", "organizations"]
SECTIONS: tuple[Section, ...] = ("page", "pixel", "test-event", "organizations")


@dataclass(frozen=True, slots=True)
class Flash:
    kind: Kind
    message: str
    section: Section = "page"  # where the page shows it: next to what the admin just did
    details: tuple[str, ...] = field(default=())

    @property
    def role(self) -> str:
        """Success is announced politely (status); an error interrupts (alert)."""
        return "status" if self.kind == "success" else "alert"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_LENGTH else text[: MAX_MESSAGE_LENGTH - 1] + "…"


def set_flash(response: Response, request: Request, cipher: TokenCipher, flash: Flash) -> None:
    payload = orjson.dumps(
        {
            "kind": flash.kind,
            "message": _clip(flash.message),
            "section": flash.section,
            "details": [_clip(d) for d in flash.details[:5]],
        }
    ).decode()
    response.set_cookie(
        COOKIE_NAME,
        cipher.encrypt(payload),
        max_age=MAX_AGE_SECONDS,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )


def read_flash(request: Request, cipher: TokenCipher) -> Flash | None:
    """The pending message, if any; a tampered, foreign or malformed cookie is ignored."""
    raw = request.cookies.get(COOKIE_NAME)
    if not raw:
        return None
    try:
        value = orjson.loads(cipher.decrypt(raw))
        kind: Kind = "success" if value["kind"] == "success" else "error"
        section: Section = "page"
        for known in SECTIONS:
            if value["section"] == known:
                section = known
        return Flash(
            kind=kind,
            message=str(value["message"]),
            section=section,
            details=tuple(str(d) for d in value.get("details", ())),
        )
    except (UndecryptableSecret, orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None


def clear_flash(response: Response, request: Request) -> None:
    if COOKIE_NAME in request.cookies:
        response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH, httponly=True, samesite="lax")
