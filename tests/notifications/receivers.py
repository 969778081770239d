"""Real receivers for notifications, on loopback: an SMTP server (aiosmtpd) that can be taken
down and brought back on the same port, and an HTTP webhook receiver that checks the Standard
Webhooks signature over the raw body and can be told to fail its first answers.

Used by the tests and by scripts/bench_outbox.py.
"""

from __future__ import annotations

import base64
import email
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope


@dataclass
class Received:
    to: list[str]
    mail: Message
    at: float  # time.monotonic() when the server accepted it

    @property
    def text(self) -> str:
        payload = self.mail.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return payload.decode()


@dataclass
class MailHandler:
    received: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # addresses answered "550 no such user"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.received.append(
            Received(list(envelope.rcpt_tos), email.message_from_bytes(content), time.monotonic())
        )
        return "250 OK"


class SmtpServer:
    """aiosmtpd in its own thread; `stop()` and `start()` keep the port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.handler = MailHandler()
        self._controller: Controller | None = None

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def start(self) -> None:
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.to]


def verify_signature(secret: bytes, headers: Any, body: bytes) -> bool:
    """The receiver's side of Standard Webhooks, written here from the specification (not with
    the gateway's code): HMAC-SHA256 over "id.timestamp.body", any listed v1 signature."""
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    signed = f"{msg_id}.{stamp}.".encode() + body
    expected = base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()
    for candidate in headers.get("webhook-signature", "").split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


@dataclass
class WebhookReceiver:
    """Answers `fail_first` requests with 500, then 200; keeps what it accepted by webhook-id
    (its idempotency key), and counts bad signatures."""

    secret: bytes
    fail_first: int = 0
    requests: int = 0
    bad_signatures: int = 0
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: int = 0
    arrival: dict[str, float] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests += 1
        if not verify_signature(self.secret, request.headers, body):
            self.bad_signatures += 1
            return web.Response(status=401)
        if self.requests <= self.fail_first:
            return web.Response(status=500)
        msg_id = request.headers["webhook-id"]
        if msg_id in self.accepted:
            self.duplicates += 1
        else:
            import json

            self.accepted[msg_id] = json.loads(body)
            self.arrival[msg_id] = time.monotonic()
        return web.Response(status=204)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hooks/safeguarding", self.handle)
        return app
