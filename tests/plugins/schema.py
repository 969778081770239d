"""Test databases at the newest schema without migrating each one.

Fixtures:
- ``module_postgres_url_at_head`` (module): a PostgreSQL database at the newest schema for the
  servers one test module's tests share (each test then makes its own organisation).
- ``schema_at_head`` (function): ``schema_at_head(url)`` gives a fresh empty database from
  ``sqlite_url`` / ``postgres_url`` (so also ``database_url``) the newest schema, as an exact
  copy of a template that Alembic migrated once in this run: an SQLite file copied into place,
  or a PostgreSQL database re-created from a template database (or created as that copy in
  the first place, when ``postgres_url`` sees the test take it). The gateway's own migration at
  start then finds nothing left to do. Migrating an empty database costs about a third of a
  second of CPU, which hundreds of tests paid for what they do not examine.

Tests that examine migrations themselves (``tests/*/test_migration.py``, ``gateway migrate``)
keep starting from empty databases: only fixtures of tests that take the schema as given use
this.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.plugins.servers import PostgresServer, _make_tempdir, _register_cleanup

_TEMPLATE = "gateway_schema_template"


def _migrate(url: str) -> None:
    """Alembic to head on `url`, as `build_runtime` does, in a thread of its own (its own event
    loop: a fixture may be set up while the test's loop exists)."""
    from gateway.adapters.sql.engine import Database
    from gateway.adapters.sql.migrate import migrate

    async def run() -> None:
        database = Database(url)
        try:
            await migrate(database.writer_engine)
        finally:
            await database.dispose()

    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name="schema-template")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


@pytest.fixture(scope="session")
def _sqlite_schema_template() -> Iterator[Path]:
    tempdir = _make_tempdir("schema", None)
    _register_cleanup(lambda: shutil.rmtree(tempdir, ignore_errors=True))
    path = tempdir / "template.db"
    _migrate(f"sqlite+aiosqlite:///{path}")
    # Closed: SQLite checkpointed the write-ahead log into the file, the one file to copy.
    assert not Path(f"{path}-wal").exists()
    try:
        yield path
    finally:
        shutil.rmtree(tempdir, ignore_errors=True)


@pytest.fixture(scope="session")
def _postgres_schema_template(postgres_server: PostgresServer) -> str:
    postgres_server.create_database(_TEMPLATE)
    _migrate(postgres_server.url(_TEMPLATE))  # disposed after: nobody stays connected to it
    postgres_server.psql(f'ALTER DATABASE "{_TEMPLATE}" WITH IS_TEMPLATE true')
    return _TEMPLATE


@pytest.fixture(scope="module")
def module_postgres_url_at_head(
    postgres_server: PostgresServer, _postgres_schema_template: str, request: pytest.FixtureRequest
) -> Iterator[str]:
    name = postgres_server.new_database_name(request.node.name)
    postgres_server.create_database(name, template=_postgres_schema_template)
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)


def created_at_head(request: pytest.FixtureRequest, name: str) -> None:
    """Create database `name` as a copy of the template, for `postgres_url` when the test takes
    its database at head: `schema_at_head` then finds it there already (once)."""
    server: PostgresServer = request.getfixturevalue("postgres_server")
    server.create_database(name, template=request.getfixturevalue("_postgres_schema_template"))
    server.fresh_copies.add(name)


@pytest.fixture
def schema_at_head(request: pytest.FixtureRequest) -> Callable[[str], None]:
    def at_head(url: str) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            assert parsed.database, url
            target = Path(parsed.database)
            assert not target.exists(), f"{target} is not a fresh database"
            template: Path = request.getfixturevalue("_sqlite_schema_template")
            shutil.copyfile(template, target)
            target.chmod(0o600)
        else:
            server: PostgresServer = request.getfixturevalue("postgres_server")
            assert parsed.port == server.port, url
            assert parsed.database, url
            if parsed.database in server.fresh_copies:
                # Created as the copy by `postgres_url` for this test: this is its first use.
                server.fresh_copies.discard(parsed.database)
                return
            server.recreate_database(
                parsed.database, template=request.getfixturevalue("_postgres_schema_template")
            )

    return at_head
