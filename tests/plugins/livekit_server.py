"""A real LiveKit server on loopback, for the platform contract tests.

The binary comes from ``scripts/livekit_server.sh`` (run by ``scripts/test``; it builds the
pinned release from the Go module proxy into ``.cache/livekit/<version>/``), or from
``GATEWAY_LIVEKIT_SERVER_BIN``. Without one, tests that need it skip, saying why.

Fixtures:
- ``livekit_binary`` (session): the path of livekit-server.
- ``livekit_server`` (session): one server without webhooks, shared by the tests.
- ``start_livekit`` (function): ``start_livekit(webhook_urls=[...])`` starts a server of the
  test's own (its webhooks pointing at the gateway under test); stopped after the test.

Each server gets an API key and secret generated for it, a config file binding it to
127.0.0.1 only (``rtc.use_external_ip: false``, ``rtc.node_ip: 127.0.0.1``, loopback ICE
candidates, no STUN), free ports, rooms created only by the API (``room.auto_create: false``,
as the gateway wants in production too). Tests that use them are marked ``livekit``.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.plugins.servers import (
    ServerError,
    _die_with_parent,
    _make_tempdir,
    _register_cleanup,
    _stop_process,
    _tail,
    free_port,
)

__all__ = ["LiveKitServer", "livekit_binary_path"]

_ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = _ROOT / "scripts" / "livekit_server.sh"


def _pinned_version() -> str:
    match = re.search(r"^LIVEKIT_SERVER_VERSION=(\S+)$", _SCRIPT.read_text(), re.MULTILINE)
    assert match is not None, "scripts/livekit_server.sh names no LIVEKIT_SERVER_VERSION"
    return match.group(1)


def livekit_binary_path() -> Path | None:
    """GATEWAY_LIVEKIT_SERVER_BIN, else the binary scripts/livekit_server.sh caches."""
    named = os.environ.get("GATEWAY_LIVEKIT_SERVER_BIN")
    candidate = (
        Path(named)
        if named
        else _ROOT / ".cache" / "livekit" / _pinned_version() / "livekit-server"
    )
    return candidate if os.access(candidate, os.X_OK) else None


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveKitServer:
    """livekit-server on 127.0.0.1 with a key pair of its own."""

    host = "127.0.0.1"

    def __init__(self, binary: Path, webhook_urls: Sequence[str] = ()) -> None:
        self.binary = binary
        self.webhook_urls = list(webhook_urls)
        self.api_key = "APIgw" + secrets.token_hex(6)
        self.api_secret = secrets.token_urlsafe(32)
        self.tempdir = _make_tempdir("livekit", None)
        self.logfile = self.tempdir / "livekit.log"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """What clients and the gateway are configured with (ws://; the API is on the same
        port over http://)."""
        return f"ws://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _config(self) -> str:
        lines = [
            f"port: {self.port}",
            "bind_addresses:",
            f"  - {self.host}",
            "rtc:",
            f"  tcp_port: {free_port()}",
            f"  udp_port: {_free_udp_port()}",
            "  use_external_ip: false",
            f"  node_ip: {self.host}",
            "  enable_loopback_candidate: true",
            "  stun_servers: []",
            "room:",
            "  auto_create: false",
            "  empty_timeout: 60",
            "keys:",
            f"  {self.api_key}: {self.api_secret}",
            "logging:",
            "  level: info",
        ]
        if self.webhook_urls:
            lines += ["webhook:", f"  api_key: {self.api_key}", "  urls:"]
            lines += [f"    - {url}" for url in self.webhook_urls]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        if self.running:
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
        config = self.tempdir / "livekit.yaml"
        config.write_text(self._config())
        config.chmod(0o600)  # it holds the API secret
        with open(self.logfile, "ab") as log:
            self._proc = subprocess.Popen(
                [str(self.binary), "--config", str(config)],
                cwd=self.tempdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(signal.SIGKILL),
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                raise ServerError(f"livekit-server exited at start:\n{_tail(self.logfile)}")
            if self._answers():
                return
            time.sleep(0.1)
        self.stop()
        raise ServerError(f"livekit-server did not answer in 60s:\n{_tail(self.logfile)}")

    def _answers(self) -> bool:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=1)
        try:
            connection.request("GET", "/")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def stop(self, *, kill: bool = False) -> None:
        if self._proc is not None:
            _stop_process(self._proc, signal.SIGKILL if kill else signal.SIGTERM)
            self._proc = None

    def close(self) -> None:
        self.stop()


def _skip_reason() -> str:
    return (
        "livekit-server not built (no Go, or the module proxy refused a module): run "
        "scripts/livekit_server.sh, or set GATEWAY_LIVEKIT_SERVER_BIN to a livekit-server"
    )


@pytest.fixture(scope="session")
def livekit_binary() -> Path:
    binary = livekit_binary_path()
    if binary is None:
        pytest.skip(_skip_reason())
    return binary


@pytest.fixture(scope="session")
def livekit_server(livekit_binary: Path) -> Iterator[LiveKitServer]:
    server = LiveKitServer(livekit_binary)
    _register_cleanup(server.close)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def start_livekit(livekit_binary: Path) -> Iterator[Callable[..., LiveKitServer]]:
    started: list[LiveKitServer] = []

    def start(webhook_urls: Sequence[str] = ()) -> LiveKitServer:
        server = LiveKitServer(livekit_binary, webhook_urls)
        _register_cleanup(server.close)
        started.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        if {"livekit_server", "start_livekit", "livekit_binary"} & set(names):
            item.add_marker(pytest.mark.livekit)
