"""What a connection may cost before it sends a request: raw sockets on loopback, bounded in
number, every one closed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from tests.abuse.conftest import MakeGateway, cap_of
from tests.plugins.gateway_server import Gateway

Socket = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@contextlib.asynccontextmanager
async def sockets(gateway: Gateway, count: int) -> AsyncIterator[list[Socket]]:
    port = int(gateway.base.rsplit(":", 1)[1])
    opened: list[Socket] = []
    try:
        for _ in range(count):
            opened.append(await asyncio.open_connection("127.0.0.1", port))
        yield opened
    finally:
        for _, writer in opened:
            writer.close()
        for _, writer in opened:
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True when the server closes the connection (EOF or reset) within `seconds`."""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(4096), seconds)
            if not chunk:
                return True
    except TimeoutError:
        return False
    except OSError:
        return True


@pytest.fixture
async def gateway(make_gateway: MakeGateway, sqlite_url: str) -> Gateway:
    return await make_gateway(sqlite_url, read_timeout_seconds=1.0, connections_per_source=8)


async def test_a_connection_trickling_its_head_is_closed_after_the_deadline(
    gateway: Gateway,
) -> None:
    async with sockets(gateway, 1) as [(reader, writer)]:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 4:
            writer.write(b"X")  # one byte of a header every 0.2 s, never finishing it
            with contextlib.suppress(OSError):
                await writer.drain()
            if await closed_within(reader, 0.2):
                closed = True
                break
        assert closed and time.monotonic() - started < 3


async def test_a_body_that_does_not_arrive_is_answered_408(gateway: Gateway) -> None:
    async with sockets(gateway, 1) as [(reader, writer)]:
        writer.write(
            b"POST /v1/join HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"token": '
        )
        await writer.drain()
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(4096), 4)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:60]
        assert b"body_timeout" in answer
        assert time.monotonic() - started < 3
        assert await closed_within(reader, 3)


async def test_an_idle_connection_is_closed_and_a_real_request_still_works(
    gateway: Gateway,
) -> None:
    async with sockets(gateway, 1) as [(reader, writer)]:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        first = await asyncio.wait_for(reader.read(4096), 3)
        assert first.startswith(b"HTTP/1.1 200")
        assert await closed_within(reader, 3)  # idle after the answer: closed


@pytest.fixture
async def capped_gateway(make_gateway: MakeGateway, sqlite_url: str) -> Gateway:
    """The cap alone: a head deadline long enough that a slow machine opening forty sockets
    never sees the allowed ones closed by it."""
    return await make_gateway(sqlite_url, read_timeout_seconds=30.0, connections_per_source=8)


async def test_connections_from_one_address_are_capped(capped_gateway: Gateway) -> None:
    gateway = capped_gateway
    cap = cap_of(gateway)
    async with sockets(gateway, 40) as opened:
        await asyncio.sleep(0.3)
        closed = await asyncio.gather(*(closed_within(r, 2.0) for r, _ in opened))
        assert sum(closed) == 32  # all past the eighth closed at once (the head deadline is 30 s)
        assert cap.open_from("127.0.0.1") == 8 and cap.refused == 32
    for _ in range(50):  # counted down as they close
        if cap.open_from("127.0.0.1") == 0:
            break
        await asyncio.sleep(0.1)
    assert cap.open_from("127.0.0.1") == 0
    client = await gateway.client()
    assert (await client.get("/healthz")).status == 200
