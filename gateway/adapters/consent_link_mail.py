"""The e-mail sender the outbox worker uses, writing a guardian's consent link into its message
at the moment it is sent (DESIGN §3 "Notifications"; domain/consent_links.py).

The outbox row of a consent-link message holds a placeholder and the link's id; the token is
the HMAC of the link's facts under a key outside the database, so it is made here, handed to
the mail server, and never stored. Every other message passes through unchanged.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Protocol

from gateway.domain.consent_links import link_token
from gateway.domain.outbox import (
    CONSENT_LINK_PLACEHOLDER,
    REJECTED,
    DeliveryFailed,
    EmailChannel,
    Kind,
    OutboxMessage,
)


class EmailSender(Protocol):
    async def send(
        self, channel: EmailChannel, to: str, message: OutboxMessage, deadline: float
    ) -> None: ...


class ConsentLinkMail:
    def __init__(self, inner: EmailSender, key: bytes, public_url: str) -> None:
        self._inner = inner
        self._key = key
        self._base = public_url.rstrip("/")

    async def send(
        self, channel: EmailChannel, to: str, message: OutboxMessage, deadline: float
    ) -> None:
        if message.kind is Kind.CONSENT_LINK:
            message = replace(
                message, body=message.body.replace(CONSENT_LINK_PLACEHOLDER, self._url(message))
            )
        await self._inner.send(channel, to, message, deadline)

    def _url(self, message: OutboxMessage) -> str:
        data = message.payload.get("data")
        try:
            assert isinstance(data, dict)
            link_id, guardian_id = str(data["link_id"]), str(data["guardian_id"])
            expires_at = datetime.fromisoformat(str(data["expires_at"]))
        except (AssertionError, KeyError, ValueError) as exc:
            # A message that cannot carry its link must not go out without it: failed for good.
            raise DeliveryFailed(REJECTED) from exc
        token = link_token(self._key, message.org_id, link_id, guardian_id, expires_at)
        return f"{self._base}/consent/link?token={token}"
