"""The outbox and the organisations' notification channels on SQL.

`insert_messages` runs inside a write job's savepoint (see writer.py), so a notification is
queued in the same transaction as the change that causes it. `SqlOutbox` is what the delivery
worker and the admin API use: claiming due messages under a lease, recording the outcome of a
try (a delivery with its audit entry, in one transaction), escalations, listings and channels.

Claims are safe between workers and processes: on PostgreSQL the due rows are locked with
`FOR UPDATE SKIP LOCKED` and taken in one statement; on SQLite every write transaction holds
the database's write lock (BEGIN IMMEDIATE). A claimed row carries the claimer's `lease_token`
until `lease_until`; the outcome of a try is written only by the holder of the token, and a
row whose lease ran out (its worker died) is due again.

Channel secrets (the SMTP password, the webhook secret) are stored encrypted (AES-GCM, bound to
the organisation and channel), so a copy of the database alone does not give them away.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from gateway.adapters.sql.engine import Database
from gateway.adapters.sql.schema import notification_channels, outbox
from gateway.clock import from_us, to_us
from gateway.domain.audit import AuditEvent
from gateway.domain.outbox import (
    Channel,
    Channels,
    Delivery,
    DeliveryState,
    EmailChannel,
    Kind,
    OutboxMessage,
    Recipient,
    Retry,
    WebhookChannel,
)

if TYPE_CHECKING:
    from gateway.adapters.sql.writer import AuditedWriter, WriteTx


def insert_messages(conn: Connection, messages: Sequence[OutboxMessage]) -> None:
    """Queue messages in the caller's transaction. A webhook message for an organisation without
    a webhook is not queued (there is nobody to deliver it to); e-mail always is, so a missing
    e-mail channel shows as undelivered and escalates."""
    with_webhook: dict[str, bool] = {}
    rows = []
    for m in messages:
        if m.channel is Channel.WEBHOOK:
            if m.org_id not in with_webhook:
                with_webhook[m.org_id] = (
                    conn.scalar(
                        select(notification_channels.c.org_id).where(
                            notification_channels.c.org_id == m.org_id,
                            notification_channels.c.channel == Channel.WEBHOOK.value,
                        )
                    )
                    is not None
                )
            if not with_webhook[m.org_id]:
                continue
        at = to_us(m.created_at)
        rows.append(
            {
                "id": m.id,
                "notification_id": m.notification_id,
                "org_id": m.org_id,
                "kind": m.kind.value,
                "recipient": m.recipient.value,
                "channel": m.channel.value,
                "session_id": m.session_id,
                "incident_id": m.incident_id,
                "subject": m.subject,
                "body": m.body,
                "payload": json.dumps(m.payload, sort_keys=True),
                "state": DeliveryState.PENDING.value,
                "attempts": 0,
                "created_at": at,
                "next_attempt_at": at,
            }
        )
    if rows:
        conn.execute(insert(outbox), rows)


class SecretBox:
    """AES-GCM for channel secrets, under a key derived (HKDF) from a key of the key ring."""

    def __init__(self, master: bytes) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"notification-channel-secrets"
        ).derive(master)
        self._aead = AESGCM(key)

    def seal(self, secret: str | None, org_id: str, channel: Channel) -> str | None:
        if not secret:
            return None
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), f"{org_id}/{channel}".encode())
        return (nonce + sealed).hex()

    def open(self, stored: str | None, org_id: str, channel: Channel) -> str | None:
        if not stored:
            return None
        raw = bytes.fromhex(stored)
        try:
            plain = self._aead.decrypt(raw[:12], raw[12:], f"{org_id}/{channel}".encode())
        except InvalidTag:
            return None  # moved between organisations, or another key: unusable, not shown
        return plain.decode()


class SqlOutbox:
    def __init__(self, writer: AuditedWriter, database: Database, secret_key: bytes) -> None:
        self._writer = writer
        self._db = database
        self._box = SecretBox(secret_key)
        self._skip_locked = database.dialect == "postgresql"

    # the worker --------------------------------------------------------------------------
    async def claim(
        self, now: datetime, token: str, lease_until: datetime, limit: int
    ) -> list[Delivery]:
        """Take up to `limit` due messages for `lease_until`; each try counts from here, so a
        worker that dies mid-send still used one."""
        now_us = to_us(now)
        due = and_(
            outbox.c.state == DeliveryState.PENDING.value,
            outbox.c.next_attempt_at <= now_us,
            or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now_us),
        )

        def claim(conn: Connection) -> list[Delivery]:
            pick = select(outbox.c.id).where(due).order_by(outbox.c.next_attempt_at).limit(limit)
            if self._skip_locked:
                pick = pick.with_for_update(skip_locked=True)
            ids = list(conn.scalars(pick))
            if not ids:
                return []
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(ids), due)
                .values(
                    lease_token=token,
                    lease_until=to_us(lease_until),
                    attempts=outbox.c.attempts + 1,
                )
            )
            rows = conn.execute(
                select(outbox).where(outbox.c.id.in_(ids), outbox.c.lease_token == token)
            ).all()
            return [_delivery(row._mapping) for row in rows]

        return await self._db.write(claim)

    async def delivered(
        self, delivery: Delivery, token: str, at: datetime, event: AuditEvent
    ) -> bool:
        """Record that the channel accepted the message, with its audit entry. False when this
        worker no longer holds it (nothing recorded)."""

        def job(tx: WriteTx) -> bool:
            done = tx.conn.execute(
                update(outbox)
                .where(
                    outbox.c.id == delivery.message.id,
                    outbox.c.lease_token == token,
                    outbox.c.state == DeliveryState.PENDING.value,
                )
                .values(
                    state=DeliveryState.DELIVERED.value,
                    delivered_at=to_us(at),
                    last_error=None,
                    lease_token=None,
                    lease_until=None,
                )
            )
            if done.rowcount != 1:
                return False
            tx.audit(event)
            return True

        return await self._writer.write(job)

    async def tried(
        self, delivery: Delivery, token: str, retry: Retry, event: AuditEvent | None
    ) -> bool:
        """Record a failed try: when to try again, or failed for good (with `event`)."""

        def job(tx: WriteTx) -> bool:
            done = tx.conn.execute(
                update(outbox)
                .where(
                    outbox.c.id == delivery.message.id,
                    outbox.c.lease_token == token,
                    outbox.c.state == DeliveryState.PENDING.value,
                )
                .values(
                    state=retry.state.value,
                    next_attempt_at=to_us(retry.next_attempt_at),
                    last_error=retry.error,
                    lease_token=None,
                    lease_until=None,
                )
            )
            if done.rowcount != 1:
                return False
            if event is not None:
                tx.audit(event)
            return True

        return await self._writer.write(job)

    async def unescalated(self, limit: int = 200) -> list[Delivery]:
        """The DSL's messages not delivered and not escalated yet, oldest first."""
        query = (
            select(outbox)
            .where(
                outbox.c.recipient == Recipient.DSL.value,
                outbox.c.escalated_at.is_(None),
                outbox.c.state != DeliveryState.DELIVERED.value,
            )
            .order_by(outbox.c.created_at)
            .limit(limit)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [_delivery(row._mapping) for row in rows]

    async def escalate(
        self, delivery: Delivery, copy: OutboxMessage, at: datetime, event: AuditEvent
    ) -> bool:
        """Mark the DSL's message escalated and queue the second contact's copy, once."""

        def job(tx: WriteTx) -> bool:
            done = tx.conn.execute(
                update(outbox)
                .where(
                    outbox.c.id == delivery.message.id,
                    outbox.c.escalated_at.is_(None),
                    outbox.c.state != DeliveryState.DELIVERED.value,
                )
                .values(escalated_at=to_us(at))
            )
            if done.rowcount != 1:
                return False
            tx.notify(copy)
            tx.audit(event)
            return True

        return await self._writer.write(job)

    # the admin API -----------------------------------------------------------------------
    async def deliveries(
        self, org_id: str, state: DeliveryState | None, limit: int
    ) -> list[Delivery]:
        query = select(outbox).where(outbox.c.org_id == org_id)
        if state is not None:
            query = query.where(outbox.c.state == state.value)
        query = query.order_by(outbox.c.created_at.desc(), outbox.c.id).limit(limit)
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [_delivery(row._mapping) for row in rows]

    async def for_incident(self, org_id: str, incident_id: str) -> list[Delivery]:
        """Every message an incident caused, oldest first."""
        query = (
            select(outbox)
            .where(outbox.c.org_id == org_id, outbox.c.incident_id == incident_id)
            .order_by(outbox.c.created_at, outbox.c.id)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [_delivery(row._mapping) for row in rows]

    async def channels(self, org_id: str) -> Channels:
        def read(conn: Connection) -> Channels:
            rows = conn.execute(
                select(notification_channels).where(notification_channels.c.org_id == org_id)
            ).all()
            return _channels(rows, self._box)

        return await self._db.read(read)

    async def set_channels(
        self, org_id: str, channels: Channels, events: Sequence[AuditEvent]
    ) -> Channels:
        """Replace the organisation's channels. A secret left empty keeps the stored one."""

        def job(tx: WriteTx) -> Channels:
            where = notification_channels.c.org_id == org_id
            box = self._box
            stored = _channels(
                tx.conn.execute(select(notification_channels).where(where)).all(), box
            )
            tx.conn.execute(delete(notification_channels).where(where))
            email, webhook = channels.email, channels.webhook
            if email is not None:
                password = email.password
                if password is None and stored.email is not None:
                    password = stored.email.password
                settings = asdict(email)
                settings.pop("password")
                tx.conn.execute(
                    insert(notification_channels).values(
                        org_id=org_id,
                        channel=Channel.EMAIL.value,
                        settings=json.dumps(settings, sort_keys=True),
                        secret=box.seal(password, org_id, Channel.EMAIL),
                        updated_at=tx.at,
                    )
                )
            if webhook is not None:
                secret = webhook.secret or (stored.webhook.secret if stored.webhook else "")
                tx.conn.execute(
                    insert(notification_channels).values(
                        org_id=org_id,
                        channel=Channel.WEBHOOK.value,
                        settings=json.dumps({"url": webhook.url}),
                        secret=box.seal(secret, org_id, Channel.WEBHOOK),
                        updated_at=tx.at,
                    )
                )
            for event in events:
                tx.audit(event)
            return _channels(tx.conn.execute(select(notification_channels).where(where)).all(), box)

        return await self._writer.write(job)


def _channels(rows: Sequence[Any], box: SecretBox) -> Channels:
    email = webhook = None
    for row in rows:
        settings = json.loads(row.settings)
        if row.channel == Channel.EMAIL.value:
            password = box.open(row.secret, row.org_id, Channel.EMAIL)
            email = EmailChannel(**settings, password=password)
        elif row.channel == Channel.WEBHOOK.value:
            secret = box.open(row.secret, row.org_id, Channel.WEBHOOK) or ""
            webhook = WebhookChannel(url=settings["url"], secret=secret)
    return Channels(email=email, webhook=webhook)


def _delivery(m: Any) -> Delivery:
    return Delivery(
        message=OutboxMessage(
            id=m["id"],
            notification_id=m["notification_id"],
            org_id=m["org_id"],
            kind=Kind(m["kind"]),
            recipient=Recipient(m["recipient"]),
            channel=Channel(m["channel"]),
            subject=m["subject"],
            body=m["body"],
            payload=json.loads(m["payload"]),
            created_at=from_us(m["created_at"]),
            session_id=m["session_id"],
            incident_id=m["incident_id"],
        ),
        state=DeliveryState(m["state"]),
        attempts=m["attempts"],
        next_attempt_at=from_us(m["next_attempt_at"]),
        last_error=m["last_error"],
        delivered_at=from_us(m["delivered_at"]) if m["delivered_at"] is not None else None,
        escalated_at=from_us(m["escalated_at"]) if m["escalated_at"] is not None else None,
    )
