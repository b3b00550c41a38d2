"""`serve --processes 2`: two processes share the port, the outbox and one /metrics."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
from sqlalchemy import Engine

from retargeting.db.engine import make_engine
from retargeting.services import credentials
from tests.factories import ACCESS_TOKEN, PIXEL_ID
from tests.fakes.graph_stand_in import GraphStandIn
from tests.support.live_server import live_server, server_env

VIEWS = 60
BATCH = 200


def _serving_children(supervisor_pid: int) -> list[int]:
    children = Path(f"/proc/{supervisor_pid}/task/{supervisor_pid}/children").read_text().split()
    return [
        int(pid)
        for pid in children
        if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def _view(number: int) -> dict[str, object]:
    return {
        "organization_id": "acme",
        "visitor_id": f"visitor-{number}",
        "page_url": "https://customer.example/pricing",
        "client_ip_address": "203.0.113.7",
        "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
    }


def _credentials(engine: Engine) -> tuple[str, str]:
    now = time.time()
    credentials.create_user(
        engine, email="sa@example.com", password="a long password!", is_superadmin=True, now=now
    )
    token = credentials.create_token(
        engine, email="sa@example.com", name="t", expires_days=None, now=now
    )
    return token.secret, credentials.create_api_key(engine, name="platform", now=now).secret


def test_two_processes_serve_record_deliver_and_count_as_one(
    database_url: str, tmp_path: Path
) -> None:
    engine = make_engine(database_url)
    admin_token, api_key = _credentials(engine)
    engine.dispose()
    with GraphStandIn({ACCESS_TOKEN}, {PIXEL_ID}) as graph:
        env = server_env(
            database_url,
            tmp_path,
            graph.url,
            RETARGETING_LINGER_SECONDS="0.05",
            RETARGETING_SETTINGS_POLL_SECONDS="0.1",
        )
        with live_server(env, tmp_path, processes=2) as server:
            assert len(_serving_children(server.process.pid)) == 2
            admin = {"Authorization": f"Bearer {admin_token}"}
            platform = {"Authorization": f"Bearer {api_key}"}
            pixel = {
                "pixel_id": PIXEL_ID,
                "access_token": ACCESS_TOKEN,
                "test_event_code": "",
                "enabled": True,
            }
            httpx.put(
                f"{server.url}/api/v1/platform/retargeting/pixel", json=pixel, headers=admin
            ).raise_for_status()
            httpx.put(
                f"{server.url}/api/v1/organizations/acme",
                json={"name": "Acme", "status": "active"},
                headers=platform,
            ).raise_for_status()
            time.sleep(0.5)  # the other process sees the active pixel within its poll
            # A new connection per request: the kernel spreads them over both processes.
            for number in range(VIEWS):
                answer = httpx.post(
                    f"{server.url}/api/v1/events/widget-view", json=_view(number), headers=platform
                )
                assert answer.json() == {"accepted": 1, "events_queued": 1}, answer.text
            batch = [{"type": "widget_view", **_view(VIEWS + n)} for n in range(BATCH)]
            answer = httpx.post(
                f"{server.url}/api/v1/events/batch", json={"events": batch}, headers=platform
            )
            assert answer.json() == {"accepted": BATCH, "events_queued": BATCH}
            assert graph.wait_for(VIEWS + BATCH, 15.0), f"stand-in got {len(graph.received)}"
            queued = re.compile(
                r'^retargeting_events_queued_total\{event_name="GreetNow_WidgetView"\} (\S+)$', re.M
            )
            for _ in range(6):  # whichever process answers, it counts both
                exposition = httpx.get(f"{server.url}/metrics").text
                match = queued.search(exposition)
                assert match, exposition
                assert float(match.group(1)) == VIEWS + BATCH
            assert "retargeting_outbox_depth" in exposition
        assert server.process.returncode == 0  # SIGTERM: both processes stopped cleanly
    assert len({r.event["event_id"] for r in graph.received}) == VIEWS + BATCH
