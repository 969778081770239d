"""Real servers for tests: PostgreSQL, Redis and headless Chromium, on loopback.

Fixtures (all start what they need on first use and stop it at the end of the session; a run
that crashes still stops them through atexit, and a run that is killed through the parent-death
signal):

- ``postgres_server`` (session): a throwaway PostgreSQL cluster (initdb into a temp dir, trust
  auth on 127.0.0.1, fsync off). A :class:`PostgresServer`; ``.admin_url`` is a libpq URL.
- ``postgres_url`` (function): a fresh empty database, dropped after the test, as a SQLAlchemy
  async URL ``postgresql+asyncpg://postgres@127.0.0.1:PORT/DBNAME``.
- ``sqlite_url`` (function): ``sqlite+aiosqlite:///<tmp_path>/gateway.db``.
- ``database_url`` (function, ids ``sqlite`` and ``postgresql``): each test that takes it runs
  on both databases.
- ``redis_server`` (session): a :class:`RedisServer` without persistence; ``.stop()`` and
  ``.start()`` (same port) let a test lose Redis and get it back.
- ``redis_url`` (function): ``redis://127.0.0.1:PORT/N``; the db is flushed after the test (and
  the server restarted first if the test left it stopped).
- ``chromium_path`` (session): path of Debian's Chromium. Missing: skipped locally, a failure
  when ``CI`` is set. :data:`CHROMIUM_FLAGS` are the flags to run it headless here.

Tests that use these are marked ``postgres``, ``redis`` or ``browser`` automatically, so
``-m "not postgres"`` deselects them.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import glob
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "CHROMIUM_FLAGS",
    "PostgresServer",
    "RedisServer",
    "ServerError",
    "free_port",
    "plain_postgres_url",
]

_RUN_SCRIPTS_TEST = "run scripts/test, which installs the Debian packages the tests need"
_TMP_PREFIX = "gateway-test-"

#: Flags for headless Chromium on this machine: as root it needs --no-sandbox, and the closed
#: network makes background connections fail noisily. Add ``--user-data-dir`` (a new temp dir).
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class ServerError(RuntimeError):
    """A test server could not be started (the message includes the end of its log)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def plain_postgres_url(url: str) -> str:
    """``postgresql+asyncpg://...`` -> ``postgresql://...`` (for asyncpg.connect, psql)."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


# --- process plumbing --------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: int) -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to signal the child when this process dies.

    Only from the main thread: the kernel watches the thread that forked, and a worker thread
    exiting would take the server down with it.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return preexec


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C.UTF-8"
    return env


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _stop_process(proc: subprocess.Popen[bytes], sig: int, timeout: float = 15.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(10)


def _make_tempdir(kind: str, owner: pwd.struct_passwd | None) -> Path:
    """A temp dir named after this pid (so a later run can clean up after a killed one)."""
    base = Path(tempfile.gettempdir())
    if owner is not None and not _traversable_by_others(base):
        base = Path("/tmp")
    path = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{kind}-{os.getpid()}-", dir=base))
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return path


def _traversable_by_others(path: Path) -> bool:
    return all(os.stat(part).st_mode & stat.S_IXOTH for part in (path, *path.parents))


def _remove_stale_tempdirs() -> None:
    """Remove temp dirs left by test runs whose process no longer exists."""
    pattern = os.path.join(tempfile.gettempdir(), f"{_TMP_PREFIX}*-*-*")
    for path in glob.glob(pattern):
        match = re.match(rf"{_TMP_PREFIX}[a-z]+-(\d+)-", os.path.basename(path))
        if not match:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass  # someone else's live process


def _missing(what: str) -> BaseException:
    return pytest.fail.Exception(f"{what} not found: {_RUN_SCRIPTS_TEST}", pytrace=False)


# --- PostgreSQL --------------------------------------------------------------------------------


def _postgres_bindir() -> Path:
    override = os.environ.get("GATEWAY_TEST_PG_BINDIR")
    if override:
        if not os.access(Path(override) / "postgres", os.X_OK):
            raise _missing(f"PostgreSQL server ($GATEWAY_TEST_PG_BINDIR={override}/postgres)")
        return Path(override)
    candidates = [
        Path(p).parent
        for p in glob.glob("/usr/lib/postgresql/*/bin/postgres")
        if os.access(Path(p).parent / "initdb", os.X_OK)
    ]
    if not candidates:
        raise _missing("PostgreSQL server (/usr/lib/postgresql/*/bin/postgres)")

    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", bindir.parent.name))

    # Prefer 15 (what production runs), else the newest.
    candidates.sort(key=lambda b: (version(b) == (15,), version(b)))
    return candidates[-1]


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1 with trust auth, superuser ``postgres``.

    When run as root, initdb and the server run as the ``postgres`` system user (the data dir is
    owned by it); otherwise as the current user.
    """

    user = "postgres"
    host = "127.0.0.1"

    def __init__(self) -> None:
        self.bindir = _postgres_bindir()
        self._os_user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._os_user = pwd.getpwnam("postgres")
            except KeyError:
                raise pytest.fail.Exception(
                    "running as root, and there is no 'postgres' system user to run "
                    f"PostgreSQL as: {_RUN_SCRIPTS_TEST}",
                    pytrace=False,
                ) from None
        self.tempdir = _make_tempdir("pg", self._os_user)
        self.datadir = self.tempdir / "data"
        self.logfile = self.tempdir / "postgres.log"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._db_counter = itertools.count(1)
        # Databases created as a copy of the schema template, not used yet (tests/plugins/schema.py)
        self.fresh_copies: set[str] = set()

    # URLs

    @property
    def admin_url(self) -> str:
        """libpq URL of the ``postgres`` maintenance database, as the superuser."""
        return self.libpq_url("postgres")

    def libpq_url(self, dbname: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def url(self, dbname: str, driver: str = "asyncpg") -> str:
        """SQLAlchemy URL of ``dbname`` (``postgresql+asyncpg://...`` by default)."""
        return f"postgresql+{driver}://{self.user}@{self.host}:{self.port}/{dbname}"

    # lifecycle

    def _run_as_owner(self, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        if self._os_user is not None:
            kwargs.update(user=self._os_user.pw_uid, group=self._os_user.pw_gid, extra_groups=[])
        return subprocess.run(
            args, cwd=self.tempdir, env=_child_env(), capture_output=True, check=False, **kwargs
        )

    def initdb(self) -> None:
        result = self._run_as_owner(
            [
                str(self.bindir / "initdb"),
                "--pgdata",
                str(self.datadir),
                "--username",
                self.user,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ]
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise ServerError(f"initdb failed (exit {result.returncode}):\n{output}")

    def start(self) -> None:
        """Start the server (initdb first if needed) on a free port; wait until it accepts."""
        if self._proc is not None and self._proc.poll() is None:
            return
        if not (self.datadir / "PG_VERSION").exists():
            self.initdb()
        last_error: ServerError | None = None
        for _ in range(3):  # a free port can be taken between free_port() and bind
            self.port = free_port()
            try:
                self._start_once()
                return
            except ServerError as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    def _start_once(self) -> None:
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.tempdir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "64MB",
            "log_min_messages": "warning",
            "logging_collector": "off",
        }
        args = [str(self.bindir / "postgres"), "-D", str(self.datadir)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        owner: dict[str, Any] = {}
        if self._os_user is not None:
            owner = {
                "user": self._os_user.pw_uid,
                "group": self._os_user.pw_gid,
                "extra_groups": [],
            }
        with open(self.logfile, "ab") as log:
            self._proc = subprocess.Popen(
                args,
                cwd=self.tempdir,
                env=_child_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(signal.SIGQUIT),
                **owner,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                raise ServerError(f"postgres exited at start:\n{_tail(self.logfile)}")
            ready = subprocess.run(
                [str(self.bindir / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port)],
                env=_child_env(),
                check=False,
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"postgres did not accept connections in 60s:\n{_tail(self.logfile)}")

    def stop(self) -> None:
        """Fast shutdown (SIGINT); SIGKILL if it does not stop in 15 s."""
        if self._proc is not None:
            _stop_process(self._proc, signal.SIGINT)
            self._proc = None

    def close(self) -> None:
        """Stop the server and remove its data dir."""
        self.stop()
        shutil.rmtree(self.tempdir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # databases

    def psql(self, sql: str, dbname: str = "postgres", *more: str) -> str:
        """Run SQL with psql as the superuser; returns unaligned, tuples-only output. Each of
        `more` runs after `sql`, as a statement of its own (outside its transaction)."""
        commands = [arg for statement in (sql, *more) for arg in ("-c", statement)]
        result = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                self.libpq_url(dbname),
                *commands,
            ],
            env=_child_env(),
            capture_output=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise ServerError(f"psql failed: {sql!r}: {result.stderr.decode(errors='replace')}")
        return result.stdout.decode()

    def new_database_name(self, hint: str = "") -> str:
        slug = re.sub(r"[^a-z0-9]+", "_", hint.lower()).strip("_")[:30]
        return f"t{next(self._db_counter)}_{uuid.uuid4().hex[:8]}_{slug}".rstrip("_")

    def create_database(self, name: str, *, template: str | None = None) -> None:
        """An empty database, or a copy of `template`."""
        copy = f' TEMPLATE "{template}"' if template else ""
        self.psql(f'CREATE DATABASE "{name}"{copy}')

    def recreate_database(self, name: str, *, template: str) -> None:
        """Replace database `name` with a copy of `template` (one psql run)."""
        self.psql(
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            "postgres",
            f'CREATE DATABASE "{name}" TEMPLATE "{template}"',
        )

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def databases(self) -> set[str]:
        out = self.psql("SELECT datname FROM pg_database WHERE NOT datistemplate")
        return {line for line in out.splitlines() if line}


# --- Redis -------------------------------------------------------------------------------------


def _redis_binary() -> str:
    path = shutil.which(os.environ.get("GATEWAY_TEST_REDIS_SERVER") or "redis-server")
    if not path:
        raise _missing("redis-server")
    return path


class RedisServer:
    """``redis-server`` on 127.0.0.1 without persistence. ``stop()``/``start()`` keep the port."""

    host = "127.0.0.1"
    databases = 16

    def __init__(self) -> None:
        self.binary = _redis_binary()
        self.tempdir = _make_tempdir("redis", None)
        self.logfile = self.tempdir / "redis.log"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start (or restart, on the same port) and wait until it answers PING."""
        if self.running:
            return
        if self.port:
            self._start_once()
            return
        last_error: ServerError | None = None
        for _ in range(3):
            self.port = free_port()
            try:
                self._start_once()
                return
            except ServerError as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    def _start_once(self) -> None:
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.tempdir),
            "--databases", str(self.databases),
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip
        with open(self.logfile, "ab") as log:
            self._proc = subprocess.Popen(
                args,
                cwd=self.tempdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(signal.SIGKILL),
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                raise ServerError(f"redis-server exited at start:\n{_tail(self.logfile)}")
            with contextlib.suppress(OSError):
                if self.command("PING") == b"+PONG":
                    return
            time.sleep(0.02)
        self.stop()
        raise ServerError(f"redis-server did not answer in 30s:\n{_tail(self.logfile)}")

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server: SIGTERM (no save), or SIGKILL with ``kill=True`` (a crash)."""
        if self._proc is not None:
            _stop_process(self._proc, signal.SIGKILL if kill else signal.SIGTERM)
            self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.tempdir, ignore_errors=True)

    def command(self, *args: str, db: int | None = None) -> bytes:
        """Send one command (after SELECT db) over a fresh connection; returns the raw first
        reply line, e.g. ``b"+OK"``. For fixtures' housekeeping, not for tests' logic."""
        commands = ([("SELECT", str(db))] if db is not None else []) + [args]
        payload = b""
        for cmd in commands:
            payload += f"*{len(cmd)}\r\n".encode()
            for arg in cmd:
                data = arg.encode()
                payload += b"$%d\r\n%s\r\n" % (len(data), data)
        with socket.create_connection((self.host, self.port), timeout=5) as sock:
            sock.sendall(payload)
            reader = sock.makefile("rb")
            try:
                replies = [reader.readline().rstrip(b"\r\n") for _ in commands]
            finally:
                reader.close()
        for reply in replies:
            if reply.startswith(b"-") or not reply:
                raise ServerError(f"redis {args!r}: {reply!r}")
        return replies[-1]


# --- fixtures ----------------------------------------------------------------------------------

_cleanups: list[Callable[[], None]] = []


def _register_cleanup(fn: Callable[[], None]) -> None:
    _cleanups.append(fn)


@atexit.register
def _run_cleanups() -> None:
    while _cleanups:
        with contextlib.suppress(Exception):
            _cleanups.pop()()


def pytest_configure(config: pytest.Config) -> None:
    _remove_stale_tempdirs()
    # SIGTERM would end the run without finalizers; make it behave like Ctrl-C.
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, signal.default_int_handler)


_FIXTURE_MARKS = {
    "postgres_server": "postgres",
    "redis_server": "redis",
    "chromium_path": "browser",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        for fixture, mark in _FIXTURE_MARKS.items():
            if fixture in names and item.get_closest_marker(mark) is None:
                item.add_marker(mark)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    _register_cleanup(server.close)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database: empty, or at the newest schema at once when the test's fixtures take
    it there (``schema_at_head``, tests/plugins/schema.py): created as the copy rather than
    created empty and then replaced by it (two CREATE DATABASE, about 0.4 s each when busy)."""
    name = postgres_server.new_database_name(request.node.name)
    if "schema_at_head" in request.fixturenames:
        from tests.plugins.schema import created_at_head

        created_at_head(request, name)
    else:
        postgres_server.create_database(name)
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.fresh_copies.discard(name)
        postgres_server.drop_database(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/gateway.db"


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh empty database: SQLite, then PostgreSQL (the test runs once on each)."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    _register_cleanup(server.close)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def _redis_db_numbers() -> Iterator[int]:
    return itertools.cycle(range(RedisServer.databases))


@pytest.fixture
def redis_url(redis_server: RedisServer, _redis_db_numbers: Iterator[int]) -> Iterator[str]:
    db = next(_redis_db_numbers)
    redis_server.command("FLUSHDB", db=db)
    try:
        yield redis_server.url(db)
    finally:
        if not redis_server.running:  # the test stopped it and did not start it again
            redis_server.start()
        redis_server.command("FLUSHDB", db=db)


@pytest.fixture(scope="module")
def module_redis_url(redis_server: RedisServer, _redis_db_numbers: Iterator[int]) -> Iterator[str]:
    """A Redis database for the servers one test module's tests share (emptied before and
    after). The numbers are shared with `redis_url`: a module using both takes fewer than
    `RedisServer.databases` of the latter."""
    db = next(_redis_db_numbers)
    redis_server.command("FLUSHDB", db=db)
    try:
        yield redis_server.url(db)
    finally:
        if not redis_server.running:
            redis_server.start()
        redis_server.command("FLUSHDB", db=db)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("GATEWAY_TEST_CHROMIUM") or shutil.which("chromium")
    if not path and os.access("/usr/bin/chromium", os.X_OK):
        path = "/usr/bin/chromium"
    if path:
        return path
    message = f"Debian's chromium not found (/usr/bin/chromium): {_RUN_SCRIPTS_TEST}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
