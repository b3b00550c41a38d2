"""The organizations table: pagination, search, filter and sort by query string; the partial."""

from __future__ import annotations

import time

import pytest

from retargeting.db import orgs
from retargeting.runtime import Runtime
from tests.factories import make_org, make_pixel
from tests.integration.web.page_support import PAGE, Element, make_superadmin, parse, sign_in
from tests.support.testclient import TestClient

PARTIAL = f"{PAGE}/organizations"
DASH = "\N{EN DASH}"  # as in "Showing 26 to 50 of 60", typeset


@pytest.fixture
def signed_in(client: TestClient, runtime: Runtime) -> str:
    make_superadmin(runtime)
    return sign_in(client)


@pytest.fixture
def sixty(runtime: Runtime) -> None:
    """org-01 .. org-60 named "Org 01" ..; every tenth is enabled, pageviews grow with the id."""
    make_pixel(runtime.engine, runtime.cipher)
    now = time.time()
    with runtime.engine.begin() as conn:
        for number in range(1, 61):
            org_id = f"org-{number:02d}"
            orgs.upsert(conn, org_id, f"Org {number:02d}", "active", now)
            orgs.add_counts_returning_flags(conn, {org_id: (number * 100, number)})
            if number % 10 == 0:
                orgs.set_retargeting(conn, org_id, True, now)


def table(html: str) -> Element:
    return parse(html).find(data_org_table="")


def names(html: str) -> list[str]:
    return [row.find("th").words for row in table(html).find("tbody").find_all("tr")]


def summary(html: str) -> str:
    return table(html).find("nav").words


@pytest.mark.usefixtures("signed_in", "sixty")
def test_the_first_page(client: TestClient) -> None:
    html = client.get(PAGE).text
    assert names(html) == [f"Org {n:02d}" for n in range(1, 26)]
    assert f"Showing 1{DASH}25 of 60" in summary(html)
    nav = table(html).find("nav")
    assert nav.attrs["aria-label"] == "Pagination"
    links = {a.words: a.attrs["href"] for a in nav.find_all("a")}
    assert links == {"Next page": f"{PAGE}?page=2#organizations"}
    header = table(html).find("thead")
    assert [th.words for th in header.find_all("th")] == [
        "Name",
        "Status",
        "Pageviews",
        "Calls",
        "Retargeting",
    ]
    [sorted_column] = header.find_all(aria_sort="ascending")
    assert sorted_column.words == "Name"
    row = table(html).find("tbody").find_all("tr")[9]
    assert row.words == "Org 10 active 1,000 10"


@pytest.mark.usefixtures("signed_in", "sixty")
def test_the_second_page(client: TestClient) -> None:
    html = client.get(f"{PAGE}?page=2").text
    assert names(html)[0] == "Org 26"
    assert f"Showing 26{DASH}50 of 60" in summary(html)
    links = {a.words: a.attrs["href"] for a in table(html).find("nav").find_all("a")}
    assert links == {
        "Previous page": f"{PAGE}#organizations",
        "Next page": f"{PAGE}?page=3#organizations",
    }


@pytest.mark.usefixtures("signed_in", "sixty")
def test_a_page_past_the_end_shows_the_last_one(client: TestClient) -> None:
    html = client.get(f"{PAGE}?page=99").text
    assert f"Showing 51{DASH}60 of 60" in summary(html)
    assert client.get(f"{PAGE}?page=abc&sort=nonsense").status_code == 200


@pytest.mark.usefixtures("signed_in", "sixty")
def test_sort_by_a_column_and_flip_it(client: TestClient) -> None:
    html = client.get(f"{PAGE}?sort=pageviews&order=desc").text
    assert names(html)[:2] == ["Org 60", "Org 59"]
    header = table(html).find("thead")
    [sorted_column] = header.find_all(aria_sort="descending")
    assert sorted_column.words == "Pageviews"
    link = sorted_column.find("a").attrs["href"]
    assert link == f"{PAGE}?sort=pageviews#organizations"  # the second click: ascending
    name_link = header.find_all("th")[0].find("a").attrs["href"]
    assert name_link == f"{PAGE}#organizations"


@pytest.mark.usefixtures("signed_in", "sixty")
def test_search_and_the_enabled_filter(client: TestClient) -> None:
    html = client.get(f"{PAGE}?search=org+1").text
    assert names(html) == [f"Org {n}" for n in range(10, 20)]
    assert parse(html).find("input", id="org-search").attrs["value"] == "org 1"
    html = client.get(f"{PAGE}?enabled=1").text
    assert names(html) == ["Org 10", "Org 20", "Org 30", "Org 40", "Org 50", "Org 60"]
    assert "checked" in parse(html).find("input", name="enabled", value="1").attrs
    html = client.get(f"{PAGE}?search=org+2&enabled=1&page=1").text
    assert names(html) == ["Org 20"]
    # The search keeps its filter and sort across pages.
    html = client.get(f"{PAGE}?search=org&sort=calls&order=desc").text
    link = table(html).find("nav").find("a", rel="next").attrs["href"]
    assert link == f"{PAGE}?search=org&sort=calls&order=desc&page=2#organizations"


@pytest.mark.usefixtures("signed_in", "sixty")
def test_no_organizations_found(client: TestClient) -> None:
    html = client.get(f"{PAGE}?search=nobody").text
    body = table(html).find("tbody")
    assert "No organizations found" in body.words
    assert body.find_all("button") == []
    assert client.get(f"{PAGE}?search=%25").status_code == 200  # a literal %, not a wildcard


@pytest.mark.usefixtures("signed_in", "sixty")
def test_the_partial_is_the_table_alone(client: TestClient) -> None:
    answer = client.get(PARTIAL, params={"search": "org 5", "partial": "1"})
    assert answer.status_code == 200
    assert "<html" not in answer.text
    assert "<h1" not in answer.text
    doc = parse(answer.text)
    assert [row.find("th").words for row in doc.find("tbody").find_all("tr")] == [
        f"Org {n}" for n in range(50, 60)
    ]
    assert doc.find(data_org_table="").attrs["data-summary"] == f"Showing 1{DASH}10 of 10"
    # Without partial=1 (a bookmark, or no JavaScript) it is the page at that query.
    answer = client.get(PARTIAL, params={"search": "org 5"}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{PAGE}?search=org+5#organizations"


def test_the_partial_needs_a_session(client: TestClient) -> None:
    answer = client.get(PARTIAL, params={"partial": "1"}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")


@pytest.mark.usefixtures("signed_in")
def test_switches_while_the_pixel_is_not_active(client: TestClient, runtime: Runtime) -> None:
    make_org(runtime.engine, "org-on", name="Alpha", retargeting_enabled=True)
    make_org(runtime.engine, "org-off", name="Beta")
    doc = parse(client.get(PAGE).text)
    on, off = doc.find(data_org_table="").find_all("button", role="switch")
    assert (on.attrs["aria-label"], on.attrs["aria-checked"]) == ("Retargeting for Alpha", "true")
    assert "disabled" not in on.attrs  # switching off stays allowed
    assert (off.attrs["aria-label"], off.attrs["aria-checked"]) == ("Retargeting for Beta", "false")
    assert "disabled" in off.attrs
    assert off.attrs["title"] == "Activate the pixel first to enable retargeting"
    hint = doc.find(id=off.attrs["aria-describedby"])
    assert "Activate the pixel first to enable retargeting" in hint.words

    make_pixel(runtime.engine, runtime.cipher)
    doc = parse(client.get(PAGE).text)
    for switch in doc.find(data_org_table="").find_all("button", role="switch"):
        assert "disabled" not in switch.attrs
    assert doc.find_all(id="org-locked-hint") == []


@pytest.mark.usefixtures("signed_in")
def test_each_switch_is_a_form_that_works_without_javascript(
    client: TestClient, runtime: Runtime
) -> None:
    make_pixel(runtime.engine, runtime.cipher)
    make_org(runtime.engine, "org-a", name="Acme")
    doc = parse(client.get(f"{PAGE}?search=ac").text)
    form = doc.find("form", data_org_toggle="")
    assert (form.attrs["method"], form.attrs["action"]) == ("post", f"{PAGE}/organizations/org-a")
    assert form.find("input", name="csrf_token").attrs["value"]
    assert form.find("input", name="return_query").attrs["value"] == "?search=ac"
    switch = form.find("button", role="switch")
    assert (switch.attrs["type"], switch.attrs["name"], switch.attrs["value"]) == (
        "submit",
        "retargeting_enabled",
        "true",
    )
