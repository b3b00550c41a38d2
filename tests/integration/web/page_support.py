"""Helpers for the no-JavaScript page tests: sign in through /login, read the HTML back.

The HTML is read with the standard library's parser into a flat list of elements (tag,
attributes, text inside), so tests can find controls the way a browser test does: by role,
accessible name or `data-*` attribute, never by CSS class.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser

from retargeting.runtime import Runtime
from retargeting.services import credentials
from tests.integration.web.conftest import PASSWORD, SUPERADMIN_EMAIL, USER_EMAIL
from tests.support.testclient import TestClient

PAGE = "/platform/retargeting"
VOID = {"input", "meta", "link", "br", "img", "hr", "source", "col", "area", "base", "wbr"}
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_FORM_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    children: list[Element] = field(default_factory=list)

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        found = []
        for child in self.children:
            if (tag is None or child.tag == tag) and all(
                child.attrs.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items()
            ):
                found.append(child)
            found += child.find_all(tag, **attrs)
        return found

    def find(self, tag: str | None = None, **attrs: str) -> Element:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"{len(found)} <{tag} {attrs}> found"
        return found[0]

    @property
    def words(self) -> str:
        return " ".join(self.text.split())


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v if v is not None else "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, 0, -1):
            if self.stack[index].tag == tag:
                del self.stack[index:]
                return

    def handle_data(self, data: str) -> None:
        for element in self.stack:
            element.text += data


def parse(html: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def make_superadmin(runtime: Runtime, email: str = SUPERADMIN_EMAIL) -> None:
    credentials.create_user(
        runtime.engine, email=email, password=PASSWORD, is_superadmin=True, now=time.time()
    )


def make_user(runtime: Runtime) -> None:
    credentials.create_user(
        runtime.engine, email=USER_EMAIL, password=PASSWORD, is_superadmin=False, now=time.time()
    )


def sign_in(client: TestClient, email: str = SUPERADMIN_EMAIL) -> str:
    """Sign in through the real form; returns the session's CSRF token for form posts."""
    login = client.get("/login")
    match = _FORM_CSRF.search(login.text)
    assert match, login.text
    answer = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": match.group(1), "next": PAGE},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    page = client.get(PAGE)
    token = _CSRF.search(page.text)
    assert token, page.text
    return token.group(1)
