"""Engines for SQLite (the embedded default) and PostgreSQL, through the same code.

Store code is written once, as synchronous SQLAlchemy Core functions of a `Connection`, and
`Database` decides where it runs:

- SQLite: on worker threads over pysqlite, one thread hop per unit of work. Through aiosqlite
  every DBAPI call is its own hop to the connection's thread and back through the event loop
  (about 32 per join when measured), which capped joins at a fiftieth of a bare handler.
- PostgreSQL: inside asyncpg's greenlet, through `AsyncConnection.run_sync`: no threads, and the
  same functions.

The async engines stay for what streams or runs once: migrations and chain verification.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.adapters.sql.urls import prepare_sqlite_file

T = TypeVar("T")

READERS = 4  # SQLite reader threads (and pooled connections); WAL lets them read beside the writer


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engines(url: str) -> tuple[AsyncEngine, AsyncEngine]:
    """(writer, reader). On SQLite the writer takes the write lock at BEGIN (IMMEDIATE) so
    chained audit entries never interleave, and readers use WAL snapshots beside it. On
    PostgreSQL one pool serves both; the writer locks the audit head row instead."""
    if not is_sqlite(url):
        engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
        return engine, engine
    prepare_sqlite_file(url)  # new folders 0700, the file 0600, before SQLite opens it
    writer = create_async_engine(url, pool_size=1, max_overflow=0)
    reader = create_async_engine(url, pool_size=READERS, max_overflow=READERS)
    _sqlite_pragmas(writer.sync_engine, begin="BEGIN IMMEDIATE")
    _sqlite_pragmas(reader.sync_engine, begin="BEGIN")
    return writer, reader


class Database:
    """One database: `read(fn)` and `write(fn)` run a synchronous function of a Connection.

    `write` runs `fn` in one transaction on the single writer connection (SQLite: BEGIN
    IMMEDIATE, so writers in other processes queue behind it) and commits when it returns;
    `read` runs it in a read snapshot that is rolled back afterwards.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.writer_engine, self.reader_engine = make_engines(url)
        self.dialect = self.writer_engine.dialect.name
        self._sync_writer: Engine | None = None
        self._sync_reader: Engine | None = None
        self._write_thread: ThreadPoolExecutor | None = None
        self._read_threads: ThreadPoolExecutor | None = None
        if is_sqlite(url):
            sync_url = make_url(url).set(drivername="sqlite+pysqlite")
            # check_same_thread off: a pooled connection is used by one thread at a time, but
            # not always the same one (the reader pool serves all reader threads).
            args: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
            self._sync_writer = create_engine(sync_url, pool_size=1, max_overflow=0, **args)
            self._sync_reader = create_engine(sync_url, pool_size=READERS, max_overflow=0, **args)
            _sqlite_pragmas(self._sync_writer, begin="BEGIN IMMEDIATE")
            _sqlite_pragmas(self._sync_reader, begin="BEGIN")
            self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
            self._read_threads = ThreadPoolExecutor(READERS, thread_name_prefix="sqlite-reader")

    async def read(self, fn: Callable[[Connection], T]) -> T:
        if self._sync_reader is not None and self._read_threads is not None:
            engine = self._sync_reader
            return await asyncio.get_running_loop().run_in_executor(
                self._read_threads, _read_on, engine, fn
            )
        async with self.reader_engine.connect() as conn:
            return await conn.run_sync(fn)

    async def write(self, fn: Callable[[Connection], T]) -> T:
        if self._sync_writer is not None and self._write_thread is not None:
            engine = self._sync_writer
            return await asyncio.get_running_loop().run_in_executor(
                self._write_thread, _write_on, engine, fn
            )
        async with self.writer_engine.begin() as conn:
            return await conn.run_sync(fn)

    async def dispose(self) -> None:
        loop = asyncio.get_running_loop()
        for pool in (self._write_thread, self._read_threads):
            if pool is not None:
                await loop.run_in_executor(None, pool.shutdown)
        for engine in (self._sync_writer, self._sync_reader):
            if engine is not None:
                engine.dispose()
        await self.writer_engine.dispose()
        if self.reader_engine is not self.writer_engine:
            await self.reader_engine.dispose()


def _read_on(engine: Engine, fn: Callable[[Connection], T]) -> T:
    with engine.connect() as conn:
        return fn(conn)


def _write_on(engine: Engine, fn: Callable[[Connection], T]) -> T:
    with engine.begin() as conn:
        return fn(conn)


def _sqlite_pragmas(engine: Engine, *, begin: str) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINTs; take it over (SQLAlchemy docs,
    # "Serializable isolation / Savepoints / Transactional DDL").
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # acknowledged means on disk
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        driver = conn.connection.driver_connection
        if isinstance(driver, sqlite3.Connection):
            # Straight on the driver: this runs for every transaction, and SQLAlchemy's
            # execution path costs ten times the statement.
            driver.execute(begin)
        else:  # aiosqlite (migrations, chain verification)
            conn.exec_driver_sql(begin)
