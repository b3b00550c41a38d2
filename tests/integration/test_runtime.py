"""The process runtime: its background loops are ready the moment start-up returns."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from retargeting import runtime
from retargeting.domain.pixel import PixelState
from retargeting.settings import Settings
from tests.factories import TEST_KEY, make_interaction, make_org


async def test_a_request_right_after_start_up_is_recorded(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    make_org(engine, "org-1")
    settings = Settings(
        database_url=database_url,
        var_dir=tmp_path,
        secret_key=TEST_KEY,
        environment="test",
        graph_api_url="http://127.0.0.1:9",
    )
    rt = runtime.build_runtime(settings)
    async with runtime.running(rt, deliver=False):
        # No await between start-up and the first request: the committer must already listen.
        recorded = await rt.committer.record([make_interaction()], PixelState.ACTIVE)
    assert recorded.interactions == 1
