"""Staff sign-in tests: a real gateway on loopback, a real SMTP server (aiosmtpd) receiving the
sign-in links, and browsers as aiohttp sessions with their own cookie jars."""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.engine import Connection

from gateway.adapters.sql.schema import audit_log
from gateway.app import build_app
from gateway.clock import FrozenClock
from gateway.domain.audit import AuditEntry, decode_entry
from gateway.settings import Settings
from tests.http.world import World, build_world
from tests.plugins.gateway_server import MONDAY_10AM, ROOT, Client, Gateway
from tests.plugins.servers import free_port

LINK = re.compile(r"(https?://\S+/staff/sign-in/link\?token=[A-Za-z0-9_-]+)")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class _Collect:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@dataclass
class Mailbox:
    """A real SMTP server on a loopback port; what it received, in order."""

    port: int
    handler: _Collect

    @property
    def messages(self) -> list[Message]:
        return self.handler.messages

    async def link_for(self, to: str, timeout: float = 5.0) -> str:
        """The sign-in link in the newest message to `to`."""
        for _ in range(int(timeout / 0.05)):
            for message in reversed(self.messages):
                if message["To"] == to:
                    body = message.get_payload(decode=True)
                    assert isinstance(body, bytes)
                    found = LINK.search(body.decode())
                    assert found, body
                    return found.group(1)
            await asyncio.sleep(0.05)
        raise AssertionError(f"no mail to {to}")


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    handler = _Collect()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Mailbox(port, handler)
    finally:
        controller.stop()


@contextlib.asynccontextmanager
async def serve_gateway(
    database_url: str, tmp_path: Path, smtp_port: int, **overrides: Any
) -> AsyncIterator[Gateway]:
    """The standard test gateway (frozen clock), with sign-in links sent to `smtp_port`."""
    clock = FrozenClock(MONDAY_10AM)
    port = free_port()
    values: dict[str, Any] = {
        "database_url": database_url,
        "policy_path": ROOT / "policies" / "default.toml",
        "keys_dir": tmp_path / "keys",
        "public_url": f"http://127.0.0.1:{port}",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_from": "gateway@example.org",
        "smtp_security": "none",
        "staff_idle_seconds": 1800,
        "staff_session_seconds": 8 * 3600,
    }
    values.update(overrides)
    if "public_url" in overrides:
        port = int(overrides["public_url"].rsplit(":", 1)[1])
    settings = Settings(**values)
    app = build_app(settings, clock)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    sessions: list[aiohttp.ClientSession] = []
    try:
        yield Gateway(f"http://127.0.0.1:{port}", clock, app, settings, sessions)
    finally:
        for http in sessions:
            await http.close()
        await runner.cleanup()


@pytest.fixture
async def staff_gateway(
    database_url: str, tmp_path: Path, mailbox: Mailbox, schema_at_head: Callable[[str], None]
) -> AsyncIterator[Gateway]:
    schema_at_head(database_url)
    async with serve_gateway(database_url, tmp_path, mailbox.port) as gateway:
        yield gateway


@dataclass
class Page:
    status: int
    text: str
    headers: Any
    cookies: list[Any] = field(default_factory=list)

    @property
    def csrf(self) -> str:
        found = CSRF.search(self.text)
        assert found, self.text
        return html.unescape(found.group(1))

    @property
    def location(self) -> str | None:
        value = self.headers.get("Location")
        return str(value) if value is not None else None


@dataclass
class Browser:
    """One browser: its own cookie jar; sends Origin on posts like a real one."""

    base: str
    http: aiohttp.ClientSession

    async def get(self, path: str) -> Page:
        url = path if path.startswith("http") else self.base + path
        async with self.http.get(url, allow_redirects=False) as resp:
            return Page(resp.status, await resp.text(), resp.headers, list(resp.cookies.values()))

    async def post(
        self,
        path: str,
        form: dict[str, str],
        *,
        origin: str | None = "same",
        headers: dict[str, str] | None = None,
    ) -> Page:
        sent = dict(headers or {})
        if origin == "same":
            sent["Origin"] = self.base
        elif origin is not None:
            sent["Origin"] = origin
        async with self.http.post(
            self.base + path, data=form, headers=sent, allow_redirects=False
        ) as resp:
            return Page(resp.status, await resp.text(), resp.headers, list(resp.cookies.values()))

    def cookie(self, name: str) -> str | None:
        for morsel in self.http.cookie_jar:
            if morsel.key == name:
                return str(morsel.value)
        return None

    def set_cookie(self, name: str, value: str) -> None:
        self.http.cookie_jar.update_cookies(
            {name: value}, response_url=aiohttp.client.URL(self.base)
        )

    async def sign_in_with_link(self, mailbox: Mailbox, email: str) -> Page:
        """Ask for a link, read it from the mail, open it and use it: the answer to the use."""
        start = await self.get("/staff/sign-in")
        sent = await self.post("/staff/sign-in/link", {"csrf": start.csrf, "email": email})
        assert sent.status == 200, sent.text
        link = await mailbox.link_for(email)
        return await self.use_link(link)

    async def use_link(self, link: str) -> Page:
        opened = await self.get(link)
        token = link.rsplit("token=", 1)[1]
        assert f'value="{token}"' in opened.text
        return await self.post("/staff/sign-in/link/use", {"token": token})

    async def sign_in_with_password(self, email: str, password: str) -> Page:
        start = await self.get("/staff/sign-in")
        return await self.post(
            "/staff/sign-in/password", {"csrf": start.csrf, "email": email, "password": password}
        )


async def new_browser(gateway: Gateway) -> Browser:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    gateway._sessions.append(http)
    return Browser(gateway.base, http)


async def audited(gateway: Gateway, kind: str) -> list[AuditEntry]:
    """Every audit entry of `kind`, whichever organisation (or none) it belongs to."""

    def read(conn: Connection) -> list[AuditEntry]:
        rows = conn.execute(
            select(audit_log.c.entry).where(audit_log.c.kind == kind).order_by(audit_log.c.seq)
        )
        return [decode_entry(row[0]) for row in rows]

    return await gateway.services.store._db.read(read)


def email_of(name: str) -> str:
    return name.lower().replace(" ", ".") + "@example.org"


async def staff_world(gateway: Gateway) -> World:
    """The HTTP tests' organisation (tutor Tina Tutor, observer, child...), plus a DSL."""
    world = await build_world(gateway)
    await world.staff("Dee Lead", ["dsl"])
    return world


__all__ = [
    "Browser",
    "Client",
    "Mailbox",
    "Page",
    "audited",
    "email_of",
    "new_browser",
    "serve_gateway",
    "staff_world",
]
