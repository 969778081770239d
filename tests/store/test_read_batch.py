"""Reads that arrive together share one hop to the database, each caller still gets its own
answer or its own error, and a failed hop fails every caller in it (nobody admitted on a guess)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.read_batch import MAX_BATCH, Answers, ReadBatch, each


class CountingDatabase(Database):
    """The real database, counting its read hops; `broken` makes the next hops fail."""

    hops = 0
    broken = False

    async def read(self, fn: Callable[[Connection], Any]) -> Any:
        self.hops += 1
        if self.broken:
            raise ConnectionError("database went away")
        return await super().read(fn)


def echo(conn: Connection, key: int) -> int:
    if key < 0:
        raise LookupError("no such thing")
    return int(conn.execute(text("SELECT :k + 0"), {"k": key}).scalar_one())


def echo_each(conn: Connection, keys: list[int]) -> Answers[int]:
    return each(conn, keys, echo)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[CountingDatabase]:
    db = CountingDatabase(database_url)
    try:
        yield db
    finally:
        await db.dispose()


async def test_reads_arriving_together_share_one_hop(database: CountingDatabase) -> None:
    batch: ReadBatch[int, int] = ReadBatch(database, echo_each)
    assert await asyncio.gather(*(batch.get(i) for i in range(40))) == list(range(40))
    assert database.hops == 1
    assert await batch.get(7) == 7  # alone, it still works
    assert database.hops == 2


async def test_a_large_crowd_is_split_into_bounded_hops(database: CountingDatabase) -> None:
    batch: ReadBatch[int, int] = ReadBatch(database, echo_each)
    count = 2 * MAX_BATCH + 1
    assert await asyncio.gather(*(batch.get(i) for i in range(count))) == list(range(count))
    assert database.hops == 3


async def test_each_caller_gets_its_own_error(database: CountingDatabase) -> None:
    batch: ReadBatch[int, int] = ReadBatch(database, echo_each)
    results = await asyncio.gather(
        batch.get(1), batch.get(-1), batch.get(2), return_exceptions=True
    )
    assert results[0] == 1 and results[2] == 2
    assert isinstance(results[1], LookupError)


async def test_a_failed_hop_fails_everyone_in_it(database: CountingDatabase) -> None:
    batch: ReadBatch[int, int] = ReadBatch(database, echo_each)
    database.broken = True
    results = await asyncio.gather(*(batch.get(i) for i in range(5)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    database.broken = False
    assert await batch.get(3) == 3  # and the next reads work again


async def test_a_caller_that_gives_up_does_not_disturb_the_others(
    database: CountingDatabase,
) -> None:
    batch: ReadBatch[int, int] = ReadBatch(database, echo_each)
    leaving = asyncio.ensure_future(batch.get(1))
    staying = asyncio.ensure_future(batch.get(2))
    await asyncio.sleep(0)
    leaving.cancel()
    assert await staying == 2
    assert leaving.cancelled()
