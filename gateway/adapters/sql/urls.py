"""Database URLs as operators write them, turned into the drivers the gateway runs on.

    sqlite:///relative/gateway.db        -> sqlite+aiosqlite:////<absolute>/gateway.db
    sqlite:////srv/gateway.db            -> sqlite+aiosqlite:////srv/gateway.db
    sqlite+aiosqlite:// or +pysqlite://  -> the same file, through aiosqlite
    postgresql://, postgres://,          -> postgresql+asyncpg://
    postgresql+asyncpg://
    ?sslmode=require (libpq's name)      -> ?ssl=require (asyncpg's name for it)

A relative SQLite path is taken from the directory the command starts in and made absolute
here, so the file does not move if the process changes directory. Anything else is refused with
`DatabaseUrlError`, which repeats at most the URL's scheme: a URL may carry a password.

`prepare_sqlite_file` creates the file an SQLite URL names before SQLite opens it: its new
folders 0700 and the file 0600. SQLite gives the -wal, -shm and -journal files it creates the
mode of the database file, so they are 0600 too; older ones open to others are narrowed.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from gateway.adapters.private_files import narrow_to_owner, private_directory, private_file

__all__ = ["ACCEPTED", "DatabaseUrlError", "normalise_database_url", "prepare_sqlite_file"]

ACCEPTED = "a sqlite:///path/to/gateway.db or postgresql://user:password@host/database URL"

_SQLITE = {"sqlite", "sqlite+aiosqlite", "sqlite+pysqlite"}
_POSTGRES = {"postgresql", "postgres", "postgresql+asyncpg"}
_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


class DatabaseUrlError(ValueError):
    """A database URL the gateway cannot use: what is accepted and a safe account of what came."""

    def __init__(self, accepted: str, got: str | None) -> None:
        super().__init__(accepted if got is None else f"{accepted}, got {got}")
        self.accepted = accepted
        self.got = got


def normalise_database_url(raw: str, *, cwd: Path | None = None) -> str:
    """The URL in the form the engines use (see the module docstring), or DatabaseUrlError."""
    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError):
        raise DatabaseUrlError(ACCEPTED, None) from None
    scheme = url.drivername.lower()
    if scheme in _SQLITE:
        return _sqlite(url, cwd or Path.cwd())
    if scheme in _POSTGRES:
        return _postgres(url)
    raise DatabaseUrlError(ACCEPTED, f'scheme "{_printable(scheme)}"')


def sqlite_file(url: str) -> Path | None:
    """The database file an SQLite URL names (None for any other database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database)


def prepare_sqlite_file(url: str) -> None:
    """Before SQLite opens it: the file's new folders 0700, the file 0600 (module docstring)."""
    path = sqlite_file(url)
    if path is None:
        return
    private_directory(path.parent)
    private_file(path)
    for suffix in _SQLITE_COMPANIONS:
        narrow_to_owner(path.with_name(path.name + suffix))


def _sqlite(url: URL, cwd: Path) -> str:
    database = url.database or ""
    if database in ("", ":memory:") or url.host:
        # Each connection would get its own empty in-memory database; a host is meaningless.
        raise DatabaseUrlError("a file path for SQLite, as in sqlite:///path/to/gateway.db", None)
    if database.startswith("file:"):
        raise DatabaseUrlError("a plain file path for SQLite, not a file: URI", None)
    path = Path(database).expanduser()
    if not path.is_absolute():
        path = cwd / path
    normalised = url.set(drivername="sqlite+aiosqlite", database=str(path))
    return normalised.render_as_string(hide_password=False)


def _postgres(url: URL) -> str:
    query = dict(url.query)
    if "sslmode" in query:
        # libpq's parameter; asyncpg takes the same modes under the name `ssl`.
        query.setdefault("ssl", query.pop("sslmode"))
    normalised = url.set(drivername="postgresql+asyncpg", query=query)
    return normalised.render_as_string(hide_password=False)


def _printable(text: str) -> str:
    cleaned = "".join(c if c.isprintable() else "?" for c in text)
    return cleaned[:40]
