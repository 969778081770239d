"""A signed webhook (Standard Webhooks): POST the message's JSON with `webhook-id` (the outbox
id: the receiver's idempotency key, the same on every retry), `webhook-timestamp` and
`webhook-signature` (`v1,` + base64 HMAC-SHA256 of "id.timestamp.body").

Any 2xx is delivered; anything else, or no answer before the deadline, is tried again later
(the specification's receivers answer non-2xx to ask for a retry). Redirects are not followed:
the organisation configured one address, and the message goes there or nowhere.
"""

from __future__ import annotations

import aiohttp

from gateway.domain.outbox import (
    CONNECTION,
    TEMPORARY,
    TIMEOUT,
    DeliveryFailed,
    OutboxMessage,
    WebhookChannel,
    webhook_body,
    webhook_headers,
    webhook_secret_bytes,
)


class WebhookSender:
    """Uses the caller's `aiohttp.ClientSession` (and never closes it)."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self._http = http

    async def send(
        self, channel: WebhookChannel, message: OutboxMessage, timestamp: int, deadline: float
    ) -> None:
        body = webhook_body(message)
        headers = webhook_headers(webhook_secret_bytes(channel.secret), message, timestamp, body)
        try:
            async with self._http.post(
                channel.url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=deadline),
            ) as response:
                if not 200 <= response.status < 300:
                    raise DeliveryFailed(TEMPORARY)
        except TimeoutError as exc:
            raise DeliveryFailed(TIMEOUT) from exc
        except aiohttp.ClientError as exc:
            raise DeliveryFailed(CONNECTION) from exc
