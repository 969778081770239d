"""Janus (the C WebRTC server) as a benchmark peer: a loopback process and a VideoRoom client.

Used by ``scripts/bench_relay.py`` to measure the embedded relay against a real SFU with the
same aiortc load generator. Nothing here is part of the gateway.

* :class:`JanusProcess` writes a configuration into a temporary directory (only the VideoRoom
  plugin and the plain HTTP transport, on a free 127.0.0.1 port; ICE gathers on ``lo`` only,
  no STUN, TURN, NAT-1:1 or mDNS lookups; no event handlers or loggers), starts ``janus`` from
  it and stops it. Its CPU time is read from ``/proc/<pid>/stat``.
* :class:`JanusSession` is a small signalling client over Janus's HTTP API (create session,
  attach handles, synchronous requests, asynchronous messages answered through the long poll).
  The VideoRoom flow used: ``create`` a room; per publisher ``joinandconfigure`` with an SDP
  offer (Janus answers); per subscriber ``join`` as ``subscriber`` to a list of feeds (Janus
  offers), then ``start`` with the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout

__all__ = ["JANUS_LIB", "JanusError", "JanusHandle", "JanusProcess", "JanusSession", "janus_binary"]

JANUS_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")


class JanusError(RuntimeError):
    """Janus answered with an error, or could not be started."""


def janus_binary() -> str | None:
    """Path of the ``janus`` executable (Debian package ``janus``), or None."""
    return shutil.which("janus")


def _lib_dir() -> Path:
    for candidate in (JANUS_LIB, *Path("/usr/lib").glob("*/janus"), Path("/usr/lib/janus")):
        if (candidate / "plugins" / "libjanus_videoroom.so").exists():
            return candidate
    raise JanusError("Janus plugins not found (is the Debian package janus installed?)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc/<pid>/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class JanusProcess:
    """A private Janus on loopback, from a generated configuration."""

    def __init__(self, *, debug_level: int = 2) -> None:
        self.debug_level = debug_level
        self.port = 0
        self.dir: tempfile.TemporaryDirectory[str] | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/janus"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def _write_config(self, root: Path) -> Path:
        lib = _lib_dir()
        folders = {}
        for name, keep in (
            ("plugins", "libjanus_videoroom.so"),
            ("transports", "libjanus_http.so"),
            ("events", None),
            ("loggers", None),
        ):
            folder = root / name
            folder.mkdir()
            if keep is not None:
                (folder / keep).symlink_to(lib / name / keep)
            folders[name] = folder
        conf = root / "conf"
        conf.mkdir()
        (conf / "janus.jcfg").write_text(
            f"""general: {{
\tconfigs_folder = "{conf}"
\tplugins_folder = "{folders["plugins"]}"
\ttransports_folder = "{folders["transports"]}"
\tevents_folder = "{folders["events"]}"
\tloggers_folder = "{folders["loggers"]}"
\tdebug_level = {self.debug_level}
\tsession_timeout = 120
\tserver_name = "bench"
}}
media: {{
\tno_media_timer = 5
}}
nat: {{
\tnice_debug = false
\tignore_mdns = true
\tice_enforce_list = "lo"
\tignore_unreachable_ice_server = true
}}
plugins: {{
}}
transports: {{
}}
events: {{
\tbroadcast = false
}}
loggers: {{
}}
"""
        )
        (conf / "janus.transport.http.jcfg").write_text(
            f"""general: {{
\tjson = "compact"
\tbase_path = "/janus"
\thttp = true
\tport = {self.port}
\tip = "127.0.0.1"
\thttps = false
}}
admin: {{
\tadmin_http = false
\tadmin_https = false
}}
"""
        )
        (conf / "janus.plugin.videoroom.jcfg").write_text("general: {\n}\n")
        return conf

    async def start(self, wait: float = 20.0) -> None:
        binary = janus_binary()
        if binary is None:
            raise JanusError("janus is not installed (Debian package janus)")
        self.dir = tempfile.TemporaryDirectory(prefix="bench-janus-")
        root = Path(self.dir.name)
        self.port = _free_port()
        conf = self._write_config(root)
        self.proc = self._spawn(binary, conf, root / "janus.log")
        deadline = time.monotonic() + wait
        async with ClientSession(timeout=ClientTimeout(total=2)) as http:
            while True:
                if self.proc.poll() is not None:
                    raise JanusError(f"janus exited at start:\n{self.log_tail()}")
                with contextlib.suppress(OSError, TimeoutError):
                    async with http.get(f"{self.url}/info") as response:
                        if response.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise JanusError(f"janus did not answer in {wait} s:\n{self.log_tail()}")
                await asyncio.sleep(0.2)

    @staticmethod
    def _spawn(binary: str, conf: Path, log_path: Path) -> subprocess.Popen[bytes]:
        with open(log_path, "wb") as log:
            return subprocess.Popen(
                [binary, "-C", str(conf / "janus.jcfg"), "-F", str(conf), "-o"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def log_tail(self, lines: int = 30) -> str:
        if self.dir is None:
            return ""
        path = Path(self.dir.name) / "janus.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        if self.dir is not None:
            self.dir.cleanup()
            self.dir = None


class JanusSession:
    """One Janus API session over HTTP, with a long-poll task delivering asynchronous events."""

    def __init__(self, http: ClientSession, url: str) -> None:
        self.http = http
        self.url = url
        self.session_id = 0
        self._tx = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._poller: asyncio.Task[None] | None = None

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(f"{self.url}{path}", json=body) as response:
            reply: dict[str, Any] = await response.json(content_type=None)
        if reply.get("janus") == "error":
            raise JanusError(str(reply.get("error")))
        return reply

    async def create(self) -> None:
        reply = await self._post("", {"janus": "create", "transaction": self._next_tx()})
        self.session_id = int(reply["data"]["id"])
        self._poller = asyncio.create_task(self._poll())

    def _next_tx(self) -> str:
        return f"t{next(self._tx)}"

    async def _poll(self) -> None:
        url = f"{self.url}/{self.session_id}?maxev=20"
        while True:
            try:
                async with self.http.get(url, timeout=ClientTimeout(total=40)) as response:
                    events = await response.json(content_type=None)
            except (OSError, TimeoutError):
                await asyncio.sleep(0.2)
                continue
            for event in events if isinstance(events, list) else [events]:
                tx = event.get("transaction")
                if event.get("janus") in ("event", "error") and tx in self._waiting:
                    future = self._waiting.pop(tx)
                    if not future.done():
                        future.set_result(event)

    async def attach(self) -> JanusHandle:
        reply = await self._post(
            f"/{self.session_id}",
            {"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": self._next_tx()},
        )
        return JanusHandle(self, int(reply["data"]["id"]))

    async def destroy(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self.session_id:
            with contextlib.suppress(Exception):
                await self._post(
                    f"/{self.session_id}", {"janus": "destroy", "transaction": self._next_tx()}
                )
        for future in self._waiting.values():
            future.cancel()
        self._waiting.clear()


class JanusHandle:
    """A VideoRoom plugin handle."""

    def __init__(self, session: JanusSession, handle_id: int) -> None:
        self.session = session
        self.handle_id = handle_id

    @property
    def _path(self) -> str:
        return f"/{self.session.session_id}/{self.handle_id}"

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous plugin request (create, list...): the answer is in the reply."""
        reply = await self.session._post(
            self._path, {"janus": "message", "body": body, "transaction": self.session._next_tx()}
        )
        data: dict[str, Any] = reply.get("plugindata", {}).get("data", {})
        if "error" in data:
            raise JanusError(str(data["error"]))
        return data

    async def message(
        self, body: dict[str, Any], jsep: dict[str, Any] | None = None, wait: float = 20.0
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """An asynchronous plugin request: acked at once, answered by an event (with a JSEP)."""
        tx = self.session._next_tx()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.session._waiting[tx] = future
        payload: dict[str, Any] = {"janus": "message", "body": body, "transaction": tx}
        if jsep is not None:
            payload["jsep"] = jsep
        try:
            await self.session._post(self._path, payload)
            event = await asyncio.wait_for(future, wait)
        finally:
            self.session._waiting.pop(tx, None)
        if event.get("janus") == "error":
            raise JanusError(str(event.get("error")))
        data: dict[str, Any] = event.get("plugindata", {}).get("data", {})
        if "error" in data:
            raise JanusError(str(data["error"]))
        return data, event.get("jsep")

    async def detach(self) -> None:
        with contextlib.suppress(Exception):
            await self.session._post(
                self._path, {"janus": "detach", "transaction": self.session._next_tx()}
            )
