"""Engines for SQLite (the embedded default) and PostgreSQL, through the same code.

Store code is written once, as synchronous SQLAlchemy Core functions of a `Connection`, and
`Database` decides where it runs:

- SQLite: on worker threads over pysqlite, one thread hop per unit of work. Through aiosqlite
  every DBAPI call is its own hop to the connection's thread and back through the event loop
  (about 32 per join when measured), which capped joins at a fiftieth of a bare handler.
- PostgreSQL: inside asyncpg's greenlet, through `AsyncConnection.run_sync`: no threads, and the
  same functions.

The async engines stay for what streams or runs once: migrations and chain verification.

Deadlines (`timeout_seconds`, from GATEWAY_SQL_TIMEOUT_SECONDS; None: none, for tools): nothing
waits on the database without one. PostgreSQL gets `statement_timeout` (the deadline) and
`lock_timeout` (half of it) as server settings of every connection, and asyncpg connect and
command timeouts and a pool checkout timeout on the client side; SQLite gets `busy_timeout`.
Around each unit of work an asyncio deadline is the backstop (SQLite writes excepted: their only
wait is the busy timeout at BEGIN, and a write abandoned by its caller would still commit on the
writer's thread). A database that is down, or a call past its deadline, raises
`Unavailable(DATABASE_UNAVAILABLE)`: a 503 with Retry-After, never a hang or a 500.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.adapters.sql.urls import prepare_sqlite_file
from gateway.domain.errors import ErrorCode, Unavailable

T = TypeVar("T")
log = logging.getLogger(__name__)

READERS = 4  # SQLite reader threads (and pooled connections); WAL lets them read beside the writer
SQLITE_BUSY_MS = 10_000  # without a deadline (tools): how long SQLite waits for another writer
PROBE_SECONDS = 1.0  # /healthz: a probe answers within this, or the database counts as down
UNAVAILABLE_MESSAGE = "The database is not answering right now; try again shortly."

# SQLSTATE classes and codes of a database that is down, restarting, overloaded or past a
# deadline (retrying later can succeed), as opposed to a fault in the request or the code.
_TRANSIENT_CLASSES = ("08", "53", "57", "58")  # connection, resources, operator, system
_TRANSIENT_CODES = ("55P03", "40001", "40P01", "25P02")  # lock timeout, serialization,
# deadlock, and "transaction aborted" (what follows a timeout inside one unit of work)


def is_outage(error: BaseException) -> bool:
    """True when `error` says the database is unreachable, overloaded or past a deadline."""
    if isinstance(
        error,
        TimeoutError
        | OSError
        | sa_exc.TimeoutError  # pool checkout
        | sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sqlite3.OperationalError,
    ):
        return True
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    driver_error = getattr(error, "orig", None) or error
    state = getattr(driver_error, "sqlstate", None)
    if isinstance(state, str):
        return state.startswith(_TRANSIENT_CLASSES) or state in _TRANSIENT_CODES
    return False


def unavailable(error: BaseException) -> Unavailable:
    """The 503 for a database outage (the cause is logged by class only: SQL errors can carry
    values)."""
    log.warning("database unavailable", extra={"code": type(error).__name__})
    return Unavailable(ErrorCode.DATABASE_UNAVAILABLE, UNAVAILABLE_MESSAGE)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engines(url: str, timeout_seconds: float | None = None) -> tuple[AsyncEngine, AsyncEngine]:
    """(writer, reader). On SQLite the writer takes the write lock at BEGIN (IMMEDIATE) so
    chained audit entries never interleave, and readers use WAL snapshots beside it. On
    PostgreSQL one pool serves both; the writer locks the audit head row instead."""
    if not is_sqlite(url):
        args: dict[str, Any] = {}
        if timeout_seconds is not None:
            milliseconds = max(1, round(timeout_seconds * 1000))
            args["pool_timeout"] = timeout_seconds
            args["connect_args"] = {
                "timeout": timeout_seconds,  # connecting
                "command_timeout": timeout_seconds,  # a server that stopped answering
                "server_settings": {
                    "statement_timeout": str(milliseconds),
                    "lock_timeout": str(max(1, milliseconds // 2)),
                },
            }
        engine = create_async_engine(url, pool_size=10, max_overflow=10, **args)
        _drop_closed_on_checkout(engine.sync_engine)
        return engine, engine
    prepare_sqlite_file(url)  # new folders 0700, the file 0600, before SQLite opens it
    busy_ms = SQLITE_BUSY_MS if timeout_seconds is None else max(1, round(timeout_seconds * 1000))
    writer = create_async_engine(url, pool_size=1, max_overflow=0)
    reader = create_async_engine(url, pool_size=READERS, max_overflow=READERS)
    _sqlite_pragmas(writer.sync_engine, begin="BEGIN IMMEDIATE", busy_ms=busy_ms)
    _sqlite_pragmas(reader.sync_engine, begin="BEGIN", busy_ms=busy_ms)
    return writer, reader


class Database:
    """One database: `read(fn)` and `write(fn)` run a synchronous function of a Connection.

    `write` runs `fn` in one transaction on the single writer connection (SQLite: BEGIN
    IMMEDIATE, so writers in other processes queue behind it) and commits when it returns;
    `read` runs it in a read snapshot that is rolled back afterwards. Both raise
    `Unavailable(DATABASE_UNAVAILABLE)` when the database is down or past `timeout_seconds`.
    """

    def __init__(self, url: str, *, timeout_seconds: float | None = None) -> None:
        if timeout_seconds is not None and not timeout_seconds > 0:
            raise ValueError("timeout_seconds must be positive")
        self.url = url
        self.timeout_seconds = timeout_seconds
        self.writer_engine, self.reader_engine = make_engines(url, timeout_seconds)
        self.dialect = self.writer_engine.dialect.name
        self._sync_writer: Engine | None = None
        self._sync_reader: Engine | None = None
        self._write_thread: ThreadPoolExecutor | None = None
        self._read_threads: ThreadPoolExecutor | None = None
        self._abandoned: set[asyncio.Future[Any]] = set()  # past their deadline, cleaning up
        self._autocommit_reader = self.reader_engine.execution_options(isolation_level="AUTOCOMMIT")
        if is_sqlite(url):
            sync_url = make_url(url).set(drivername="sqlite+pysqlite")
            # check_same_thread off: a pooled connection is used by one thread at a time, but
            # not always the same one (the reader pool serves all reader threads).
            args: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
            self._sync_writer = create_engine(sync_url, pool_size=1, max_overflow=0, **args)
            self._sync_reader = create_engine(sync_url, pool_size=READERS, max_overflow=0, **args)
            busy_ms = (
                SQLITE_BUSY_MS if timeout_seconds is None else max(1, round(timeout_seconds * 1000))
            )
            _sqlite_pragmas(self._sync_writer, begin="BEGIN IMMEDIATE", busy_ms=busy_ms)
            _sqlite_pragmas(self._sync_reader, begin="BEGIN", busy_ms=busy_ms)
            self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
            self._read_threads = ThreadPoolExecutor(READERS, thread_name_prefix="sqlite-reader")

    async def read(
        self, fn: Callable[[Connection], T], *, deadline_seconds: float | None = None
    ) -> T:
        """`deadline_seconds` overrides the deadline for this call (a health probe's is
        shorter)."""
        try:
            if self._sync_reader is not None and self._read_threads is not None:
                engine = self._sync_reader
                reading = asyncio.get_running_loop().run_in_executor(
                    self._read_threads, _read_on, engine, fn
                )
                return await self._within(reading, deadline_seconds or self.timeout_seconds)
            return await self._within(
                self._read_async(fn), deadline_seconds or self.timeout_seconds
            )
        except Exception as error:
            if is_outage(error):
                raise unavailable(error) from error
            raise

    async def write(self, fn: Callable[[Connection], T]) -> T:
        try:
            if self._sync_writer is not None and self._write_thread is not None:
                engine = self._sync_writer
                return await asyncio.get_running_loop().run_in_executor(
                    self._write_thread, _write_on, engine, fn
                )
            return await self._within(self._write_async(fn), self.timeout_seconds)
        except Exception as error:
            if is_outage(error):
                raise unavailable(error) from error
            raise

    async def _read_async(self, fn: Callable[[Connection], T]) -> T:
        # Autocommit: no BEGIN and no ROLLBACK around the read, one round trip per statement.
        # PostgreSQL's READ COMMITTED takes a snapshot per statement anyway, so a transaction
        # around several reads gave them no common snapshot: only two more round trips.
        async with self._autocommit_reader.connect() as conn:
            return await conn.run_sync(fn)

    async def _write_async(self, fn: Callable[[Connection], T]) -> T:
        async with self.writer_engine.begin() as conn:
            return await conn.run_sync(fn)

    async def _within(self, work: Awaitable[T], seconds: float | None) -> T:
        """`work`'s result, or TimeoutError after `seconds`. The caller is answered at the
        deadline; the abandoned work is cancelled and finishes in the background, because
        closing a connection to a server that stopped answering waits for the driver's own
        timeout (asyncpg's command timeout), which would double the caller's wait. (The work
        runs as a task of its own so that its connection is always returned to the pool, by
        its own `async with`, whenever the caller stops waiting.)"""
        if seconds is None:
            return await work
        if isinstance(work, asyncio.Future):  # a worker thread's: nothing to clean up here
            async with asyncio.timeout(seconds):
                result: T = await work
            return result
        task = asyncio.ensure_future(work)
        try:
            return await asyncio.wait_for(asyncio.shield(task), seconds)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
            self._abandoned.add(task)
            task.add_done_callback(self._forget)
            raise

    def _forget(self, task: asyncio.Future[Any]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("abandoned database call ended", extra={"code": "late"})

    async def ping(self, deadline_seconds: float = PROBE_SECONDS) -> None:
        """Return when the database answers a query in time; else raise `Unavailable`."""
        await self.read(
            lambda conn: conn.exec_driver_sql("SELECT 1").scalar(),
            deadline_seconds=deadline_seconds,
        )

    async def dispose(self) -> None:
        loop = asyncio.get_running_loop()
        if self._abandoned:  # let calls past their deadline finish closing their connections
            await asyncio.wait(set(self._abandoned), timeout=self.timeout_seconds)
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


def _drop_closed_on_checkout(engine: Engine) -> None:
    """A pooled connection the server has closed (a restart, an idle timeout) is replaced at
    checkout. SQLAlchemy's `pool_pre_ping` would cost three round trips per checkout (BEGIN,
    a query, ROLLBACK through asyncpg): about 7% of the event loop per join when profiled.
    asyncpg learns of a closed socket as soon as the server's FIN arrives, so asking it costs
    nothing; a server that stopped answering without closing anything is caught by the
    deadlines instead (which a pre-ping would have waited on too)."""

    @event.listens_for(engine, "checkout")
    def _checkout(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        driver = record.driver_connection  # the asyncpg connection
        if driver is not None and driver.is_closed():
            raise sa_exc.DisconnectionError("connection closed by the server")  # pool retries


def _sqlite_pragmas(engine: Engine, *, begin: str, busy_ms: int) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINTs; take it over (SQLAlchemy docs,
    # "Serializable isolation / Savepoints / Transactional DDL").
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # acknowledged means on disk
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
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
