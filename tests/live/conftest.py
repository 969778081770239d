"""Fixtures shared by the live tests: Redis clients as separate processes would hold them, and
HTTP sessions with their own cookie jars (one each per device)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from gateway.adapters.live_redis import RedisClient, close_client, redis_client


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[tuple[RedisClient, RedisClient]]:
    """Two clients of one Redis, as two gateway processes have."""
    a, b = redis_client(redis_url), redis_client(redis_url)
    try:
        yield a, b
    finally:
        await close_client(a)
        await close_client(b)


@pytest.fixture
async def devices() -> AsyncIterator[list[aiohttp.ClientSession]]:
    """Five browsers (each its own cookie jar, so its own bound invite)."""
    sessions = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(5)]
    yield sessions
    for session in sessions:
        await session.close()
