"""A gateway that can record: a master key, a recordings folder, a quick retention round, and
people with real aiortc media through the embedded relay."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.http.live_api import LIVE
from tests.http.world import build_world
from tests.live_media._session import People
from tests.live_recording._recorder import attach_recorder
from tests.plugins.gateway_server import Gateway


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def gateway_settings(tmp_path: Path) -> dict[str, Any]:
    key = tmp_path / "master.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    return {
        "recordings_dir": tmp_path / "recordings",
        "recording_master_key_file": key,
        "retention_seconds": 0.2,
    }


@pytest.fixture
async def people(gateway: Gateway) -> AsyncIterator[People]:
    attach_recorder(gateway.app[LIVE])
    crowd = People(await build_world(gateway))
    try:
        yield crowd
    finally:
        await crowd.close()


@pytest.fixture
async def devices() -> AsyncIterator[list[aiohttp.ClientSession]]:
    """Five browsers (each its own cookie jar, so its own bound invite), for the tests that
    run `gateway serve` processes."""
    sessions = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(5)]
    yield sessions
    for session in sessions:
        await session.close()
