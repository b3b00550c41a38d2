"""Whatever JSON arrives, every endpoint answers a 2xx or a 4xx: never a 500 for bad input."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retargeting.runtime import Runtime
from tests.factories import make_org
from tests.support import api_bodies
from tests.support.testclient import TestClient

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["", "\x00", "org-1", "https://a.example/", "::1", "fb.1.1.1", "  "]),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(max_size=5), scalars, max_size=2),
)

INTERACTION_FIELDS = [*api_bodies.call_started(fbp="x", fbc="y", event_id="z"), "type"]


def mutated(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The valid body with some fields replaced by arbitrary values, dropped, or added."""
    return st.dictionaries(st.sampled_from(INTERACTION_FIELDS), values, max_size=4).map(
        lambda changes: {**base, **changes}
    )


ENDPOINTS = [
    ("POST", "/api/v1/events/widget-view", mutated(api_bodies.widget_view())),
    ("POST", "/api/v1/events/call-started", mutated(api_bodies.call_started())),
    (
        "POST",
        "/api/v1/events/batch",
        st.fixed_dictionaries({"events": st.lists(mutated(api_bodies.batch_item()), max_size=3)}),
    ),
    (
        "PUT",
        "/api/v1/organizations/org-1",
        st.dictionaries(st.sampled_from(["name", "status", "x"]), values),
    ),
]
ADMIN_ENDPOINTS = [
    (
        "PUT",
        "/api/v1/platform/retargeting/pixel",
        st.dictionaries(
            st.sampled_from(["pixel_id", "access_token", "test_event_code", "enabled"]), values
        ),
    ),
    (
        "PUT",
        "/api/v1/platform/retargeting/organizations/org-1",
        st.dictionaries(st.sampled_from(["retargeting_enabled"]), values),
    ),
    (
        "POST",
        "/api/v1/platform/retargeting/test-event",
        st.dictionaries(st.sampled_from(["test_event_code"]), values),
    ),
]
QUERIES = st.fixed_dictionaries(
    {},
    optional={
        "search": st.text(max_size=10),
        "enabled_only": st.text(max_size=5),
        "sort": st.sampled_from(["name", "calls", "x", ""]),
        "order": st.sampled_from(["asc", "desc", "x"]),
        "page": st.integers(min_value=-5, max_value=10**12).map(str),
        "page_size": st.integers(min_value=-5, max_value=500).map(str),
    },
)

LENIENT = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@LENIENT
@given(data=st.data())
def test_ingest_never_answers_500(
    client: TestClient, ingest: dict[str, str], runtime: Runtime, data: st.DataObject
) -> None:
    make_org(runtime.engine, "org-1")
    method, path, bodies = data.draw(st.sampled_from(ENDPOINTS))
    response = client.request(method, path, json=data.draw(bodies), headers=ingest)
    assert response.status_code < 500, response.text


@LENIENT
@given(data=st.data())
def test_admin_api_never_answers_500(
    client: TestClient, admin: dict[str, str], runtime: Runtime, data: st.DataObject
) -> None:
    make_org(runtime.engine, "org-1")
    method, path, bodies = data.draw(st.sampled_from(ADMIN_ENDPOINTS))
    response = client.request(method, path, json=data.draw(bodies), headers=admin)
    assert response.status_code < 500, response.text
    listing = client.get(
        "/api/v1/platform/retargeting/organizations", params=data.draw(QUERIES), headers=admin
    )
    assert listing.status_code < 500, listing.text
