"""The access token and API keys never reach a response, a page, a URL or a log line.

`tests/support/secret_watch.py` checks this for the whole run; this test walks the noisy paths on
purpose (saving the token, Meta quoting the token back in a 190 error during a delivery and a
test event, the delivery report, the audit log, metrics, the admin page, the CLI) and checks what
each of them answered and logged, and that the watch saw and registered all of it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retargeting.cli import app as cli
from retargeting.runtime import Runtime
from retargeting.services import credentials
from retargeting.web.app import create_app
from tests.factories import ACCESS_TOKEN, PIXEL_ID, TEST_KEY, make_org
from tests.fakes.graph_faults import Fault
from tests.fakes.graph_stand_in import GraphStandIn
from tests.integration.web.conftest import SUPERADMIN_EMAIL, bearer, make_token, web_settings
from tests.integration.web.page_support import PAGE, sign_in
from tests.support import api_bodies, secret_watch
from tests.support.testclient import TestClient

API = "/api/v1/platform/retargeting"
PLUGIN = "tests.support.secret_watch"


def meta_quoting_the_token() -> Fault:
    return Fault.error(190, message=f"Invalid OAuth access token - Cannot parse {ACCESS_TOKEN}")


def wait_for_requests(graph: GraphStandIn, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(graph.requests) < count:
        assert time.monotonic() < deadline, f"the stand-in saw {len(graph.requests)} requests"
        time.sleep(0.02)


def test_tokens_and_keys_stay_out_of_answers_urls_and_logs(
    database_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    caplog.set_level(logging.DEBUG)
    answers: list[tuple[str, str]] = []

    def keep(label: str, response: object) -> None:
        import httpx

        assert isinstance(response, httpx.Response)
        for answer in (*response.history, response):
            headers = "\n".join(f"{k}: {v}" for k, v in answer.headers.multi_items())
            answers.append((f"{label}: URL", str(answer.request.url)))
            answers.append((f"{label}: headers", headers))
            answers.append((f"{label}: body", answer.text))

    with GraphStandIn(valid_tokens={ACCESS_TOKEN}, known_pixels={PIXEL_ID}) as graph:
        settings = web_settings(
            database_url,
            tmp_path,
            graph_api_url=graph.url,
            linger_seconds=0.01,
            settings_poll_seconds=0.05,
        )
        with TestClient(create_app(settings, deliver=True)) as client:
            runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
            make_org(runtime.engine, "org-1", retargeting_enabled=True)
            admin_token = make_token(runtime, SUPERADMIN_EMAIL, superadmin=True)
            api_key = credentials.create_api_key(runtime.engine, name="web", now=time.time()).secret
            runtime.snapshot.refresh()
            admin = bearer(admin_token)
            secrets = {"access token": ACCESS_TOKEN, "personal token": admin_token, "key": api_key}

            pixel = {
                "pixel_id": PIXEL_ID,
                "access_token": ACCESS_TOKEN,
                "test_event_code": "TEST1",
                "enabled": True,
            }
            saved = client.put(f"{API}/pixel", json=pixel, headers=admin)
            assert saved.status_code == 200, saved.text
            keep("save the pixel", saved)
            runtime.snapshot.refresh()

            graph.set_fault_mode(meta_quoting_the_token)  # every request meets a 190
            view = api_bodies.widget_view()
            ingested = client.post("/api/v1/events/widget-view", json=view, headers=bearer(api_key))
            assert ingested.status_code == 202, ingested.text
            keep("ingest", ingested)
            wait_for_requests(graph, 1)

            test_event = client.post(f"{API}/test-event", headers=admin)
            assert test_event.json()["error"]["code"] == 190, test_event.text
            keep("test event", test_event)

            for path in ("delivery", "audit", "pixel", "organizations"):
                keep(path, client.get(f"{API}/{path}", headers=admin))
            keep("metrics", client.get("/metrics"))
            keep("wrong kind of bearer", client.get(f"{API}/pixel", headers=bearer(api_key)))

            csrf = sign_in(client)
            sent = client.post(f"{PAGE}/test-event", data={"csrf_token": csrf})
            keep("page test event", sent)
            assert "190" in sent.text or "token" in sent.text.lower()
            keep("admin page", client.get(PAGE))

            env = {
                "RETARGETING_DATABASE_URL": database_url,
                "RETARGETING_VAR_DIR": str(tmp_path),
                "RETARGETING_SECRET_KEY": TEST_KEY,
                "RETARGETING_ENVIRONMENT": "test",
            }
            listed = CliRunner().invoke(cli, ["api-keys", "list"], env=env)
            assert listed.exit_code == 0, listed.output
            answers.append(("CLI api-keys list", listed.output))

    assert len(graph.requests) >= 3  # a delivery, the API's and the page's test events
    assert {r.error_code for r in graph.requests} == {190}
    assert graph.violations == []  # the token went in bodies only, never in a query
    answers.extend(("stand-in request URL", r.url) for r in graph.requests)
    answers.append(("caplog", caplog.text))
    formatter = secret_watch._LogFormatter("%(levelname)s %(name)s %(message)s")
    answers.extend((f"log record {r.name}", formatter.format(r)) for r in caplog.records)
    assert any("api key created" in text for _label, text in answers)  # DEBUG..INFO captured

    leaks = [
        f"{name} in {label}"
        for name, secret in secrets.items()
        for label, text in answers
        if secret in text
    ]
    assert leaks == []

    if request.config.pluginmanager.has_plugin(PLUGIN):
        watch = secret_watch.scanner()
        assert {admin_token, api_key} <= watch.bearer
        assert ACCESS_TOKEN in watch.constants
        wheres = [where for where, _text in watch.captures]
        assert any(where.startswith("response body of PUT") for where in wheres)
        assert any(where.startswith("log line of retargeting") for where in wheres)
        assert watch.scan(list(watch.captures), watch.constants | watch.test_literals) == []


def test_the_watch_finds_a_leak_in_each_kind_of_capture() -> None:
    watch = secret_watch.Scanner()
    key = "rtk_" + "A" * 43
    token = "EAAsome-access-token-0123456789"
    watch.register(key)
    watch.register(token)
    watch.register("short")  # too short to tell from chance: ignored
    handler = secret_watch._LogWatch(watch)
    logger = logging.getLogger("tests.secret_watch_self_test")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("no secret here", extra={"detail": f"Meta said {token}"})
        logger.error("quoting %s", key)
        logger.info("a harmless line short")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    watch.capture("response body", f'{{"key": "{key}"}}')
    watch.capture_url("GET /x", f"http://testserver/x?t={token.replace('-', '%2D')}")
    watch.capture("response body", "clean")
    watch.test = "self-test"
    found = sorted((f.where, f.secret) for f in watch.end_test())
    assert found == [
        ("URL of GET /x", token),
        ("log line of tests.secret_watch_self_test (ERROR)", key),
        ("log line of tests.secret_watch_self_test (WARNING)", token),
        ("response body", key),
    ]
    assert watch.captures == []
    assert "AAAA" not in str(watch.findings[0])  # a report names the secret, never shows it
    assert secret_watch.describe(key) == "rtk_… (47 chars)"
