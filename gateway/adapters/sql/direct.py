"""Core statements compiled once per dialect and run straight on the DBAPI cursor.

For the reads every join makes. On these machines SQLAlchemy's per-execution work (result
metadata, type processors, cache keys) cost about 250 us a statement; the statements themselves
take about 20 us. Compiling is still SQLAlchemy's, per dialect, so SQLite and PostgreSQL run the
same statement text they would otherwise. Values come back as the driver returns them: callers
normalise types the drivers disagree on (SQLite returns DATE columns as ISO strings). Driver
errors are wrapped as SQLAlchemy's would be (without the parameters), so a timeout or a lost
connection here is recognised as an outage like anywhere else (`engine.is_outage`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select


class DirectQuery:
    """A select with named `bindparam`s (no expanding IN lists)."""

    def __init__(self, statement: Select[Any]) -> None:
        self._statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {}

    def rows(self, conn: Connection, **params: Any) -> list[dict[str, Any]]:
        dialect = conn.dialect
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            done = self._statement.compile(dialect=dialect)
            # Values written into the statement (a literal compared with, a LIMIT) are bound
            # parameters too: they keep the values they were given.
            compiled = (done.string, tuple(done.positiontup or ()), dict(done.params))
            self._compiled[dialect.name] = compiled
        sql, names, fixed = compiled
        params = {**fixed, **params}
        if not conn.in_transaction():
            conn.begin()  # one snapshot for all of a read's statements (engine's begin event)
        dbapi_error: type[Exception] = dialect.loaded_dbapi.Error
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql, tuple(params[name] for name in names))
            columns = [column[0] for column in cursor.description]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        except dbapi_error as error:
            raise sa_exc.DBAPIError.instance(sql, None, error, dbapi_error) from error
        finally:
            cursor.close()
