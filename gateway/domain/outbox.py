"""Notifications (DESIGN §3): what must be told to whom, and when to try, retry and escalate.

Whatever someone must be told (a concern, a supervision breach, a locked invite) becomes one
outbox message per recipient and channel, written in the same transaction as the event that
causes it. A worker delivers them; this module takes every decision it needs, as pure
functions of plain data and `now`:

- `concern_raised`, `supervision_breach`, `invite_locked`: the messages an event causes. They
  carry ids, times, a link and at most a masked display name; never a full name, an e-mail or a
  date of birth. The host is never told who raised a concern.
- `after_failure`: when to try again (exponential backoff with jitter, capped) or give up.
- `escalation_due`: a message for the DSL still undelivered after the policy's
  `escalate_after_minutes` (or failed for good) is also sent to the second contact.
- `webhook_signature`: the Standard Webhooks signature (`v1,<base64 HMAC-SHA256>` of
  "id.timestamp.body").

Addresses are not part of a message: the worker resolves a recipient (the DSL, the second
contact, the session's host) to an address from the organisation's channels when it delivers,
so a corrected address reaches messages still waiting.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

# Retry timing. The first retry comes after ~BASE, each later one doubles, never beyond CAP;
# jitter spreads retries of many messages so a server coming back is not hit all at once.
BACKOFF_BASE = timedelta(seconds=5)
BACKOFF_CAP = timedelta(minutes=15)
# A message not delivered within this long is failed for good (and visible as such); the DSL's
# messages are escalated long before.
GIVE_UP_AFTER = timedelta(days=3)
# How long a worker holds a claimed message. Longer than any send's deadline (SEND_DEADLINE),
# so a lease runs out only when its worker died: then another worker retries the message.
SEND_DEADLINE = timedelta(seconds=20)
LEASE = timedelta(seconds=60)
SUBJECT_MAX = 200
BODY_MAX = 4000


class Recipient(enum.StrEnum):
    DSL = "dsl"
    SECOND_CONTACT = "second_contact"
    HOST = "host"  # the session's host (a member of staff)
    ORG_SYSTEM = "org_system"  # the organisation's own system, through its webhook
    GUARDIAN = "guardian"  # a child's guardian (payload's guardian_id; address from the registry)


class Channel(enum.StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class Kind(enum.StrEnum):
    CONCERN_RAISED = "concern.raised"
    SUPERVISION_BREACH = "supervision.breach"
    INVITE_LOCKED = "invite.locked"
    DESTRUCTION_WAITING_FOR_DSL = "destruction_waiting_for_dsl"
    RECORDING_DESTROYED = "recording.destroyed"
    CONSENT_LINK = "consent.link"  # a guardian's personal consent link (branch consent)


# Error classes a channel reports: short words, never a server's reply text (which can quote
# addresses back).
NOT_CONFIGURED = "not_configured"
NO_ADDRESS = "no_address"
TIMEOUT = "timeout"
CONNECTION = "connection"
REJECTED = "rejected"  # permanent: the server refused this message for good
TEMPORARY = "temporary"  # the server asked to try later (SMTP 4xx, HTTP 5xx/429/408)
TLS = "tls"
GAVE_UP = "gave_up"
INTERNAL = "internal"  # the gateway's own fault (logged); tried again like any other
PERMANENT_ERRORS = frozenset({REJECTED})


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One message to one recipient over one channel. `notification_id` groups the messages one
    event caused; `id` is the idempotency key a receiver sees (the webhook-id)."""

    id: str
    notification_id: str
    org_id: str
    kind: Kind
    recipient: Recipient
    channel: Channel
    subject: str
    body: str  # plain text (e-mail)
    payload: Mapping[str, object]  # JSON (webhook)
    created_at: datetime
    session_id: str | None = None
    incident_id: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message's delivery state, as the worker and the admin API see it."""

    message: OutboxMessage
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None = None
    delivered_at: datetime | None = None
    escalated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    state: DeliveryState
    next_attempt_at: datetime
    error: str


@dataclass(frozen=True, slots=True)
class Event:
    """What happened, for the message builders: ids and times only, plus a link."""

    org_id: str
    notification_id: str
    at: datetime
    link: str
    session_id: str | None = None
    incident_id: str | None = None
    ids: Sequence[str] = field(default_factory=tuple)  # one fresh id per message, in order


def backoff(attempts: int, jitter: float) -> timedelta:
    """The wait before the next try after `attempts` failed ones: "equal jitter" (half the
    exponential delay, plus a random part of the other half). `jitter` is in [0, 1)."""
    if attempts < 1:
        raise ValueError("attempts start at 1")
    if not 0.0 <= jitter < 1.0:
        raise ValueError("jitter is in [0, 1)")
    exponent = min(attempts - 1, 20)
    delay: timedelta = min(BACKOFF_BASE * (2**exponent), BACKOFF_CAP)
    half: timedelta = delay / 2
    return half + half * jitter


def after_failure(
    attempts: int, created_at: datetime, now: datetime, error: str, jitter: float
) -> Retry:
    """What becomes of a message whose try number `attempts` failed with `error`."""
    if error in PERMANENT_ERRORS:
        return Retry(DeliveryState.FAILED, now, error)
    if now - created_at >= GIVE_UP_AFTER:
        return Retry(DeliveryState.FAILED, now, GAVE_UP)
    return Retry(DeliveryState.PENDING, now + backoff(attempts, jitter), error)


def escalation_due(
    delivery: Delivery, now: datetime, escalate_after: timedelta, has_second_contact: bool
) -> bool:
    """Send a DSL's message to the second contact too? Once, when it is still not delivered
    after `escalate_after`, or has failed for good, and there is someone to escalate to."""
    message = delivery.message
    return (
        has_second_contact
        and message.recipient is Recipient.DSL
        and delivery.escalated_at is None
        and delivery.state is not DeliveryState.DELIVERED
        and (delivery.state is DeliveryState.FAILED or now - message.created_at >= escalate_after)
    )


def escalated(
    message: OutboxMessage, new_id: str, now: datetime, overdue: timedelta
) -> OutboxMessage:
    """The second contact's copy of a DSL's message: the same facts, saying why it came."""
    minutes = int(overdue.total_seconds() // 60)
    note = (
        "You are receiving this because the designated safeguarding lead has not been reached "
        f"for {minutes} minutes. Please make sure it is acted on.\n\n"
    )
    return replace(
        message,
        id=new_id,
        recipient=Recipient.SECOND_CONTACT,
        channel=Channel.EMAIL,
        subject=_clip("Escalated: " + message.subject, SUBJECT_MAX),
        body=_clip(note + message.body, BODY_MAX),
        payload={**message.payload, "escalated": True},
        created_at=now,
    )


# Message content ---------------------------------------------------------------------------


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _messages(
    event: Event,
    kind: Kind,
    subject: str,
    bodies: Sequence[tuple[Recipient, str]],
    data: Mapping[str, object],
) -> list[OutboxMessage]:
    recipients = [*bodies, (Recipient.ORG_SYSTEM, "")]
    if len(event.ids) < len(recipients):
        raise ValueError(f"{len(recipients)} message ids are needed")
    payload = {
        "type": kind.value,
        "timestamp": event.at.isoformat(),
        "data": {
            "notification_id": event.notification_id,
            "session_id": event.session_id,
            "incident_id": event.incident_id,
            "occurred_at": event.at.isoformat(),
            "link": event.link,
            **data,
        },
    }
    return [
        OutboxMessage(
            id=message_id,
            notification_id=event.notification_id,
            org_id=event.org_id,
            kind=kind,
            recipient=recipient,
            channel=Channel.WEBHOOK if recipient is Recipient.ORG_SYSTEM else Channel.EMAIL,
            subject=_clip(subject, SUBJECT_MAX),
            body=_clip(body, BODY_MAX),
            payload=payload,
            created_at=event.at,
            session_id=event.session_id,
            incident_id=event.incident_id,
        )
        for message_id, (recipient, body) in zip(event.ids, recipients, strict=False)
    ]


def concern_raised(event: Event, reporter_display_name: str) -> list[OutboxMessage]:
    """A concern reported in a session (R17): to the DSL (with the reporter's masked display
    name: the DSL may know who asked for help) and the organisation's webhook (ids only)."""
    body = (
        "A concern was raised in a live session.\n\n"
        f"When: {_stamp(event.at)}\n"
        f"Session: {event.session_id}\n"
        f"Incident: {event.incident_id}\n"
        f"Raised by: {reporter_display_name} (as shown in the session)\n\n"
        f"Open the incident: {event.link}\n\n"
        "The gateway has recorded the incident. Please follow your safeguarding procedure.\n"
    )
    return _messages(
        event, Kind.CONCERN_RAISED, "Safeguarding concern raised", [(Recipient.DSL, body)], {}
    )


def supervision_breach(event: Event, what_gateway_did: Sequence[str]) -> list[OutboxMessage]:
    """Fewer vetted adults than the policy requires, with children present (R4)."""
    did = ", ".join(action.replace("_", " ") for action in what_gateway_did) or "nothing yet"
    body = (
        "A live session was left without the supervision the policy requires.\n\n"
        f"When: {_stamp(event.at)}\n"
        f"Session: {event.session_id}\n"
        f"Incident: {event.incident_id}\n"
        f"What the gateway did: {did}\n\n"
        f"Open the incident: {event.link}\n"
    )
    return _messages(
        event,
        Kind.SUPERVISION_BREACH,
        "Supervision breach in a live session",
        [(Recipient.DSL, body)],
        {"what_gateway_did": list(what_gateway_did)},
    )


def invite_locked(event: Event, participant_display_name: str) -> list[OutboxMessage]:
    """A personal invite locked after too many wrong passwords (R1): to the host, who may be
    waiting for that person, and the DSL (someone may be trying another's link)."""
    body = (
        "A personal invite was locked after too many wrong session passwords.\n\n"
        f"When: {_stamp(event.at)}\n"
        f"Session: {event.session_id}\n"
        f"Invite of: {participant_display_name} (as shown in the session)\n\n"
        "If that person is expected, check they have the right password; otherwise someone "
        f"else may have their link. Details: {event.link}\n"
    )
    return _messages(
        event,
        Kind.INVITE_LOCKED,
        "Invite locked after wrong passwords",
        [(Recipient.HOST, body), (Recipient.DSL, body)],
        {},
    )


# Webhook signature (Standard Webhooks) ------------------------------------------------------


def webhook_body(message: OutboxMessage) -> bytes:
    return json.dumps(
        {"id": message.id, **message.payload}, separators=(",", ":"), sort_keys=True
    ).encode()


def webhook_signature(secret: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`: the `webhook-signature` header."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(
    secret: bytes, message: OutboxMessage, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "webhook-id": message.id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": webhook_signature(secret, message.id, timestamp, body),
        "Content-Type": "application/json",
    }


def webhook_secret_bytes(secret: str) -> bytes:
    """Standard Webhooks secrets are `whsec_<base64>`; any other string is used as it is."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


# An organisation's channels ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmailChannel:
    host: str
    port: int
    security: str  # "starttls" | "tls" | "none" (loopback relays only)
    from_address: str
    dsl_address: str
    second_contact_address: str | None = None
    username: str | None = None
    password: str | None = None  # write-only: never shown by the API


@dataclass(frozen=True, slots=True)
class WebhookChannel:
    url: str
    secret: str  # write-only


@dataclass(frozen=True, slots=True)
class Channels:
    email: EmailChannel | None = None
    webhook: WebhookChannel | None = None


def second_contact(channels: Channels, policy_second_contact: str | None) -> str | None:
    """Who escalations go to: the e-mail channel's own setting, else the written policy's."""
    if channels.email is not None and channels.email.second_contact_address:
        return channels.email.second_contact_address
    return policy_second_contact


@dataclass(frozen=True, slots=True)
class DslNotice:
    """Whether the DSL has been told of an incident: queued, delivered (when), escalated
    (when). What incident views say, instead of a word recorded when the incident was opened
    (nothing says "told" before a mail server accepted the DSL's message)."""

    queued: bool
    delivered_at: datetime | None
    escalated_at: datetime | None


def dsl_notice(deliveries: Sequence[Delivery]) -> DslNotice:
    """Told means the DSL's own e-mail was accepted by the mail server (the same test
    escalation uses: a webhook reaches a system, not the DSL)."""
    mine = [d for d in deliveries if d.message.recipient is Recipient.DSL]
    delivered = [d.delivered_at for d in mine if d.delivered_at is not None]
    escalated_at = [d.escalated_at for d in mine if d.escalated_at is not None]
    return DslNotice(
        queued=bool(mine),
        delivered_at=min(delivered) if delivered else None,
        escalated_at=min(escalated_at) if escalated_at else None,
    )


class DeliveryFailed(Exception):
    """A channel did not accept a message: `error` is one of the error classes above (no server
    text, no address)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _pair(
    org_id: str,
    kind: Kind,
    recipient: Recipient,
    subject: str,
    body: str,
    data: Mapping[str, object],
    at: datetime,
    ids: tuple[str, str],
) -> list[OutboxMessage]:
    """One e-mail to `recipient` and the organisation's webhook (ids only), one notification."""
    payload = {"type": kind.value, "timestamp": at.isoformat(), "data": dict(data)}
    return [
        OutboxMessage(
            id=message_id,
            notification_id=ids[0],
            org_id=org_id,
            kind=kind,
            recipient=to,
            channel=Channel.WEBHOOK if to is Recipient.ORG_SYSTEM else Channel.EMAIL,
            subject=_clip(subject, SUBJECT_MAX),
            body=_clip(body, BODY_MAX) if to is not Recipient.ORG_SYSTEM else "",
            payload=payload,
            created_at=at,
        )
        for message_id, to in zip(ids, (recipient, Recipient.ORG_SYSTEM), strict=True)
    ]


def destruction_waiting_for_dsl(
    *, org_id: str, recording_ids: Sequence[str], at: datetime, link: str, ids: tuple[str, str]
) -> list[OutboxMessage]:
    """A consent was withdrawn for recordings under a safeguarding hold: the DSL decides
    (lift the hold and they are destroyed, or keep it)."""
    body = (
        "A consent was withdrawn for recordings that are under a safeguarding hold.\n\n"
        f"When: {_stamp(at)}\n"
        f"Recordings: {', '.join(recording_ids)}\n\n"
        "They are kept while the hold stands. Lift the hold to have them destroyed, or keep it"
        f" and record why: {link}\n"
    )
    return _pair(
        org_id,
        Kind.DESTRUCTION_WAITING_FOR_DSL,
        Recipient.DSL,
        "Recordings under hold: a consent was withdrawn",
        body,
        {"recordings": list(recording_ids), "occurred_at": at.isoformat()},
        at,
        ids,
    )


def recording_destroyed(
    *, org_id: str, guardian_id: str, recording_id: str, at: datetime, ids: tuple[str, str]
) -> list[OutboxMessage]:
    """The confirmation a guardian receives once a recording is destroyed after their
    withdrawal (key, file and record)."""
    body = (
        "You withdrew your consent to recording. A recording that included your child has now"
        " been destroyed: its encryption key and its file are gone for good, and the"
        " organisation keeps a record that this was done.\n\n"
        f"When: {_stamp(at)}\n"
        f"Recording reference: {recording_id}\n"
    )
    return _pair(
        org_id,
        Kind.RECORDING_DESTROYED,
        Recipient.GUARDIAN,
        "A recording has been destroyed",
        body,
        {"recording": recording_id, "guardian_id": guardian_id, "occurred_at": at.isoformat()},
        at,
        ids,
    )


# Where the guardian's link goes in a consent-link e-mail: the token is made from the link's
# id when the message is sent (adapters/consent_link_mail.py), so the outbox never holds it.
CONSENT_LINK_PLACEHOLDER = "[[consent-link]]"


def consent_link(
    *,
    org_id: str,
    organisation_name: str,
    guardian_id: str,
    link_id: str,
    expires_at: datetime,
    at: datetime,
    message_id: str,
) -> OutboxMessage:
    """A guardian's personal consent link, by e-mail only (the webhook is not told: the
    message is about one family, not an event the organisation's system acts on)."""
    body = (
        f"{organisation_name} asks for your consent online.\n\n"
        "The page explains, in plain words, what we would record, who may see it, how long it "
        "is kept and how to withdraw, and lets you give or withdraw consent for each of your "
        "children. Children old enough to be asked can agree on the same page.\n\n"
        f"Your personal link (do not pass it on): {CONSENT_LINK_PLACEHOLDER}\n\n"
        f"It works until {_stamp(expires_at)}, on the first device you open it on. You can "
        "come back to the same page on that device to see what you agreed to or to withdraw "
        "at any time. If it has run out, ask us for a new one.\n"
    )
    return OutboxMessage(
        id=message_id,
        notification_id=message_id,
        org_id=org_id,
        kind=Kind.CONSENT_LINK,
        recipient=Recipient.GUARDIAN,
        channel=Channel.EMAIL,
        subject=_clip(f"{organisation_name}: your consent link", SUBJECT_MAX),
        body=_clip(body, BODY_MAX),
        payload={
            "type": Kind.CONSENT_LINK.value,
            "timestamp": at.isoformat(),
            "data": {
                "guardian_id": guardian_id,
                "link_id": link_id,
                "expires_at": expires_at.isoformat(),
            },
        },
        created_at=at,
    )
