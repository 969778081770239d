"""Every setting of the gateway, defined once; the only place that reads the environment.

Each field of `Settings` is one `setting(...)` entry: environment variable, kind (how the text
is read and checked), default, one line of help, and whether its value is a secret. From that
one table come `Settings.from_env`, the list in `gateway serve --help` and `gateway --help`
(`settings_help`), and the README's table (`gateway settings`, `settings_markdown`; a test
checks the README against it). Adding a setting is adding one entry, for example:

    metrics_token: str | None = setting(
        "GATEWAY_METRICS_TOKEN", optional(TEXT), None,
        "bearer token /metrics asks for (unset: ...)", secret=True,
    )

then reading `settings.metrics_token` where `gateway/app.py` wires the thing it configures
(a test fails for a setting no code reads), and pasting `gateway settings` into the README. A
new kind of value is a `Kind(name, reader)` whose reader raises `Invalid(what it accepts)`;
give it a sample value in tests/test_settings.py.

A bad value stops the command with one line naming the variable and what it accepts
(`SettingError`, exit status 2). Values of secret settings (URLs that may carry a password,
TURN credentials, tokens) are never repeated back. An empty variable counts as unset.

Defaults that name places (placeholders in the table):

- `<state>` is `$XDG_STATE_HOME/safeguarding-gateway`, or `~/.local/state/safeguarding-gateway`
  when XDG_STATE_HOME is unset: the SQLite database and the keys live there by default, the
  same whichever directory a command is started from (before, `var/` under the current
  directory: `gateway serve` started elsewhere made a second, empty gateway).
- `<package>` is the installed `gateway` package: the default policy ships inside it
  (`gateway/policies/default.toml`, a link to the repository's `policies/default.toml`).

Relative paths given in variables are taken from the directory the command starts in and are
made absolute when read, so they do not move if the process changes directory.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import pwd
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Generic, TypeVar, cast
from urllib.parse import urlsplit

from gateway.adapters.sql.urls import DatabaseUrlError, normalise_database_url

__all__ = [
    "BYTES",
    "COUNT",
    "DATABASE_URL",
    "HTTP_URL",
    "ICE_SERVERS",
    "LOG_LEVEL",
    "NETWORKS",
    "PACKAGED_POLICIES",
    "PATH",
    "PORT",
    "REDIS_URL",
    "SECONDS",
    "SMTP_SECURITY",
    "TEXT",
    "Invalid",
    "Kind",
    "Setting",
    "SettingError",
    "Settings",
    "default_state_dir",
    "optional",
    "setting",
    "settings_help",
    "settings_markdown",
    "settings_table",
]

T = TypeVar("T")

PACKAGED_POLICIES = Path(__file__).resolve().with_name("policies")
STATE_FOLDER = "safeguarding-gateway"
_SPEC = "gateway.setting"
_PLACES = {
    "<state>": "`<state>` is `$XDG_STATE_HOME/safeguarding-gateway` "
    "(`~/.local/state/safeguarding-gateway` when XDG_STATE_HOME is unset)",
    "<package>": "`<package>` is the installed `gateway` package",
}


class Invalid(ValueError):
    """Raised by a kind's reader: what the setting accepts, and a safe account of what came."""

    def __init__(self, accepted: str, got: str | None = None) -> None:
        super().__init__(accepted)
        self.accepted = accepted
        self.got = got


class SettingError(ValueError):
    """One setting's value cannot be used: `GATEWAY_X must be <what it accepts>, got "<value>"`."""

    def __init__(self, variable: str, accepted: str, got: str | None) -> None:
        got_text = "" if got is None else f", got {got}"
        super().__init__(f"{variable} must be {accepted}{got_text}")
        self.variable = variable


@dataclass(frozen=True, slots=True)
class Kind(Generic[T]):
    """How a setting's text is read: a short name for the table, and the reader."""

    name: str
    read: Callable[[str], T]


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of the table."""

    name: str  # the Settings field
    variable: str
    kind: Kind[Any]
    default: str | None  # as an operator would write it, placeholders allowed; None: unset
    help: str
    secret: bool

    def value(self, raw: str | None, env: Mapping[str, str]) -> Any:
        """The field's value from the variable's text (None: unset, the default applies)."""
        if raw is None:
            if self.default is None:
                return None
            return self.kind.read(_expand(self.default, env))
        try:
            return self.kind.read(raw)
        except Invalid as invalid:
            got = invalid.got
            if got is None and not self.secret:
                got = _quoted(raw)
            raise SettingError(self.variable, invalid.accepted, got) from None


def setting(
    variable: str,
    kind: Kind[T],
    default: str | None,
    help: str,
    *,
    secret: bool = False,
) -> T:
    """Declare a field of `Settings` (see the module docstring). `default` is text read by
    `kind` like a variable's value; one naming `<state>` is worked out when settings are made,
    from the environment given to `from_env` (`Settings()`: this process's HOME)."""
    spec = Setting("", variable, kind, default, help, secret)
    metadata = {_SPEC: spec}
    if default is None:
        return cast(T, field(default=None, metadata=metadata))
    if "<state>" in default:
        return cast(
            T, field(default_factory=lambda: spec.value(None, os.environ), metadata=metadata)
        )
    return cast(T, field(default=spec.value(None, {}), metadata=metadata))


def optional(kind: Kind[T]) -> Kind[T | None]:
    """The same kind, for a setting that may be left unset (its default is None)."""
    return cast(Kind[T | None], kind)


def default_state_dir(env: Mapping[str, str]) -> Path:
    """`$XDG_STATE_HOME/safeguarding-gateway`, else `~/.local/state/safeguarding-gateway`.

    The XDG base directory rules ignore a relative XDG_STATE_HOME; so does this."""
    state_home = env.get("XDG_STATE_HOME", "")
    if state_home and Path(state_home).is_absolute():
        return Path(state_home) / STATE_FOLDER
    home = env.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir
    return Path(home) / ".local" / "state" / STATE_FOLDER


def _expand(default: str, env: Mapping[str, str]) -> str:
    text = default.replace("<package>", str(PACKAGED_POLICIES.parent))
    if "<state>" in text:
        text = text.replace("<state>", str(default_state_dir(env)))
    return text


# --- kinds ---------------------------------------------------------------------------------


def _seconds(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise Invalid("a positive number of seconds") from None
    if not math.isfinite(value):
        raise Invalid("a positive number of seconds")
    if value <= 0:
        raise Invalid("positive (a number of seconds)")
    return value


def _bytes(raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise Invalid("a positive whole number of bytes") from None
    if value <= 0:
        raise Invalid("a positive whole number of bytes")
    return value


def _count(raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise Invalid("a positive whole number") from None
    if value <= 0:
        raise Invalid("a positive whole number")
    return value


def _networks(raw: str) -> tuple[str, ...]:
    """Comma-separated CIDRs (or single addresses), each checked by `ipaddress`."""
    networks = tuple(part.strip() for part in raw.split(",") if part.strip())
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise Invalid("comma-separated networks such as 10.0.0.0/8,::1") from None
    return networks


def _livekit_url(raw: str) -> str:
    accepted = "a ws://, wss://, http:// or https:// URL of a LiveKit server, with no query"
    try:
        parts = urlsplit(raw.strip())
        _ = parts.port
    except ValueError:
        raise Invalid(accepted) from None
    if (
        parts.scheme not in ("ws", "wss", "http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.query
        or parts.fragment
    ):
        raise Invalid(accepted)
    return raw.strip().rstrip("/")


def _identifiers(raw: str) -> tuple[str, ...]:
    """Comma-separated organisation ids, or * for every organisation."""
    ids = tuple(part.strip() for part in raw.split(",") if part.strip())
    for each in ids:
        if each != "*" and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", each):
            raise Invalid("comma-separated organisation ids, or *")
    return ids


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        raise Invalid("one of " + ", ".join(LOG_LEVELS))
    return level


def _public_url(raw: str) -> str:
    accepted = (
        "an http:// or https:// URL with a host and no query, such as https://gateway.example.org"
    )
    try:
        parts = urlsplit(raw.strip())
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        raise Invalid(accepted) from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.query
        or parts.fragment
    ):
        raise Invalid(accepted)
    return raw.strip().rstrip("/")


def _database_url(raw: str) -> str:
    try:
        return normalise_database_url(raw)
    except DatabaseUrlError as error:
        raise Invalid(error.accepted, error.got) from None


def _redis_url(raw: str) -> str:
    accepted = "a redis://, rediss:// or unix:// URL"
    scheme = raw.strip().partition("://")[0].lower()
    if "://" not in raw or scheme not in ("redis", "rediss", "unix"):
        raise Invalid(accepted, f'scheme "{_printable(scheme)}"' if "://" in raw else None)
    return raw.strip()


def _path(raw: str) -> Path:
    if "\0" in raw or not raw.strip():
        raise Invalid("a path")
    return Path(raw.strip()).expanduser().absolute()


def _ice_servers(raw: str) -> str:
    accepted = (
        'a JSON list of {"urls": "turn:..." or ["stun:...", ...], "username": ..., '
        '"credential": ...} objects'
    )
    try:
        entries = json.loads(raw)
    except (ValueError, RecursionError):
        raise Invalid(accepted) from None
    if not isinstance(entries, list):
        raise Invalid(accepted)
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) - {"urls", "username", "credential"}:
            raise Invalid(accepted)
        urls = entry.get("urls")
        urls = [urls] if isinstance(urls, str) else urls
        if not isinstance(urls, list) or not urls:
            raise Invalid(accepted)
        for url in urls:
            if not isinstance(url, str) or url.split(":", 1)[0] not in _ICE_SCHEMES:
                raise Invalid(accepted)
        for name in ("username", "credential"):
            if not isinstance(entry.get(name, ""), str):
                raise Invalid(accepted)
    return raw


_ICE_SCHEMES = ("stun", "stuns", "turn", "turns")


def _text(raw: str) -> str:
    text = raw.strip()
    if not text or len(text) > 200 or not text.isprintable():
        raise Invalid("printable text of 1 to 200 characters")
    return text


def _port(raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise Invalid("a TCP port number from 1 to 65535") from None
    if not 1 <= value <= 65535:
        raise Invalid("a TCP port number from 1 to 65535")
    return value


SMTP_SECURITIES = ("starttls", "tls", "none")


def _smtp_security(raw: str) -> str:
    value = raw.strip().lower()
    if value not in SMTP_SECURITIES:
        raise Invalid(
            "starttls (upgrade a plain connection), tls (TLS from the start, port 465) or "
            "none (loopback or a trusted network only)"
        )
    return value


SECONDS = Kind("seconds", _seconds)
BYTES = Kind("bytes", _bytes)
PORT = Kind("port", _port)
SMTP_SECURITY = Kind("mail security", _smtp_security)
COUNT = Kind("count", _count)
NETWORKS = Kind("networks", _networks)
LOG_LEVEL = Kind("level", _log_level)
HTTP_URL = Kind("URL", _public_url)
DATABASE_URL = Kind("URL", _database_url)
REDIS_URL = Kind("URL", _redis_url)
PATH = Kind("path", _path)
ICE_SERVERS = Kind("JSON", _ice_servers)
TEXT = Kind("text", _text)
LIVEKIT_URL = Kind("URL", _livekit_url)
IDENTIFIERS = Kind("ids", _identifiers)


# --- the table -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Typed, frozen settings. In code, pass any field by name; `from_env` reads them all."""

    database_url: str = setting(
        "GATEWAY_DATABASE_URL",
        DATABASE_URL,
        "sqlite:///<state>/gateway.db",
        "the database: sqlite:///path or postgresql://user:password@host/database "
        "(postgres://, postgresql+asyncpg:// and ?sslmode= accepted too)",
        secret=True,
    )
    redis_url: str | None = setting(
        "GATEWAY_REDIS_URL",
        optional(REDIS_URL),
        None,
        "Redis shared by several gateway processes for live state, attempt limits and alerts "
        "(unset: kept in this process, so run only one)",
        secret=True,
    )
    policy_path: Path = setting(
        "GATEWAY_POLICY",
        PATH,
        "<package>/policies/default.toml",
        "the written policy for organisations without their own file",
    )
    keys_dir: Path = setting(
        "GATEWAY_KEYS_DIR",
        PATH,
        "<state>/keys",
        "folder of the invite-signing, audit and media keys (created 0700, keys.json 0600)",
    )
    public_url: str = setting(
        "GATEWAY_PUBLIC_URL",
        HTTP_URL,
        "http://127.0.0.1:8080",
        "the address people reach the gateway at: the base of invite links",
    )
    process_url: str | None = setting(
        "GATEWAY_PROCESS_URL",
        optional(HTTP_URL),
        None,
        "where browsers reach this very process (set per process when several run: joins for a"
        " session live on another process are sent there; unset: GATEWAY_PUBLIC_URL)",
    )
    max_body_bytes: int = setting(
        "GATEWAY_MAX_BODY_BYTES", BYTES, "65536", "largest request body accepted"
    )
    log_level: str = setting(
        "GATEWAY_LOG_LEVEL", LOG_LEVEL, "INFO", "DEBUG, INFO, WARNING, ERROR or CRITICAL"
    )
    issuer: str = setting(
        "GATEWAY_TOKEN_ISSUER",
        TEXT,
        "safeguarding-gateway",
        "issuer named in invite tokens and media credentials; changing it voids those issued",
    )
    reconcile_seconds: float = setting(
        "GATEWAY_RECONCILE_SECONDS",
        SECONDS,
        "3",
        "how often supervision is re-checked against the relay",
    )
    ice_servers_json: str = setting(
        "GATEWAY_ICE_SERVERS",
        ICE_SERVERS,
        "[]",
        'STUN/TURN servers for browsers, as JSON [{"urls", "username", "credential"}] '
        "(none: no public STUN server is contacted)",
        secret=True,
    )
    media_disconnect_seconds: float = setting(
        "GATEWAY_MEDIA_DISCONNECT_SECONDS",
        SECONDS,
        "10",
        "a media connection silent this long is dropped (browsers check every ~5 s)",
    )
    # Embedded relay capacity and overload (issue 11, branch relay).
    media_socket_buffer_bytes: int = setting(
        "GATEWAY_MEDIA_SOCKET_BUFFER_BYTES",
        BYTES,
        "2097152",
        "UDP receive/send buffer the relay asks for per media socket (a warning is logged "
        "when net.core.rmem_max / wmem_max caps it)",
    )
    media_max_video_kbps: int = setting(
        "GATEWAY_MEDIA_MAX_VIDEO_KBPS",
        COUNT,
        "2500",
        "video bitrate announced to each publisher; frames past twice it are dropped",
    )
    media_max_loop_lag_seconds: float = setting(
        "GATEWAY_MEDIA_MAX_LOOP_LAG_SECONDS",
        SECONDS,
        "0.1",
        "event-loop lag from which new media sessions are refused (503 overloaded); from "
        "twice it, every new media connection",
    )
    media_max_udp_drops: int = setting(
        "GATEWAY_MEDIA_MAX_UDP_DROPS",
        COUNT,
        "50",
        "UDP datagrams per second the kernel may drop on the relay's sockets before new "
        "media connections are refused",
    )
    media_max_streams: int | None = setting(
        "GATEWAY_MEDIA_MAX_STREAMS",
        optional(COUNT),
        None,
        "forwarded streams from which new media sessions are refused (12 per 4-person "
        "session; set from `scripts/bench relay`); unset: only measured load decides",
    )
    live_heartbeat_seconds: float = setting(
        "GATEWAY_LIVE_HEARTBEAT_SECONDS",
        SECONDS,
        "10",
        "a gateway process not heard from this long is taken for dead; each renews every third",
    )
    live_sweep_seconds: float = setting(
        "GATEWAY_LIVE_SWEEP_SECONDS",
        SECONDS,
        "5",
        "how often one process removes the presences of dead processes",
    )
    trusted_proxies: tuple[str, ...] = setting(
        "GATEWAY_TRUSTED_PROXIES",
        NETWORKS,
        "",
        "networks of reverse proxies whose X-Forwarded-For is believed (comma-separated CIDRs;"
        " none: the client address is the peer's)",
    )
    read_timeout_seconds: float = setting(
        "GATEWAY_READ_TIMEOUT_SECONDS",
        SECONDS,
        "10",
        "a request's head, then its body, must arrive within this (slow senders are cut off)",
    )
    connections_per_source: int = setting(
        "GATEWAY_CONNECTIONS_PER_SOURCE",
        COUNT,
        "64",
        "open connections allowed from one address (trusted proxies exempt)",
    )
    metrics_token: str | None = setting(
        "GATEWAY_METRICS_TOKEN",
        optional(TEXT),
        None,
        "bearer token that /metrics asks for (unset: /metrics answers 404)",
        secret=True,
    )
    audit_witness: str | None = setting(
        "GATEWAY_AUDIT_WITNESS",
        optional(TEXT),
        None,
        "where the audit head is recorded outside the database: a file path, or an http(s) URL"
        " that is sent each head, signed (unset: <keys dir>/audit-witness.jsonl)",
        secret=True,
    )
    sql_timeout_seconds: float = setting(
        "GATEWAY_SQL_TIMEOUT_SECONDS",
        SECONDS,
        "5",
        "deadline of each database call (PostgreSQL statement_timeout, lock_timeout half of it;"
        " SQLite busy timeout); past it: 503 with Retry-After",
    )
    redis_timeout_seconds: float = setting(
        "GATEWAY_REDIS_TIMEOUT_SECONDS",
        SECONDS,
        "2",
        "connect and command deadline of each Redis call; past it: 503 with Retry-After",
    )
    smtp_host: str | None = setting(
        "GATEWAY_SMTP_HOST",
        optional(TEXT),
        None,
        "mail server that sends staff their sign-in links (unset: staff sign in with a "
        "password only, and cannot set one)",
    )
    smtp_port: int = setting("GATEWAY_SMTP_PORT", PORT, "587", "the mail server's port")
    smtp_from: str = setting(
        "GATEWAY_SMTP_FROM",
        TEXT,
        "safeguarding-gateway@localhost",
        "sender address of the gateway's e-mail",
    )
    smtp_security: str = setting(
        "GATEWAY_SMTP_SECURITY",
        SMTP_SECURITY,
        "starttls",
        "how the mail connection is protected: starttls, tls (port 465) or none",
    )
    staff_idle_seconds: float = setting(
        "GATEWAY_STAFF_IDLE_SECONDS",
        SECONDS,
        "1800",
        "a staff member signed in to the pages is signed out after this long without a request",
    )
    staff_session_seconds: float = setting(
        "GATEWAY_STAFF_SESSION_SECONDS",
        SECONDS,
        "43200",
        "a staff sign-in lasts at most this long, however active (then sign in again)",
    )
    recordings_dir: Path = setting(
        "GATEWAY_RECORDINGS_DIR",
        PATH,
        "<state>/recordings",
        "folder of the encrypted recordings (created 0700, each file 0600)",
    )
    recording_master_key_file: Path | None = setting(
        "GATEWAY_RECORDING_MASTER_KEY_FILE",
        optional(PATH),
        None,
        "file holding the 32-byte key that wraps each recording's own key (raw or base64,"
        " 0600; unset: nothing can be recorded, the rest of the gateway runs)",
    )
    retention_seconds: float = setting(
        "GATEWAY_RETENTION_SECONDS",
        SECONDS,
        "60",
        "how often recordings due for destruction (retention, withdrawn consent) are destroyed",
    )
    consent_link_seconds: float = setting(
        "GATEWAY_CONSENT_LINK_SECONDS",
        SECONDS,
        "604800",
        "a guardian's personal consent link, and the consent page it opens on their device,"
        " work this long after it is sent",
    )
    livekit_keys_file: Path | None = setting(  # lkhooks
        "GATEWAY_LIVEKIT_KEYS_FILE",
        optional(PATH),
        None,
        'LiveKit API keys whose signed webhooks are accepted, as JSON {"key": {"secret",'
        ' "organisations": [ids] or "*"}} (0600; unset: every LiveKit webhook is refused)',
    )
    # branch livekit: LiveKit as the video platform of chosen organisations
    livekit_url: str | None = setting(
        "GATEWAY_LIVEKIT_URL",
        optional(LIVEKIT_URL),
        None,
        "the LiveKit server the organisations in GATEWAY_LIVEKIT_ORGANISATIONS use (browsers"
        " connect to it; the gateway calls its API there; unset: the embedded relay for all)",
    )
    livekit_api_key: str | None = setting(
        "GATEWAY_LIVEKIT_API_KEY",
        optional(TEXT),
        None,
        "LiveKit API key (the issuer of the tokens the gateway mints)",
    )
    livekit_api_secret_file: Path | None = setting(
        "GATEWAY_LIVEKIT_API_SECRET_FILE",
        optional(PATH),
        None,
        "file holding the LiveKit API secret (0600; never logged)",
    )
    livekit_organisations: tuple[str, ...] = setting(
        "GATEWAY_LIVEKIT_ORGANISATIONS",
        IDENTIFIERS,
        "",
        "organisation ids whose sessions run on LiveKit, comma-separated, or * for all (the"
        " others keep the embedded relay)",
    )
    livekit_token_seconds: float = setting(
        "GATEWAY_LIVEKIT_TOKEN_SECONDS",
        SECONDS,
        "120",
        "lifetime of a LiveKit access token (minted at each join; LiveKit checks it at connect)",
    )
    livekit_timeout_seconds: float = setting(
        "GATEWAY_LIVEKIT_TIMEOUT_SECONDS",
        SECONDS,
        "3",
        "deadline of each LiveKit API call; past it, or unreachable: joins get 503",
    )
    livekit_client_js: Path | None = setting(
        "GATEWAY_LIVEKIT_CLIENT_JS",
        optional(PATH),
        None,
        "livekit-client's ES module build that join pages load from the gateway (unset: the one"
        " scripts/test and scripts/run install under .cache/livekit-client)",
    )

    # branch egress: recording on LiveKit through egress
    livekit_egress_upload_url: str | None = setting(
        "GATEWAY_LIVEKIT_EGRESS_UPLOAD_URL",
        optional(HTTP_URL),
        None,
        "where LiveKit Egress reaches this very process to upload the recordings it makes"
        " (each egress signs with its own secret; unset: GATEWAY_PROCESS_URL, else"
        " GATEWAY_PUBLIC_URL)",
    )
    livekit_egress_poll_seconds: float = setting(
        "GATEWAY_LIVEKIT_EGRESS_POLL_SECONDS",
        SECONDS,
        "2",
        "how often LiveKit's egress list is read while recording there: a failed egress (or a"
        " lost egress_ended) is found within this",
    )
    livekit_egress_finish_seconds: float = setting(
        "GATEWAY_LIVEKIT_EGRESS_FINISH_SECONDS",
        SECONDS,
        "30",
        "how long a stopped egress has to upload its file before its recording is sealed"
        " incomplete",
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Every setting from `env` (default: the process environment), or SettingError."""
        env = os.environ if env is None else env
        values = {row.name: row.value(env.get(row.variable) or None, env) for row in SETTINGS}
        return cls(**values)

    @staticmethod
    def variable(name: str) -> str:
        """The environment variable of a field, for messages that name it."""
        return _BY_NAME[name].variable


def settings_table() -> tuple[Setting, ...]:
    """Every setting, in declaration order."""
    return SETTINGS


def settings_help() -> str:
    """The settings for `--help`: variable, default, and what it sets."""
    lines = ["settings (environment variables; an empty value counts as unset):"]
    for row in SETTINGS:
        lines.append(f"  {row.variable}  [{row.kind.name}]")
        lines.extend(
            textwrap.wrap(row.help, 92, initial_indent="      ", subsequent_indent="      ")
        )
        lines.append(f"      default: {_shown_default(row)}")
    lines.append("")
    for text in _PLACES.values():
        lines.extend(
            textwrap.wrap(text.replace("`", ""), 92, initial_indent="  ", subsequent_indent="    ")
        )
    return "\n".join(lines) + "\n"


def settings_markdown() -> str:
    """The README's table of settings (printed by `gateway settings`)."""
    lines = ["| variable | kind | default | what it sets |", "|---|---|---|---|"]
    for row in SETTINGS:
        default = _shown_default(row)
        shown = f"`{default}`" if row.default is not None else default
        lines.append(f"| `{row.variable}` | {row.kind.name} | {shown} | {row.help} |")
    lines.append("")
    lines.append(
        "An empty variable counts as unset; relative paths are taken from the directory the "
        "command starts in. " + "; ".join(_PLACES.values()) + "."
    )
    return "\n".join(lines) + "\n"


def _shown_default(row: Setting) -> str:
    return "unset" if row.default is None else row.default


def _quoted(raw: str) -> str:
    shown = raw if len(raw) <= 80 else raw[:77] + "..."
    return json.dumps(shown)  # one line, control and direction characters escaped


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)[:40]


def _rows() -> tuple[Setting, ...]:
    rows = []
    for each in fields(Settings):
        spec = each.metadata.get(_SPEC)
        if spec is None:
            raise TypeError(f"Settings.{each.name} is not declared with setting(...)")
        assert isinstance(spec, Setting)
        rows.append(
            Setting(each.name, spec.variable, spec.kind, spec.default, spec.help, spec.secret)
        )
    if len({row.variable for row in rows}) != len(rows):
        raise TypeError("two settings share an environment variable")
    return tuple(rows)


SETTINGS = _rows()
_BY_NAME = {row.name: row for row in SETTINGS}
