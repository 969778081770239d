"""Settings are defined once (gateway/settings.py): every variable is read, checked, listed in
`--help` and in the README, and a bad value is one line naming the variable.

In-process: `Settings.from_env` takes the environment as a mapping. The same refusals seen by an
operator (one line, exit status 2, no traceback) are in tests/cli/test_cli.py."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from gateway import settings as settings_module
from gateway.adapters.sql.urls import DatabaseUrlError, normalise_database_url
from gateway.cli import main
from gateway.settings import (
    PACKAGED_POLICIES,
    SettingError,
    Settings,
    settings_markdown,
    settings_table,
)

ROOT = Path(__file__).resolve().parents[1]

# A valid value for each kind of setting, unlike any default: setting it must change the field.
SAMPLES = {
    settings_module.SECONDS: ("7.5", 7.5),
    settings_module.BYTES: ("1234", 1234),
    settings_module.COUNT: ("12", 12),
    settings_module.NETWORKS: ("10.0.0.0/8, ::1", ("10.0.0.0/8", "::1")),
    settings_module.LOG_LEVEL: ("debug", "DEBUG"),
    settings_module.HTTP_URL: ("https://gateway.example.org/", "https://gateway.example.org"),
    settings_module.DATABASE_URL: (
        "postgres://gateway@db.internal/gateway",
        "postgresql+asyncpg://gateway@db.internal/gateway",
    ),
    settings_module.REDIS_URL: ("redis://redis.internal:6379/1", "redis://redis.internal:6379/1"),
    settings_module.PATH: ("/srv/gateway/thing", Path("/srv/gateway/thing")),
    settings_module.ICE_SERVERS: (
        '[{"urls": "stun:stun.example.org"}]',
        '[{"urls": "stun:stun.example.org"}]',
    ),
    settings_module.TEXT: ("other-issuer", "other-issuer"),
    settings_module.PORT: ("2525", 2525),
    settings_module.SMTP_SECURITY: ("TLS", "tls"),
    settings_module.LIVEKIT_URL: ("wss://livekit.example.org/", "wss://livekit.example.org"),
    settings_module.IDENTIFIERS: ("org-a, org_b", ("org-a", "org_b")),
}


def test_every_field_is_a_setting_with_its_own_variable() -> None:
    rows = settings_table()
    assert [row.name for row in rows] == list(Settings.__dataclass_fields__)
    variables = [row.variable for row in rows]
    assert len(set(variables)) == len(variables)
    assert all(re.fullmatch(r"GATEWAY_[A-Z0-9_]+", v) for v in variables), variables
    assert all(row.help and "\n" not in row.help for row in rows)


@pytest.mark.parametrize("row", settings_table(), ids=lambda row: row.variable)
def test_each_variable_is_read_into_its_field(row: settings_module.Setting) -> None:
    raw, expected = SAMPLES[row.kind]
    base = {"HOME": "/home/tutor"}
    assert getattr(Settings.from_env(base), row.name) != expected
    assert getattr(Settings.from_env({**base, row.variable: raw}), row.name) == expected
    # An empty value counts as unset (compose files write `VARIABLE: ""` for "not set").
    assert Settings.from_env({**base, row.variable: ""}) == Settings.from_env(base)


def test_every_setting_is_used_by_the_gateway() -> None:
    """A setting nothing reads is a promise not kept (like a policy line no code reads)."""
    code = "\n".join(
        path.read_text()
        for path in (ROOT / "gateway").rglob("*.py")
        if path != ROOT / "gateway" / "settings.py"
    )
    unused = [row.variable for row in settings_table() if f"settings.{row.name}" not in code]
    assert unused == []


@pytest.mark.parametrize(
    ("variable", "raw", "message"),
    [
        (
            "GATEWAY_RECONCILE_SECONDS",
            "abc",
            'GATEWAY_RECONCILE_SECONDS must be a positive number of seconds, got "abc"',
        ),
        (
            "GATEWAY_LIVE_SWEEP_SECONDS",
            "0",
            'GATEWAY_LIVE_SWEEP_SECONDS must be positive (a number of seconds), got "0"',
        ),
        (
            "GATEWAY_LIVE_HEARTBEAT_SECONDS",
            "nan",
            'GATEWAY_LIVE_HEARTBEAT_SECONDS must be a positive number of seconds, got "nan"',
        ),
        (
            "GATEWAY_MAX_BODY_BYTES",
            "64k",
            'GATEWAY_MAX_BODY_BYTES must be a positive whole number of bytes, got "64k"',
        ),
        (
            "GATEWAY_LOG_LEVEL",
            "loud",
            'GATEWAY_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got "loud"',
        ),
        (
            "GATEWAY_PUBLIC_URL",
            "gateway.example.org\n",
            "GATEWAY_PUBLIC_URL must be an http:// or https:// URL with a host and no query, "
            'such as https://gateway.example.org, got "gateway.example.org\\n"',
        ),
        (
            "GATEWAY_PUBLIC_URL",
            "https://gateway.example.org/?next=x",
            "GATEWAY_PUBLIC_URL must be an http:// or https:// URL with a host and no query, "
            'such as https://gateway.example.org, got "https://gateway.example.org/?next=x"',
        ),
        # Secret settings: the scheme at most is repeated back, never the value.
        (
            "GATEWAY_DATABASE_URL",
            "mysql://gateway:s3cret-pw@db/gateway",
            "GATEWAY_DATABASE_URL must be a sqlite:///path/to/gateway.db or "
            'postgresql://user:password@host/database URL, got scheme "mysql"',
        ),
        (
            "GATEWAY_DATABASE_URL",
            "s3cret-pw",
            "GATEWAY_DATABASE_URL must be a sqlite:///path/to/gateway.db or "
            "postgresql://user:password@host/database URL",
        ),
        (
            "GATEWAY_DATABASE_URL",
            "sqlite://",
            "GATEWAY_DATABASE_URL must be a file path for SQLite, as in sqlite:///path/to/gateway.db",
        ),
        (
            "GATEWAY_REDIS_URL",
            "http://:s3cret-pw@redis:6379",
            'GATEWAY_REDIS_URL must be a redis://, rediss:// or unix:// URL, got scheme "http"',
        ),
        (
            "GATEWAY_ICE_SERVERS",
            '[{"urls": "turn:turn.example.org", "credential": 42, "username": "s3cret-pw"}]',
            'GATEWAY_ICE_SERVERS must be a JSON list of {"urls": "turn:..." or ["stun:...", ...], '
            '"username": ..., "credential": ...} objects',
        ),
        (
            "GATEWAY_TOKEN_ISSUER",
            "\x1b[2J",
            'GATEWAY_TOKEN_ISSUER must be printable text of 1 to 200 characters, got "\\u001b[2J"',
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(variable: str, raw: str, message: str) -> None:
    with pytest.raises(SettingError) as refused:
        Settings.from_env({"HOME": "/home/tutor", variable: raw})
    assert str(refused.value) == message
    assert refused.value.variable == variable
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("sqlite:///data/gateway.db", "sqlite+aiosqlite:////srv/app/data/gateway.db"),
        ("sqlite:////var/lib/gateway.db", "sqlite+aiosqlite:////var/lib/gateway.db"),
        ("sqlite+aiosqlite:///gateway.db", "sqlite+aiosqlite:////srv/app/gateway.db"),
        ("sqlite+pysqlite:////x/gateway.db", "sqlite+aiosqlite:////x/gateway.db"),
        ("postgresql://gw:pw@db:5433/gateway", "postgresql+asyncpg://gw:pw@db:5433/gateway"),
        ("postgres://gw:pw@db/gateway", "postgresql+asyncpg://gw:pw@db/gateway"),
        ("postgresql+asyncpg://gw@db/gateway", "postgresql+asyncpg://gw@db/gateway"),
        (
            "postgresql://gw@db/gateway?sslmode=require",
            "postgresql+asyncpg://gw@db/gateway?ssl=require",
        ),
    ],
)
def test_standard_database_urls_are_normalised_to_the_gateways_drivers(
    raw: str, normalised: str
) -> None:
    assert normalise_database_url(raw, cwd=Path("/srv/app")) == normalised


@pytest.mark.parametrize(
    "raw",
    [
        "mysql://gw@db/gateway",
        "postgresql+psycopg2://gw@db/gateway",
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite://host/gateway.db",
        "not a url",
        "",
    ],
)
def test_other_database_urls_are_refused(raw: str) -> None:
    with pytest.raises(DatabaseUrlError):
        normalise_database_url(raw)


def test_data_defaults_do_not_depend_on_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    home = Settings.from_env({"HOME": "/home/tutor"})
    state = "/home/tutor/.local/state/safeguarding-gateway"
    assert home.database_url == f"sqlite+aiosqlite:///{state}/gateway.db"
    assert home.keys_dir == Path(state) / "keys"

    xdg = Settings.from_env({"HOME": "/home/tutor", "XDG_STATE_HOME": "/var/state"})
    assert xdg.keys_dir == Path("/var/state/safeguarding-gateway/keys")
    # The XDG rules ignore a relative XDG_STATE_HOME.
    relative = Settings.from_env({"HOME": "/home/tutor", "XDG_STATE_HOME": "state"})
    assert relative.keys_dir == home.keys_dir

    # The default policy ships inside the package; it is the repository's policies/default.toml.
    assert home.policy_path == PACKAGED_POLICIES / "default.toml"
    assert home.policy_path.samefile(ROOT / "policies" / "default.toml")

    # Relative paths given by the operator are taken from here, and kept absolute.
    given = Settings.from_env(
        {
            "GATEWAY_KEYS_DIR": "keys",
            "GATEWAY_POLICY": "policy.toml",
            "GATEWAY_DATABASE_URL": "sqlite:///gateway.db",
        }
    )
    assert given.keys_dir == tmp_path / "keys"
    assert given.policy_path == tmp_path / "policy.toml"
    assert given.database_url == f"sqlite+aiosqlite:///{tmp_path}/gateway.db"


def test_the_default_policy_is_package_data() -> None:
    """A built wheel carries gateway/policies/default.toml; it is a link to the one file
    organisations edit, policies/default.toml (one source of truth)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["gateway"]
    packaged = {path for pattern in patterns for path in (ROOT / "gateway").glob(pattern)}
    for name in ("default.toml", "demo.toml"):
        shipped = ROOT / "gateway" / "policies" / name
        assert shipped in packaged, name
        assert shipped.is_symlink() and shipped.samefile(ROOT / "policies" / name), name


def test_help_lists_every_setting_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["serve", "--help"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 0
        out = capsys.readouterr().out
        for row in settings_table():
            assert re.search(rf"^  {row.variable}\b", out, re.MULTILINE), (argv, row.variable)
            shown = "unset" if row.default is None else row.default
            assert f"default: {shown}\n" in out, (argv, row.variable)


def test_the_readme_table_is_the_generated_one(capsys: pytest.CaptureFixture[str]) -> None:
    """README.md carries the output of `gateway settings` as it is: regenerate and paste it
    after adding or changing a setting."""
    assert main(["settings"]) == 0
    printed = capsys.readouterr().out
    assert printed == settings_markdown()
    assert all(f"`{row.variable}`" in printed for row in settings_table())
    readme = (ROOT / "README.md").read_text()
    assert printed in readme, "README.md: paste the output of `gateway settings`"
