"""Notifications (DESIGN §3): the outbox's port for the rest of the gateway, its delivery
worker, and the admin's view of channels and delivery state.

For callers: build the messages an event causes (`concern_raised`, `supervision_breach`,
`invite_locked`) and commit them with the event's own change: pass them to the store's write
(`AuditedWriter.write(job, messages=...)`, or `tx.notify(...)` inside a job), or, for an event
that is only audited, `enqueue(messages, events)`. Nothing is sent before that commit, and
nothing is recorded as told before a channel accepted it: `notification.delivered` is audited
by the worker after delivery.

The worker (`deliver_due`, run periodically by one process at a time under the leader lease)
escalates what is overdue, claims due messages under a lease, sends each with a deadline, and
records the outcome. The decisions are `gateway.domain.outbox`'s.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from gateway.clock import Clock
from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.models import Guardian, Person, PersonKind, Session, Staff
from gateway.domain.outbox import (
    INTERNAL,
    LEASE,
    NO_ADDRESS,
    NOT_CONFIGURED,
    SEND_DEADLINE,
    Channel,
    Channels,
    Delivery,
    DeliveryFailed,
    DeliveryState,
    DslNotice,
    EmailChannel,
    Event,
    OutboxMessage,
    Recipient,
    Retry,
    WebhookChannel,
    after_failure,
    concern_raised,
    dsl_notice,
    escalated,
    escalation_due,
    invite_locked,
    second_contact,
    supervision_breach,
)
from gateway.domain.policy import Policy
from gateway.services.organisations import new_id
from gateway.services.ports import Organisation

LIST_LIMIT = 500
log = logging.getLogger(__name__)
SYSTEM_ACTOR = "gateway:notifications"


class OutboxStore(Protocol):
    async def claim(
        self, now: datetime, token: str, lease_until: datetime, limit: int
    ) -> list[Delivery]: ...
    async def delivered(
        self, delivery: Delivery, token: str, at: datetime, event: AuditEvent
    ) -> bool: ...
    async def tried(
        self, delivery: Delivery, token: str, retry: Retry, event: AuditEvent | None
    ) -> bool: ...
    async def unescalated(self, limit: int = 200) -> list[Delivery]: ...
    async def escalate(
        self, delivery: Delivery, copy: OutboxMessage, at: datetime, event: AuditEvent
    ) -> bool: ...
    async def deliveries(
        self, org_id: str, state: DeliveryState | None, limit: int
    ) -> list[Delivery]: ...
    async def for_incident(self, org_id: str, incident_id: str) -> list[Delivery]: ...
    async def channels(self, org_id: str) -> Channels: ...
    async def set_channels(
        self, org_id: str, channels: Channels, events: Sequence[AuditEvent]
    ) -> Channels: ...


class Directory(Protocol):
    """What the worker reads to resolve recipients (the `Store` port provides it)."""

    async def organisation(self, org_id: str) -> Organisation | None: ...
    async def session(self, org_id: str, session_id: str) -> Session | None: ...
    async def person(self, org_id: str, kind: PersonKind, person_id: str) -> Person | None: ...
    async def record(
        self, events: Sequence[AuditEvent], messages: Sequence[OutboxMessage] = ()
    ) -> None: ...


class PolicyFor(Protocol):
    def for_path(self, path: str | None) -> Policy: ...


class EmailSender(Protocol):
    async def send(
        self, channel: EmailChannel, to: str, message: OutboxMessage, deadline: float
    ) -> None: ...


class WebhookPoster(Protocol):
    async def send(
        self, channel: WebhookChannel, message: OutboxMessage, timestamp: int, deadline: float
    ) -> None: ...


class Notifications:
    def __init__(
        self,
        outbox: OutboxStore,
        directory: Directory,
        policies: PolicyFor,
        email: EmailSender,
        webhook: WebhookPoster,
        clock: Clock,
        *,
        link_base: str,
        jitter: Callable[[], float] | None = None,
        batch: int = 50,
        concurrency: int = 16,
        send_deadline: timedelta = SEND_DEADLINE,
    ) -> None:
        self._outbox = outbox
        self._directory = directory
        self._policies = policies
        self._email = email
        self._webhook = webhook
        self._clock = clock
        self._link_base = link_base.rstrip("/")
        self._jitter = jitter or secrets.SystemRandom().random
        self._batch = batch
        self._sending = asyncio.Semaphore(concurrency)
        self._deadline = send_deadline

    # the port: messages an event causes ---------------------------------------------------
    def incident_link(self, incident_id: str) -> str:
        """The incident on the DSL's desk (the staff pages): opened in a browser, behind the
        DSL's own sign-in (an API path would need an integration's key)."""
        return f"{self._link_base}/staff/incidents/{incident_id}"

    def _event(
        self, org_id: str, session_id: str | None, incident_id: str | None, count: int
    ) -> Event:
        link = self.incident_link(incident_id) if incident_id else f"{self._link_base}/staff"
        return Event(
            org_id=org_id,
            notification_id=new_id(),
            at=self._clock.now(),
            link=link,
            session_id=session_id,
            incident_id=incident_id,
            ids=tuple(new_id() for _ in range(count)),
        )

    def concern_raised(
        self, org_id: str, session_id: str, incident_id: str, reporter_display_name: str
    ) -> list[OutboxMessage]:
        event = self._event(org_id, session_id, incident_id, 2)
        return concern_raised(event, reporter_display_name)

    def supervision_breach(
        self, org_id: str, session_id: str, incident_id: str, what_gateway_did: Sequence[str]
    ) -> list[OutboxMessage]:
        event = self._event(org_id, session_id, incident_id, 2)
        return supervision_breach(event, what_gateway_did)

    def invite_locked(
        self, org_id: str, session_id: str, participant_display_name: str
    ) -> list[OutboxMessage]:
        event = self._event(org_id, session_id, None, 3)
        return invite_locked(event, participant_display_name)

    async def enqueue(
        self, messages: Sequence[OutboxMessage], events: Sequence[AuditEvent]
    ) -> None:
        """Queue `messages` in the same transaction as `events` (for an event whose only other
        record is its audit entry; a change of its own passes its messages to its write)."""
        await self._directory.record(events, messages)

    # the worker ---------------------------------------------------------------------------
    async def deliver_due(self) -> int:
        """One round: escalate what is overdue, then deliver what is due, batch after batch
        while batches come back full. Returns how many messages were delivered."""
        await self.escalate_overdue()
        delivered = 0
        while True:
            now = self._clock.now()
            token = secrets.token_hex(16)
            claimed = await self._outbox.claim(now, token, now + LEASE, self._batch)
            channels: dict[str, asyncio.Task[Channels]] = {}  # read once per organisation
            results = await asyncio.gather(*(self._deliver(d, token, channels) for d in claimed))
            delivered += sum(results)
            if len(claimed) < self._batch:
                return delivered

    async def escalate_overdue(self) -> int:
        now = self._clock.now()
        count = 0
        # (escalate after, has a second contact) per organisation, read once per round
        rules: dict[str, tuple[timedelta, bool] | None] = {}
        for delivery in await self._outbox.unescalated():
            message = delivery.message
            if message.org_id not in rules:
                rules[message.org_id] = await self._escalation_rule(message.org_id)
            rule = rules[message.org_id]
            if rule is None or not escalation_due(delivery, now, *rule):
                continue
            copy = escalated(message, new_id(), now, now - message.created_at)
            event = AuditEvent(
                "notification.escalated",
                SYSTEM_ACTOR,
                message.org_id,
                session_id=message.session_id,
                data={
                    "notification": message.notification_id,
                    "message": message.id,
                    "escalation": copy.id,
                    "kind": message.kind.value,
                    "state": delivery.state.value,
                    "last_error": delivery.last_error,
                },
            )
            if await self._outbox.escalate(delivery, copy, now, event):
                count += 1
        return count

    async def _escalation_rule(self, org_id: str) -> tuple[timedelta, bool] | None:
        policy = await self._policy(org_id)
        if policy is None:
            return None
        channels = await self._outbox.channels(org_id)
        after = timedelta(minutes=policy.contact.escalate_after_minutes)
        return after, second_contact(channels, policy.contact.second_contact) is not None

    async def _deliver(
        self, delivery: Delivery, token: str, channels: dict[str, asyncio.Task[Channels]]
    ) -> bool:
        message = delivery.message
        async with self._sending:
            try:
                if message.org_id not in channels:
                    channels[message.org_id] = asyncio.ensure_future(
                        self._outbox.channels(message.org_id)
                    )
                await self._send(message, await channels[message.org_id])
            except Exception as exc:  # a channel's fault or ours: tried again, never lost
                error = exc.error if isinstance(exc, DeliveryFailed) else INTERNAL
                if error == INTERNAL:
                    log.exception("notification %s could not be sent", message.id)
                now = self._clock.now()
                retry = after_failure(
                    delivery.attempts, message.created_at, now, error, self._jitter()
                )
                event = None
                if retry.state is DeliveryState.FAILED:
                    event = self._event_for("notification.failed", delivery, retry.error)
                await self._outbox.tried(delivery, token, retry, event)
                return False
        event = self._event_for("notification.delivered", delivery, None)
        return await self._outbox.delivered(delivery, token, self._clock.now(), event)

    async def _send(self, message: OutboxMessage, channels: Channels) -> None:
        deadline = self._deadline.total_seconds()
        if message.channel is Channel.WEBHOOK:
            if channels.webhook is None:
                raise DeliveryFailed(NOT_CONFIGURED)
            timestamp = int(self._clock.now().timestamp())
            await self._webhook.send(channels.webhook, message, timestamp, deadline)
            return
        if channels.email is None:
            raise DeliveryFailed(NOT_CONFIGURED)
        to = await self._address(message, channels)
        if to is None:
            raise DeliveryFailed(NO_ADDRESS)
        await self._email.send(channels.email, to, message, deadline)

    async def _address(self, message: OutboxMessage, channels: Channels) -> str | None:
        """Where a recipient's e-mail goes, looked up now (a corrected address applies to
        messages still waiting)."""
        assert channels.email is not None
        if message.recipient is Recipient.DSL:
            return channels.email.dsl_address
        if message.recipient is Recipient.SECOND_CONTACT:
            policy = await self._policy(message.org_id)
            written = policy.contact.second_contact if policy else None
            return second_contact(channels, written)
        if message.recipient is Recipient.HOST and message.session_id is not None:
            session = await self._directory.session(message.org_id, message.session_id)
            if session is None:
                return None
            host = await self._directory.person(
                message.org_id, PersonKind.STAFF, session.host_staff_id
            )
            return host.email if isinstance(host, Staff) else None
        if message.recipient is Recipient.GUARDIAN:
            data = message.payload.get("data")
            guardian_id = data.get("guardian_id") if isinstance(data, dict) else None
            if not isinstance(guardian_id, str):
                return None
            guardian = await self._directory.person(
                message.org_id, PersonKind.GUARDIAN, guardian_id
            )
            return guardian.contact if isinstance(guardian, Guardian) and guardian.contact else None
        return None

    async def _policy(self, org_id: str) -> Policy | None:
        org = await self._directory.organisation(org_id)
        if org is None:
            return None
        try:
            return self._policies.for_path(org.policy_path)
        except Refusal:
            return None

    @staticmethod
    def _event_for(kind: str, delivery: Delivery, error: str | None) -> AuditEvent:
        """Ids, channel and outcome only: no address, no content."""
        message = delivery.message
        data: dict[str, object] = {
            "notification": message.notification_id,
            "message": message.id,
            "kind": message.kind.value,
            "recipient": message.recipient.value,
            "channel": message.channel.value,
            "attempts": delivery.attempts,
        }
        if message.incident_id is not None:
            data["incident"] = message.incident_id
        if error is not None:
            data["error"] = error
        return AuditEvent(
            kind, SYSTEM_ACTOR, message.org_id, session_id=message.session_id, data=data
        )

    async def dsl_notice(self, org_id: str, incident_id: str) -> DslNotice:
        return dsl_notice(await self._outbox.for_incident(org_id, incident_id))

    # the admin API ------------------------------------------------------------------------
    async def deliveries(
        self, org: Organisation, state: DeliveryState | None, limit: int = 100
    ) -> list[Delivery]:
        if not 1 <= limit <= LIST_LIMIT:
            raise Refusal(ErrorCode.QUERY_INVALID, f"limit is 1 to {LIST_LIMIT}.")
        return await self._outbox.deliveries(org.id, state, limit)

    async def channels(self, org: Organisation) -> Channels:
        return await self._outbox.channels(org.id)

    async def set_channels(self, org: Organisation, channels: Channels, actor: str) -> Channels:
        stored = await self._outbox.channels(org.id)
        if (
            channels.webhook is not None
            and not channels.webhook.secret
            and (stored.webhook is None or not stored.webhook.secret)
        ):
            raise Refusal(ErrorCode.BODY_INVALID, "A new webhook needs a secret.")
        event = AuditEvent(
            "notification.channels_set",
            actor,
            org.id,
            data={"email": channels.email is not None, "webhook": channels.webhook is not None},
        )
        return await self._outbox.set_channels(org.id, channels, [event])
