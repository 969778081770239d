"""Consent collected online: a real gateway on loopback (frozen clock), a real SMTP server
that receives both the staff sign-in links and the outbox's consent links, and browsers as
aiohttp sessions with their own cookie jars (tests/staff/conftest.py)."""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from gateway.adapters.sql.consent_link_schema import consent_links, consent_signatures
from tests.http.world import World
from tests.plugins.gateway_server import Gateway
from tests.staff.conftest import (  # noqa: F401 (fixtures)
    Browser,
    Mailbox,
    Page,
    email_of,
    mailbox,
    new_browser,
    staff_gateway,
    staff_world,
)

CONSENT_LINK = re.compile(r"(https?://\S+/consent/link\?token=[A-Za-z0-9._-]+)")
PAT = "pat.parker@example.net"
QUINN = "quinn.quill@example.net"
LESSONS = "recording:lesson_review"
SAFEGUARDING = "recording:safeguarding_review"


@dataclass
class Family:
    """The HTTP tests' organisation plus an admin signed in, and Pat Parker (e-mail on the
    registry) with Kim (14: asked for her own assent) and Lee (8: not asked)."""

    gateway: Gateway
    world: World
    mailbox: Mailbox
    admin: Browser
    ids: dict[str, str] = field(default_factory=dict)

    async def guardian(self, name: str, contact: str) -> str:
        answer = await self.world.admin.post("/v1/guardians", {"name": name, "contact": contact})
        assert answer.status == 201, answer.body
        self.world.ids[name] = answer.body["id"]
        return str(answer.body["id"])

    async def send_link(self, guardian: str, to: str) -> str:
        """The admin sends the link from the staff page; the link as the e-mail carries it."""
        before = len([m for m in self.mailbox.messages if m["To"] == to])
        form = await self.admin.get("/staff/consent-links")
        assert form.status == 200, form.text
        sent = await self.admin.post(
            "/staff/consent-links", {"csrf": form.csrf, "guardian": self.world.ids[guardian]}
        )
        assert sent.status == 200 and 'id="sent"' in sent.text, sent.text
        return await consent_link_for(self.mailbox, to, before)


async def consent_link_for(box: Mailbox, to: str, seen: int = 0, timeout: float = 10.0) -> str:
    """The consent link in the first message to `to` after the `seen` ones already there."""
    import asyncio

    for _ in range(int(timeout / 0.05)):
        mine = [m for m in box.messages if m["To"] == to]
        if len(mine) > seen:
            body = mine[seen].get_payload(decode=True)
            assert isinstance(body, bytes)
            found = CONSENT_LINK.search(body.decode())
            assert found, body
            return found.group(1)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no consent link mailed to {to}")


async def family(gateway: Gateway, box: Mailbox) -> Family:
    world = await staff_world(gateway)
    await world.staff("Ann Admin", ["admin"])
    answer = await world.admin.call(
        "PUT",
        "/v1/notification-channels",
        {
            "email": {
                "host": "127.0.0.1",
                "port": box.port,
                "security": "none",
                "from_address": "gateway@example.org",
                "dsl_address": "dsl@example.org",
            }
        },
    )
    assert answer.status == 200, answer.body
    admin = await new_browser(gateway)
    signed = await admin.sign_in_with_link(box, email_of("Ann Admin"))
    assert signed.status == 303, signed.text
    fam = Family(gateway, world, box, admin)
    await fam.guardian("Pat Parker", PAT)
    for name, born in (("Kim Parker", "2012-05-01"), ("Lee Parker", "2018-01-10")):
        await world.child(name, born, "Pat Parker", consent=False)
    return fam


async def open_link(browser: Browser, link: str) -> Page:
    """Open the e-mail's link (a button only), then press it: the answer to the press."""
    opened = await browser.get(link)
    assert opened.status == 200, opened.text
    token = link.rsplit("token=", 1)[1]
    assert f'value="{token}"' in opened.text
    return await browser.post("/consent/link/use", {"token": token})


FORM = re.compile(r'<form method="post" action="(/[^"]+)">(.*?)</form>', re.S)
HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def forms(page: Page, action: str) -> list[dict[str, str]]:
    """The hidden fields of every form on the page that posts to `action`."""
    found = []
    for target, inner in FORM.findall(page.text):
        if target == action:
            found.append({k: html.unescape(v) for k, v in HIDDEN.findall(inner)})
    return found


def form_for(page: Page, action: str, **match: str) -> dict[str, str]:
    [one] = [f for f in forms(page, action) if all(f.get(k) == v for k, v in match.items())]
    return one


SHOWN = re.compile(r'<div class="shown" data-shown-sha256="([0-9a-f]{64})">(.*?)</div>', re.S)
PARAGRAPH = re.compile(r"<p[^>]*>(.*?)</p>", re.S)
TAG = re.compile(r"<[^>]+>")


def shown_texts(page: Page) -> dict[str, str]:
    """Each block of words a signature covers, as a reader sees it: digest -> text."""
    found = {}
    for digest, inner in SHOWN.findall(page.text):
        lines = [html.unescape(TAG.sub("", p)).strip() for p in PARAGRAPH.findall(inner)]
        found[digest] = "\n".join(lines)
    return found


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def rows(gateway: Gateway, table: Any) -> list[dict[str, Any]]:
    def read(conn: Connection) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in conn.execute(select(table))]

    return await gateway.services.store._db.read(read)


async def signatures(gateway: Gateway) -> list[dict[str, Any]]:
    return await rows(gateway, consent_signatures)


async def links(gateway: Gateway) -> list[dict[str, Any]]:
    return await rows(gateway, consent_links)
