"""Notification channels and delivery state, for the organisation's admin (API key).

PUT /v1/notification-channels replaces the organisation's channels (e-mail over SMTP, a signed
webhook); secrets (the SMTP password, the webhook secret) are write-only: the answer says only
whether one is set, and leaving one out keeps the stored one. GET /v1/notifications shows each
message's delivery state: attempts, the last error's class, the next try. Neither ever shows a
message's content or an address it was sent to beyond the channels' own settings.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import Field, field_validator, model_validator

from gateway.domain.outbox import (
    Channels,
    Delivery,
    DeliveryState,
    EmailChannel,
    WebhookChannel,
)
from gateway.domain.policy import EMAIL_ADDRESS
from gateway.http.bodies import ASCII_DIGITS, Body, Query, parse_body, parse_query
from gateway.http.keys import SETTINGS
from gateway.http.middleware import ORG
from gateway.http.routing import Route
from gateway.http.views import ChannelsView, DeliveryList
from gateway.services.notifications import LIST_LIMIT, Notifications

NOTIFICATIONS = web.AppKey("notifications", Notifications)
HOSTNAME = r"^[A-Za-z0-9.-]{1,253}$|^\[[0-9A-Fa-f:.]{2,45}\]$"
Address = Annotated[str, Field(min_length=3, max_length=320)]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _address(value: str | None) -> str | None:
    if value is not None and not EMAIL_ADDRESS.match(value):
        raise ValueError("must be an e-mail address")
    return value


class EmailChannelBody(Body):
    host: Annotated[str, Field(min_length=1, max_length=255, pattern=HOSTNAME)]
    port: Annotated[int, Field(ge=1, le=65535)]
    security: Literal["starttls", "tls", "none"] = Field(
        description="'none' only for an SMTP relay on loopback"
    )
    from_address: Address
    dsl_address: Address
    second_contact_address: Address | None = None
    username: Annotated[str, Field(min_length=1, max_length=320)] | None = None
    password: Annotated[str, Field(min_length=1, max_length=1024)] | None = Field(
        default=None, description="write-only; left out: the stored one is kept"
    )

    @field_validator("from_address", "dsl_address", "second_contact_address")
    @classmethod
    def _addresses(cls, value: str | None) -> str | None:
        return _address(value)

    @model_validator(mode="after")
    def _tls(self) -> EmailChannelBody:
        if self.security == "none" and not _loopback(self.host):
            raise ValueError("security 'none' is accepted only for a relay on loopback")
        return self


class WebhookChannelBody(Body):
    url: Annotated[str, Field(min_length=8, max_length=2000)]
    secret: Annotated[str, Field(min_length=24, max_length=200)] | None = Field(
        default=None, description="write-only; left out: the stored one is kept"
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be an https URL")
        if parts.scheme == "http" and not _loopback(parts.hostname):
            raise ValueError("must be https (http only on loopback)")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials")
        return value


class ChannelsBody(Body):
    email: EmailChannelBody | None = None
    webhook: WebhookChannelBody | None = None


def _service(request: web.Request) -> Notifications:
    return request.app[NOTIFICATIONS]


def channels_view(channels: Channels) -> dict[str, object]:
    email = channels.email
    webhook = channels.webhook
    return {
        "email": None
        if email is None
        else {
            "host": email.host,
            "port": email.port,
            "security": email.security,
            "from_address": email.from_address,
            "dsl_address": email.dsl_address,
            "second_contact_address": email.second_contact_address,
            "username": email.username,
            "password_set": bool(email.password),
        },
        "webhook": None
        if webhook is None
        else {"url": webhook.url, "secret_set": bool(webhook.secret)},
    }


def delivery_view(delivery: Delivery) -> dict[str, object]:
    message = delivery.message
    return {
        "id": message.id,
        "notification_id": message.notification_id,
        "kind": message.kind.value,
        "recipient": message.recipient.value,
        "channel": message.channel.value,
        "session_id": message.session_id,
        "incident_id": message.incident_id,
        "state": delivery.state.value,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "created_at": message.created_at.isoformat(),
        "next_attempt_at": (
            delivery.next_attempt_at.isoformat()
            if delivery.state is DeliveryState.PENDING
            else None
        ),
        "delivered_at": delivery.delivered_at.isoformat() if delivery.delivered_at else None,
        "escalated_at": delivery.escalated_at.isoformat() if delivery.escalated_at else None,
    }


async def put_channels(request: web.Request) -> web.Response:
    body = await parse_body(request, ChannelsBody, request.app[SETTINGS].max_body_bytes)
    org = request[ORG]
    email = webhook = None
    if body.email is not None:
        e = body.email
        email = EmailChannel(
            host=e.host,
            port=e.port,
            security=e.security,
            from_address=e.from_address,
            dsl_address=e.dsl_address,
            second_contact_address=e.second_contact_address,
            username=e.username,
            password=e.password,
        )
    if body.webhook is not None:
        webhook = WebhookChannel(url=body.webhook.url, secret=body.webhook.secret or "")
    stored = await _service(request).set_channels(
        org, Channels(email=email, webhook=webhook), actor=f"api:{org.id}"
    )
    return web.json_response(channels_view(stored))


async def get_channels(request: web.Request) -> web.Response:
    return web.json_response(channels_view(await _service(request).channels(request[ORG])))


class NotificationListQuery(Query):
    state: DeliveryState | None = None
    limit: Annotated[int, Field(ge=1, le=LIST_LIMIT), ASCII_DIGITS] = 100


async def list_notifications(request: web.Request) -> web.Response:
    params = parse_query(request, NotificationListQuery)
    items = await _service(request).deliveries(request[ORG], params.state, params.limit)
    return web.json_response({"items": [delivery_view(d) for d in items]})


NOTIFICATION_ROUTES: tuple[Route, ...] = (
    Route(
        "PUT",
        "/v1/notification-channels",
        put_channels,
        "Set the organisation's notification channels (secrets are write-only)",
        ChannelsBody,
        operation_id="setNotificationChannels",
        response=ChannelsView,
    ),
    Route(
        "GET",
        "/v1/notification-channels",
        get_channels,
        "The organisation's notification channels (without secrets)",
        operation_id="getNotificationChannels",
        response=ChannelsView,
    ),
    Route(
        "GET",
        "/v1/notifications",
        list_notifications,
        "Delivery state of the organisation's notifications, newest first",
        query=NotificationListQuery,
        operation_id="listNotifications",
        response=DeliveryList,
    ),
)
