"""Reads that arrive together run together: one hop to the database, one snapshot.

Every join reads its invite's record. Under load dozens arrive within one turn of the event loop,
and one hop each (a thread hand-off, a pooled connection, BEGIN and ROLLBACK) cost more than the
reads. `ReadBatch.get(key)` queues the key; at the end of the loop's current turn everything
queued goes to the database as one unit of work. Each key still gets its own answer, or its own
exception; a failure of the whole unit fails every caller in it (fail closed: nobody is
admitted on a read that did not happen). An outage met by one key's read (a lock or statement
timeout, a lost connection) ends the whole unit: the transaction is gone for the keys after it,
so every caller gets `Unavailable(DATABASE_UNAVAILABLE)` rather than an error of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy.engine import Connection

from gateway.adapters.sql.engine import Database, is_outage

K = TypeVar("K")
V = TypeVar("V")

MAX_BATCH = 64


Answers = list[tuple[bool, V | Exception]]  # per key, in order: (True, value) or (False, error)


def each(conn: Connection, keys: list[K], read_one: Callable[[Connection, K], V]) -> Answers[V]:
    """Read key by key in one unit of work: a key's own failure is its answer; an outage (a
    lock or statement timeout, a lost connection) ends the unit for every key."""
    answers: Answers[V] = []
    for key in keys:
        try:
            answers.append((True, read_one(conn, key)))
        except Exception as error:
            if is_outage(error):
                raise  # the database, not this key: Database.read maps it to a 503
            answers.append((False, error))  # this key's own failure
    return answers


class ReadBatch(Generic[K, V]):
    """`read_many(conn, keys)` answers each queued key, in order (one statement for all of
    them, say; `each` reads them one by one)."""

    def __init__(
        self, database: Database, read_many: Callable[[Connection, list[K]], Answers[V]]
    ) -> None:
        self._database = database
        self._read_many = read_many
        self._queued: list[tuple[K, asyncio.Future[V]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, key: K) -> V:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._flush)  # after every read queued in this turn
        self._queued.append((key, future))
        return await future

    def _flush(self) -> None:
        queued, self._queued = self._queued, []
        for start in range(0, len(queued), MAX_BATCH):
            task = asyncio.create_task(self._run(queued[start : start + MAX_BATCH]))
            self._tasks.add(task)  # keep a reference until done
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[K, asyncio.Future[V]]]) -> None:
        keys = [key for key, _ in batch]

        def read_all(conn: Connection) -> Answers[V]:
            return self._read_many(conn, keys)

        try:
            answers = await self._database.read(read_all)
        except BaseException as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        for (_, future), (ok, value) in zip(batch, answers, strict=True):
            if future.done():  # the caller gave up (cancelled)
                continue
            if ok:
                future.set_result(value)  # type: ignore[arg-type]
            else:
                future.set_exception(value)  # type: ignore[arg-type]
