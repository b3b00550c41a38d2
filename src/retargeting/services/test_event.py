"""Send one test event to Meta now, so the admin sees at once whether the pixel works.

The spec's open questions ask how anyone verifies that events fire; this answers it with Meta's
own verdict (its message, code and fbtrace_id) instead of a trip to Events Manager. The event is
a widget view from an obviously fake visitor, and it always carries a test event code: without
one Meta would count it as a real visit and pollute the audiences being built. It bypasses the
outbox on purpose: the admin is waiting for the answer, and a test must not queue behind (or be
held by) real traffic.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine

from retargeting.db import audit, settings_store
from retargeting.db.engine import READ_ONLY
from retargeting.domain import events
from retargeting.domain.delivery import GraphError
from retargeting.domain.pixel import PixelSettings, PixelState
from retargeting.graph import errors as graph_errors
from retargeting.graph.client import Accepted, GraphClient
from retargeting.security import TokenCipher

log = logging.getLogger(__name__)

TEST_ORGANIZATION_ID = "greetnow-test-event"
TEST_VISITOR_ID = "greetnow-test-visitor"
TEST_PAGE_URL = "https://greetnow.example/retargeting/test-event"
TEST_IP_ADDRESS = "192.0.2.1"  # TEST-NET-1 (RFC 5737): never a real visitor's address
TEST_USER_AGENT = "GreetNow retargeting test event"


class TestEventRefused(ValueError):
    """The test cannot be sent as asked; the message tells the admin what to set first."""

    __test__ = False  # not a pytest test class, despite the name


@dataclass(frozen=True, slots=True)
class TestEventResult:
    __test__ = False

    event_id: str
    test_event_code: str
    answer: Accepted | GraphError


def _read_pixel(engine: Engine, cipher: TokenCipher) -> PixelSettings:
    with engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        return settings_store.read_pixel(conn, cipher)


def build_body(pixel: PixelSettings, test_event_code: str, now: int) -> tuple[str, bytes]:
    """(event id, Graph API request body) of one test widget view, built by the domain rules."""
    event_id = f"gn_test_{uuid.uuid4().hex}"
    interaction = events.Interaction(
        kind=events.InteractionKind.WIDGET_VIEW,
        organization_id=TEST_ORGANIZATION_ID,
        visitor_id=TEST_VISITOR_ID,
        page_url=TEST_PAGE_URL,
        client_ip_address=TEST_IP_ADDRESS,
        client_user_agent=TEST_USER_AGENT,
        event_time=now,
        event_id=event_id,
    )
    queued = events.events_for(interaction, PixelState.ACTIVE, org_enabled=False)
    body = events.request_body([e.payload for e in queued], pixel.access_token, test_event_code)
    return event_id, body


def _record_audit(
    engine: Engine, *, actor: str, target: str, result: TestEventResult, now: float
) -> None:
    answer = result.answer
    outcome: dict[str, object] = {
        "test_event_code": result.test_event_code,
        "event_id": result.event_id,
        "ok": isinstance(answer, Accepted),
        "fbtrace_id": answer.fbtrace_id,
    }
    if isinstance(answer, GraphError):
        outcome["error"] = answer.summary
    with engine.begin() as conn:
        audit.record(
            conn,
            actor=actor,
            action="pixel.test_event",
            target=target,
            old_value=None,
            new_value=outcome,
            now=now,
        )


async def send(
    engine: Engine,
    cipher: TokenCipher,
    graph: GraphClient,
    *,
    actor: str,
    test_event_code: str | None,
    now: float,
) -> TestEventResult:
    """Send the test now and return Meta's answer (an error answer is a result, not an exception).

    Works while the pixel is disabled, so credentials can be checked before switching it on.
    Raises TestEventRefused when there is no pixel ID or token, or no test event code at all.
    """
    pixel = await asyncio.to_thread(_read_pixel, engine, cipher)
    if not pixel.is_configured:
        raise TestEventRefused(
            "The pixel is not configured: set a Pixel ID and Access Token before sending a test."
        )
    code = (test_event_code or "").strip() or pixel.test_event_code
    if not code:
        raise TestEventRefused(
            "No test event code: copy one from Events Manager (Test events tab) into the pixel "
            "settings or this request; without one the test would count as a real visit."
        )
    event_id, body = build_body(pixel, code, int(now))
    try:
        answer = await graph.send(pixel.pixel_id, body)
    except graph_errors.InvalidPixelId as exc:  # stored before digits were enforced
        raise TestEventRefused("The stored Pixel ID is not numeric: save a valid one.") from exc
    result = TestEventResult(event_id=event_id, test_event_code=code, answer=answer)
    await asyncio.to_thread(
        _record_audit,
        engine,
        actor=actor,
        target=settings_store.PIXEL_KEY,
        result=result,
        now=now,
    )
    log.info(
        "test event sent",
        extra={
            "action": "test_event",
            "ok": isinstance(answer, Accepted),
            "error_code": answer.code if isinstance(answer, GraphError) else None,
            "fbtrace_id": answer.fbtrace_id,
        },
    )
    return result
