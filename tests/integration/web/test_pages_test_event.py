""" "Send test event" with JavaScript off: Meta's answer comes back next to the button."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from retargeting.runtime import Runtime
from retargeting.settings import Settings
from tests.factories import ACCESS_TOKEN, PIXEL_ID, make_pixel
from tests.fakes.graph_stand_in import GraphStandIn
from tests.integration.web.conftest import web_settings
from tests.integration.web.page_support import PAGE, Element, make_superadmin, parse, sign_in
from tests.support.testclient import TestClient


@pytest.fixture
def graph() -> Iterator[GraphStandIn]:
    with GraphStandIn(valid_tokens={ACCESS_TOKEN}, known_pixels={PIXEL_ID}) as stand_in:
        yield stand_in


@pytest.fixture
def settings(database_url: str, tmp_path: Path, graph: GraphStandIn) -> Settings:
    return web_settings(database_url, tmp_path, graph_api_url=graph.url)


@pytest.fixture
def csrf(client: TestClient, runtime: Runtime) -> str:
    make_superadmin(runtime)
    return sign_in(client)


def send(client: TestClient, csrf: str) -> Element:
    """Post the form, follow the 303, return the test-event card."""
    answer = client.post(f"{PAGE}/test-event", data={"csrf_token": csrf}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{PAGE}#test-event"
    page = client.get(PAGE)
    assert ACCESS_TOKEN not in page.text
    return parse(page.text).find("section", id="test-event")


def test_meta_accepts(client: TestClient, runtime: Runtime, csrf: str, graph: GraphStandIn) -> None:
    make_pixel(runtime.engine, runtime.cipher, test_event_code="TEST4242")
    card = send(client, csrf)
    [result] = card.find_all(data_flash="")
    assert result.attrs["role"] == "status"
    assert result.find("p").words == "Meta received 1 event."
    assert "Test event code: TEST4242" in result.words
    assert "fbtrace_id: " in result.words
    [received] = graph.received
    assert received.test_event_code == "TEST4242"
    audit = parse(client.get(PAGE).text).find("section", id="audit")
    assert "Sent a test event" in audit.words
    assert "Meta accepted it" in audit.words


def test_meta_refuses(client: TestClient, runtime: Runtime, csrf: str) -> None:
    make_pixel(
        runtime.engine,
        runtime.cipher,
        access_token="EAAwrongtoken0123456789abcdef",
        test_event_code="T1",
    )
    card = send(client, csrf)
    [result] = card.find_all(data_flash="")
    assert result.attrs["role"] == "alert"
    assert result.find("p").words.startswith("Meta refused the test event: ")
    assert "Code 190" in result.words
    assert "fbtrace_id: " in result.words
    assert "EAAwrongtoken" not in result.words


def test_without_a_test_event_code(
    client: TestClient, runtime: Runtime, csrf: str, graph: GraphStandIn
) -> None:
    make_pixel(runtime.engine, runtime.cipher)
    page = parse(client.get(PAGE).text).find("section", id="test-event")
    button = page.find("button", data_test_event_button="")
    assert "disabled" in button.attrs
    assert "Test Event Code" in page.find(id=button.attrs["aria-describedby"]).words
    card = send(client, csrf)  # a stale page, or a crafted post: refused, explained
    [result] = card.find_all(data_flash="")
    assert result.attrs["role"] == "alert"
    assert "No test event code" in result.words
    assert graph.requests == []
