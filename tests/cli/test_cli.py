"""The operator's command line against a throwaway SQLite database and key directory.

Each test runs at least one command as operators do (`python -m gateway.cli ...` in a
subprocess: real exit status, stdout and stderr); the other commands go through the same entry
point, `gateway.cli.main`, in-process, because a new interpreter costs seconds of imports."""

from __future__ import annotations

import gc
import hashlib
import http.client
import logging
import os
import re
import sqlite3
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.adapters.keys import KeyRing
from gateway.cli import main
from tests.plugins.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable  # the project venv (/tmp/venv) when run through its pytest
COMMANDS = ("serve", "migrate", "settings", "org", "policy", "audit", "demo")
ACTIONS = {
    "org": ("create", "rotate-key", "revoke-keys", "list"),
    "policy": ("check", "show"),
    "audit": ("verify",),
}


@dataclass
class Run:
    code: int
    out: str
    err: str


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        GATEWAY_KEYS_DIR=str(tmp_path / "keys"),
        GATEWAY_PUBLIC_URL="https://gateway.test",
    )
    return env


def gateway_cli(tmp_path: Path, *commands: Sequence[str]) -> list[Run]:
    """Run each command line in its own process (in parallel), in the project root."""
    return gateway_runs(*[(argv, _env(tmp_path), ROOT) for argv in commands])


def gateway_runs(*commands: tuple[Sequence[str], dict[str, str], Path]) -> list[Run]:
    """Run each (command line, environment, directory) in its own process, in parallel."""
    started = [
        subprocess.Popen(
            [PYTHON, "-m", "gateway.cli", *argv],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv, env, cwd in commands
    ]
    runs = []
    for process in started:
        out, err = process.communicate(timeout=180)
        runs.append(Run(process.returncode, out, err))
    return runs


def _in_process_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _env(tmp_path).items():
        if name.startswith("GATEWAY_"):
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("GATEWAY_POLICY", raising=False)
    monkeypatch.delenv("GATEWAY_REDIS_URL", raising=False)
    monkeypatch.chdir(ROOT)


def _leaked_connection(warning: warnings.WarningMessage) -> bool:
    return issubclass(warning.category, ResourceWarning) and "before being closed" in str(
        warning.message
    )


def in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    """`gateway.cli.main` in this process: the same code path without a new interpreter.

    Database connections the command leaves open are tolerated here (see the xfail test
    below); any other warning fails the test."""
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(list(argv))
        gc.collect()
    assert [w.message for w in caught if not _leaked_connection(w)] == []
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def test_help_lists_every_command_and_every_command_has_help(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (top,) = gateway_cli(tmp_path, ["--help"])
    assert top.code == 0, top.err
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s+\S", top.out, re.MULTILINE), command
    assert "GATEWAY_DATABASE_URL" in top.out

    # Each command's and action's own help (in-process: the same parser, much faster).
    for argv in [[c] for c in COMMANDS] + [
        [c, a] for c, actions in ACTIONS.items() for a in actions
    ]:
        with pytest.raises(SystemExit) as exited:
            main([*argv, "--help"])
        assert exited.value.code == 0, argv
        out = capsys.readouterr().out
        assert out.startswith("usage: gateway " + " ".join(argv)), argv
        for action in ACTIONS.get(argv[0], ()) if len(argv) == 1 else ():
            assert action in out, (argv, action)
    with pytest.raises(SystemExit) as exited:
        main(["no-such-command"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_policy_check_names_the_bad_key_and_show_prints_plain_english(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _in_process_env(tmp_path, monkeypatch)
    default = (ROOT / "policies" / "default.toml").read_text()
    bad = {
        "unknown_key.toml": default.replace(
            "grace_seconds = 60", "grace_seconds = 60\nadults_may_leave = true"
        ),
        "one_adult.toml": default.replace("min_vetted_adults = 2", "min_vetted_adults = 1"),
        "time_zone.toml": default.replace('"Europe/London"', '"Mars/Olympus_Mons"'),
    }
    for name, text in bad.items():
        assert text != default, name
        (tmp_path / name).write_text(text)
    # As operators run it (the exit status and stderr of a real process) ...
    (unknown,) = gateway_cli(tmp_path, ["policy", "check", str(tmp_path / "unknown_key.toml")])
    # ... and, to keep the suite fast, the rest through the same entry point in-process.
    good = in_process(capsys, "policy", "check", "policies/default.toml")
    one_adult = in_process(capsys, "policy", "check", str(tmp_path / "one_adult.toml"))
    time_zone = in_process(capsys, "policy", "check", str(tmp_path / "time_zone.toml"))
    shown = in_process(capsys, "policy", "show")
    assert good.code == 0, good.err
    assert "valid" in good.out and "2026-11-21" in good.out

    for run, key, reason in (
        (unknown, "supervision.adults_may_leave", "unknown key"),
        (one_adult, "supervision.min_vetted_adults", "greater than or equal to 2"),
        (time_zone, "hours.time_zone", "time zone"),
    ):
        assert run.code == 1, (key, run.out, run.err)
        assert run.out == ""
        assert key in run.err and reason in run.err, run.err
        assert "Traceback" not in run.err

    assert shown.code == 0, shown.err
    text = shown.out
    assert re.search(r"\b(2|two)\b[^.\n]*adults", text), text
    assert "30 days" in text and "90 days" in text  # lesson review, safeguarding review
    assert "48 hours" in text
    assert "{" not in text and "min_vetted_adults" not in text  # English, not configuration


def _audit_row(database: Path, kind: str) -> tuple[int, bytes]:
    with sqlite3.connect(database) as db:
        seq, entry = db.execute(
            "SELECT seq, entry FROM audit_log WHERE kind = ? ORDER BY seq LIMIT 1", (kind,)
        ).fetchone()
    return int(seq), bytes(entry)


def test_org_create_demo_and_audit_verify_which_names_a_tampered_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _in_process_env(tmp_path, monkeypatch)
    database = tmp_path / "gateway.db"
    # In-process (fast) until the final check, which runs as a real process.
    fresh = in_process(capsys, "audit", "verify")
    assert fresh.code == 0, fresh.err
    assert "intact" in fresh.out

    created = in_process(capsys, "org", "create", "Riverside Tutors")
    assert created.code == 0, created.err
    keys = re.findall(r"sgw_[A-Za-z0-9_-]{20,}", created.out)
    assert len(keys) == 1, created.out  # shown once
    key = keys[0]
    with sqlite3.connect(database) as db:
        stored = db.execute("SELECT key_hash FROM api_keys").fetchall()
        names = db.execute("SELECT name FROM organisations").fetchall()
    assert stored == [(hashlib.sha256(key.encode()).hexdigest(),)]  # kept hashed only
    assert names == [("Riverside Tutors",)]

    demo = in_process(capsys, "demo")
    assert demo.code == 0, demo.err
    links = re.findall(r"https://gateway\.test/join#(\S+)", demo.out)
    assert len(links) >= 3 and len(set(links)) == len(links), demo.out
    demo_keys = re.findall(r"sgw_[A-Za-z0-9_-]{20,}", demo.out)
    assert len(demo_keys) == 1 and demo_keys[0] != key
    assert key not in demo.out

    # Someone with write access to the database file drops the append-only triggers and edits
    # one entry: the chain's MACs give it away, and verify names the entry.
    seq, entry = _audit_row(database, "organisation.created")
    assert b"2026-11-21" in entry
    with sqlite3.connect(database) as db:
        db.execute("DROP TRIGGER audit_log_no_update")
        db.execute(
            "UPDATE audit_log SET entry = ? WHERE seq = ?",
            (entry.replace(b"2026-11-21", b"2026-01-01"), seq),
        )
    (tampered,) = gateway_cli(tmp_path, ["audit", "verify"])
    assert tampered.code == 1, (tampered.out, tampered.err)
    assert re.search(rf"\bentry {seq}\b[^\n]*\bedited\b", tampered.out), tampered.out
    assert "Traceback" not in tampered.err


def test_a_command_closes_its_database_connections(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _in_process_env(tmp_path, monkeypatch)
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["audit", "verify"]) == 0
        gc.collect()
    assert [str(w.message) for w in caught if _leaked_connection(w)] == []


# --- set-up: any directory, standard URLs, one-line configuration errors, private data ---------


def _bare_env(home: Path, **settings: str) -> dict[str, str]:
    """Only the GATEWAY_ variables given, and a fresh HOME (the data defaults live under it)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GATEWAY_") and k != "XDG_STATE_HOME"
    }
    env.update(HOME=str(home), **settings)
    return env


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _status(port: int, path: str, headers: dict[str, str] | None = None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers or {})
        return connection.getresponse().status
    finally:
        connection.close()


def test_serve_runs_from_any_directory_and_keeps_its_data_to_itself(tmp_path: Path) -> None:
    """Started outside the repository with nothing configured: the default policy comes from
    the package, the database and keys go under ~/.local/state (not the current directory),
    and every folder made is 0700 and every file 0600, though the umask would allow 755/644."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    home = tmp_path / "home"  # made by the gateway, like the folders under it
    port = free_port()
    process = subprocess.Popen(
        [PYTHON, "-m", "gateway", "serve", "--port", str(port)],  # gateway/__main__.py
        cwd=elsewhere,
        env=_bare_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        umask=0o022,
    )
    try:
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if _status(port, "/healthz") == 200:
                    break
            except OSError:
                time.sleep(0.2)
        assert process.poll() is None, process.communicate()[1]
        # Refused and audited: the database is written, so SQLite has its -wal and -shm files.
        assert _status(port, "/v1/staff", {"Authorization": "Bearer sgw_unknown"}) == 401

        state = home / ".local" / "state" / "safeguarding-gateway"
        folders = [home, home / ".local", home / ".local" / "state", state, state / "keys"]
        files = [state / name for name in ("gateway.db", "gateway.db-wal", "gateway.db-shm")]
        files.append(state / "keys" / "keys.json")
        assert {str(p): _mode(p) for p in folders} == {str(p): 0o700 for p in folders}
        assert {str(p): _mode(p) for p in files} == {str(p): 0o600 for p in files}
        assert list(elsewhere.iterdir()) == []  # nothing written where it was started
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert "Traceback" not in err


def test_standard_database_urls_and_older_files_made_private(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sqlite:///relative` is taken from the directory the command starts in; a database file
    an older version left readable by others (0644) is narrowed to 0600. (In-process: the same
    entry point, without the seconds of a new interpreter.)"""
    _in_process_env(tmp_path, monkeypatch)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    older = tmp_path / "older" / "gateway.db"
    older.parent.mkdir(mode=0o755)
    older.touch(mode=0o644)
    os.chmod(older, 0o644)
    umask = os.umask(0o022)
    try:
        monkeypatch.setenv("GATEWAY_DATABASE_URL", "sqlite:///data/gateway.db")
        relative = in_process(capsys, "migrate")
        monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite:///{older}")
        absolute = in_process(capsys, "migrate")
    finally:
        os.umask(umask)
    for run in (relative, absolute):
        assert (run.code, run.err) == (0, ""), run
        assert "newest schema" in run.out
    made = work / "data" / "gateway.db"
    assert (_mode(made.parent), _mode(made), _mode(older)) == (0o700, 0o600, 0o600)
    assert _mode(older.parent) == 0o755  # a folder it did not make is left as it was
    with sqlite3.connect(made) as db:
        assert db.execute("SELECT count(*) FROM organisations").fetchone() == (0,)


def test_postgres_urls_as_libpq_writes_them(
    tmp_path: Path,
    postgres_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _in_process_env(tmp_path, monkeypatch)
    usual = postgres_url.replace("postgresql+asyncpg://", "postgres://") + "?sslmode=disable"
    monkeypatch.setenv("GATEWAY_DATABASE_URL", usual)
    migrated = in_process(capsys, "migrate")
    assert (migrated.code, migrated.err) == (0, ""), migrated
    created = in_process(capsys, "org", "create", "Harbour Tutors")
    assert created.code == 0, created.err
    assert "Harbour Tutors" in in_process(capsys, "org", "list").out

    # A database that is not there: one line from the server's answer, no traceback.
    server = usual.rpartition("/")[0]
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"{server}/no_such_database?sslmode=disable")
    missing = in_process(capsys, "migrate")
    assert missing.code == 1, missing
    assert missing.err.startswith(
        "error: GATEWAY_DATABASE_URL: cannot open the database: InvalidCatalogNameError: "
        'database "no_such_database" does not exist'
    ), missing.err
    assert missing.err.count("\n") == 1


def test_configuration_errors_are_one_line_naming_the_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    one_adult = tmp_path / "one_adult.toml"
    one_adult.write_text(
        (ROOT / "policies" / "default.toml")
        .read_text()
        .replace("min_vetted_adults = 2", "min_vetted_adults = 1")
    )
    loose = tmp_path / "loose-keys"
    KeyRing.load_or_create(loose)
    os.chmod(loose / "keys.json", 0o644)
    cases = [
        (
            ["serve", "--port", str(free_port())],
            {"GATEWAY_RECONCILE_SECONDS": "abc"},
            2,
            'error: GATEWAY_RECONCILE_SECONDS must be a positive number of seconds, got "abc"',
        ),
        (
            ["migrate"],
            {"GATEWAY_DATABASE_URL": "mysql://gateway:s3cret@db/gateway"},
            2,
            "error: GATEWAY_DATABASE_URL must be a sqlite:///path/to/gateway.db or "
            'postgresql://user:password@host/database URL, got scheme "mysql"',
        ),
        (
            ["serve", "--port", str(free_port())],
            {"GATEWAY_POLICY": str(tmp_path / "missing.toml")},
            2,
            f"error: GATEWAY_POLICY: cannot read {tmp_path}/missing.toml: "
            "No such file or directory",
        ),
        (
            ["migrate"],
            {"GATEWAY_POLICY": str(one_adult)},
            2,
            f"error: GATEWAY_POLICY: {one_adult}: invalid policy: supervision.min_vetted_adults: ",
        ),
        (
            ["serve", "--port", str(free_port())],
            {"GATEWAY_KEYS_DIR": str(a_file / "keys")},
            2,
            f"error: GATEWAY_KEYS_DIR: cannot use {a_file}/keys as the keys folder: "
            "Not a directory",
        ),
        (
            ["audit", "verify"],
            {"GATEWAY_KEYS_DIR": str(loose)},
            2,
            f"error: GATEWAY_KEYS_DIR: key file {loose}/keys.json is accessible to others "
            "(mode 644); make it 0600",
        ),
        (
            ["org", "list"],
            {"GATEWAY_DATABASE_URL": f"sqlite:///{a_file}/gateway.db"},
            2,
            f"error: GATEWAY_DATABASE_URL: cannot use the database file {a_file}/gateway.db: "
            "Not a directory",
        ),
    ]
    runs = gateway_runs(*[(argv, {**_env(tmp_path), **bad}, ROOT) for argv, bad, _, _ in cases])
    for (argv, bad, code, line), run in zip(cases, runs, strict=True):
        assert run.code == code, (argv, bad, run)
        assert run.out == "", (argv, run.out)  # nothing started, nothing announced
        assert run.err.count("\n") == 1 and run.err.startswith(line), (argv, bad, run.err)
        assert "s3cret" not in run.err

    # A database that cannot be reached at start (in-process: it loads the whole gateway).
    _in_process_env(tmp_path, monkeypatch)
    unreachable = f"postgresql://gateway:s3cret@127.0.0.1:{free_port()}/gateway"
    monkeypatch.setenv("GATEWAY_DATABASE_URL", unreachable)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # `serve` sets up logging for the process
    try:
        runs = [in_process(capsys, "migrate"), in_process(capsys, "serve", "--port", "9")]
    finally:
        root.handlers[:], root.level = handlers, level
    for argv, run in zip(("migrate", "serve"), runs, strict=True):
        assert run.code == 1, (argv, run)
        assert run.err.count("\n") == 1, run.err
        assert run.err.startswith(
            "error: GATEWAY_DATABASE_URL: cannot open the database: ConnectionRefusedError: "
        ), run.err
        assert "s3cret" not in run.err and "Gateway listening" not in run.out
