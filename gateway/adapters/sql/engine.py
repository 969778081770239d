"""Engines for SQLite (the embedded default) and PostgreSQL, through the same code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engines(url: str) -> tuple[AsyncEngine, AsyncEngine]:
    """(writer, reader). On SQLite the writer takes the write lock at BEGIN (IMMEDIATE) so
    chained audit entries never interleave, and readers use WAL snapshots beside it. On
    PostgreSQL one pool serves both; the writer locks the audit head row instead."""
    if not is_sqlite(url):
        engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
        return engine, engine
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    writer = create_async_engine(url, pool_size=1, max_overflow=0)
    reader = create_async_engine(url, pool_size=4, max_overflow=4)
    _sqlite_pragmas(writer, begin="BEGIN IMMEDIATE")
    _sqlite_pragmas(reader, begin="BEGIN")
    return writer, reader


def _sqlite_pragmas(engine: AsyncEngine, *, begin: str) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINTs; take it over (SQLAlchemy docs,
    # "Serializable isolation / Savepoints / Transactional DDL").
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # acknowledged means on disk
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)
