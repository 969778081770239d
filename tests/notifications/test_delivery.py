"""Delivery from the outbox to real channels: an SMTP server and a webhook receiver on
loopback, on SQLite and PostgreSQL, with the clock moved by hand (an hour-long outage takes no
time). What a DSL would notice: the concern arrives, once, after an outage too; when it cannot
arrive in time the second contact hears of it; nothing is said to be delivered before it was."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from sqlalchemy import func, select

from gateway.adapters.sql.schema import outbox
from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.outbox import DeliveryState, Recipient
from gateway.services.ports import AuditQuery
from tests.notifications.conftest import DEPUTY, DSL, Hook, World, configure
from tests.notifications.receivers import SmtpServer

SESSION = "a" * 32
INCIDENT = "b" * 32


def concern(world: World) -> list:  # type: ignore[type-arg]
    return world.runtime.notifications.concern_raised(world.org.id, SESSION, INCIDENT, "Sam R.")


def cause(world: World) -> AuditEvent:
    return AuditEvent("incident.opened", "test", world.org.id, data={"incident": INCIDENT})


async def audit(world: World, kind: str) -> list:  # type: ignore[type-arg]
    return list(await world.runtime.store.audit_entries(AuditQuery(org_id=world.org.id, kind=kind)))


async def states(world: World) -> dict[str, list[str]]:
    items = await world.runtime.notifications.deliveries(world.org, None, 100)
    found: dict[str, list[str]] = {}
    for item in items:
        found.setdefault(item.message.recipient.value, []).append(item.state.value)
    return found


async def test_a_concern_reaches_the_dsl_by_email_with_no_personal_data(
    world: World, smtp_server: SmtpServer
) -> None:
    await configure(world, smtp_server)
    await world.runtime.notifications.enqueue(concern(world), [cause(world)])
    assert smtp_server.received == []  # queued, not sent: the worker sends
    assert await audit(world, "notification.delivered") == []

    assert await world.runtime.notifications.deliver_due() == 1

    [mail] = smtp_server.to(DSL)
    text = mail.text
    assert mail.mail["Subject"] == "Safeguarding concern raised"
    assert INCIDENT in text and SESSION in text and "2026-11-23 10:00 UTC" in text
    assert f"https://gateway.example.org/staff/incidents/{INCIDENT}" in text
    assert "Sam R." in text  # the masked display name, for the DSL only
    [entry] = await audit(world, "notification.delivered")
    assert entry.data["channel"] == "email" and entry.data["recipient"] == "dsl"
    assert DSL not in str(entry.data) and "Sam" not in str(entry.data)
    assert await states(world) == {"dsl": ["delivered"]}  # no webhook configured: none queued
    # Delivered is delivered: the next rounds send nothing again.
    assert await world.runtime.notifications.deliver_due() == 0
    assert len(smtp_server.received) == 1


async def test_a_refused_change_queues_no_notification(world: World) -> None:
    def job(tx: object) -> None:
        raise Refusal(ErrorCode.CONFLICT, "no")

    messages = concern(world)
    with contextlib.suppress(Refusal):
        await world.runtime.store.writer.write(job, messages=messages)  # type: ignore[arg-type]
    count = await world.runtime.store._db.read(
        lambda conn: conn.scalar(select(func.count()).select_from(outbox))
    )
    assert count == 0


async def test_smtp_down_for_an_hour_then_back_nothing_lost_and_escalated(
    world: World, smtp_server: SmtpServer
) -> None:
    notifications = world.runtime.notifications
    await configure(world, smtp_server)
    smtp_server.stop()
    await notifications.enqueue(concern(world), [cause(world)])
    # An hour of tries against a server that is down, a round every minute.
    for _ in range(60):
        await notifications.deliver_due()
        world.clock.advance(timedelta(minutes=1))
    [dsl] = [
        d
        for d in await notifications.deliveries(world.org, None, 10)
        if d.message.recipient is Recipient.DSL
    ]
    assert dsl.state is DeliveryState.PENDING and dsl.last_error == "connection"
    assert dsl.attempts > 3 and dsl.escalated_at is not None
    [escalation] = await audit(world, "notification.escalated")
    assert (
        escalation.data["message"] == dsl.message.id
        and escalation.data["last_error"] == "connection"
    )
    assert await audit(world, "notification.delivered") == []  # nobody told yet, none claimed

    smtp_server.start()
    world.clock.advance(timedelta(minutes=16))  # past the longest backoff
    await notifications.deliver_due()

    assert len(smtp_server.to(DSL)) == 1
    [deputy] = smtp_server.to(DEPUTY)
    assert deputy.mail["Subject"].startswith("Escalated: ")
    assert "not been reached for 30 minutes" in deputy.text
    assert await states(world) == {"dsl": ["delivered"], "second_contact": ["delivered"]}
    assert len(await audit(world, "notification.delivered")) == 2
    # Escalated once only.
    world.clock.advance(timedelta(hours=2))
    await notifications.deliver_due()
    assert len(await audit(world, "notification.escalated")) == 1


async def test_webhook_answering_500_then_200_is_delivered_once(
    world: World, smtp_server: SmtpServer, webhook: Hook
) -> None:
    notifications = world.runtime.notifications
    await configure(world, smtp_server, webhook)
    webhook.receiver.fail_first = 2
    await notifications.enqueue(concern(world), [cause(world)])
    for _ in range(5):
        await notifications.deliver_due()
        world.clock.advance(timedelta(minutes=1))

    hook = webhook.receiver
    assert hook.bad_signatures == 0 and hook.requests == 3 and hook.duplicates == 0
    [(msg_id, body)] = hook.accepted.items()
    assert body["id"] == msg_id and body["type"] == "concern.raised"
    assert body["data"]["incident_id"] == INCIDENT
    assert "Sam" not in str(body)  # webhooks carry ids only
    assert await states(world) == {"dsl": ["delivered"], "org_system": ["delivered"]}
    [item] = [
        d
        for d in await notifications.deliveries(world.org, DeliveryState.DELIVERED, 10)
        if d.message.id == msg_id
    ]
    assert item.attempts == 3


async def test_a_forged_signature_is_told_apart(webhook: Hook) -> None:
    """The receiver under test really checks: a wrong secret is refused (so the test above
    could fail)."""
    import aiohttp

    from gateway.domain.outbox import webhook_headers

    async with aiohttp.ClientSession() as http:
        body = b'{"id":"x"}'
        from tests.notifications.test_delivery import _fake_message

        headers = webhook_headers(b"wrong secret", _fake_message(), 1, body)
        async with http.post(webhook.url, data=body, headers=headers) as response:
            assert response.status == 401
    assert webhook.receiver.bad_signatures == 1


def _fake_message():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from gateway.domain.outbox import Channel, Kind, OutboxMessage

    return OutboxMessage(
        "x",
        "n",
        "o",
        Kind.CONCERN_RAISED,
        Recipient.ORG_SYSTEM,
        Channel.WEBHOOK,
        "s",
        "b",
        {},
        datetime(2026, 1, 1, tzinfo=UTC),
    )


async def test_a_worker_that_died_mid_send_is_taken_over_after_its_lease(
    world: World, smtp_server: SmtpServer
) -> None:
    await configure(world, smtp_server)
    await world.runtime.notifications.enqueue(concern(world), [cause(world)])
    sql = world.runtime.notifications._outbox
    now = world.clock.now()
    [claimed] = await sql.claim(now, "dead-worker", now + timedelta(seconds=60), 10)
    # Its lease holds: no other worker takes it.
    assert await world.runtime.notifications.deliver_due() == 0
    world.clock.advance(timedelta(seconds=61))
    assert await world.runtime.notifications.deliver_due() == 1
    assert len(smtp_server.to(DSL)) == 1
    # The dead worker's late word is not taken: it no longer holds the message.
    event = AuditEvent("notification.delivered", "test", world.org.id)
    assert not await sql.delivered(claimed, "dead-worker", now, event)


async def test_no_email_channel_shows_as_not_configured_and_escalates(world: World) -> None:
    notifications = world.runtime.notifications
    await notifications.enqueue(concern(world), [cause(world)])
    await notifications.deliver_due()
    [item] = await notifications.deliveries(world.org, DeliveryState.PENDING, 10)
    assert item.last_error == "not_configured" and item.attempts == 1
    world.clock.advance(timedelta(minutes=31))
    await notifications.deliver_due()
    assert len(await audit(world, "notification.escalated")) == 1


async def test_many_concerns_each_delivered_once(world: World, smtp_server: SmtpServer) -> None:
    await configure(world, smtp_server)
    notifications = world.runtime.notifications
    await asyncio.gather(
        *(notifications.enqueue(concern(world), [cause(world)]) for _ in range(120))
    )
    assert await notifications.deliver_due() == 120
    ids = [r.mail["Message-ID"] for r in smtp_server.received]
    assert len(ids) == len(set(ids)) == 120


async def test_a_refused_dsl_address_fails_for_good_and_escalates_at_once(
    world: World, smtp_server: SmtpServer
) -> None:
    notifications = world.runtime.notifications
    await configure(world, smtp_server)
    smtp_server.handler.refuse.add(DSL)
    await notifications.enqueue(concern(world), [cause(world)])
    await notifications.deliver_due()  # the DSL's mail is refused (550): failed for good
    [failed] = await notifications.deliveries(world.org, DeliveryState.FAILED, 10)
    assert failed.last_error == "rejected" and failed.attempts == 1
    [entry] = await audit(world, "notification.failed")
    assert entry.data["error"] == "rejected" and DSL not in str(entry.data)
    await notifications.deliver_due()  # no need to wait 30 minutes: escalated now
    [deputy] = smtp_server.to(DEPUTY)
    assert deputy.mail["Subject"] == "Escalated: Safeguarding concern raised"


async def test_starttls_required_never_falls_back_to_cleartext(
    world: World, smtp_server: SmtpServer
) -> None:
    from gateway.domain.outbox import Channels
    from tests.notifications.conftest import email_channel

    notifications = world.runtime.notifications
    # The test server offers no STARTTLS.
    channels = Channels(email=email_channel(smtp_server, security="starttls"))
    await notifications.set_channels(world.org, channels, actor="test")
    await notifications.enqueue(concern(world), [cause(world)])
    await notifications.deliver_due()
    [pending] = await notifications.deliveries(world.org, DeliveryState.PENDING, 10)
    assert pending.last_error == "tls"
    assert smtp_server.received == []


async def test_channel_secrets_are_stored_encrypted(world: World, webhook: Hook) -> None:
    from gateway.adapters.sql.schema import notification_channels
    from tests.notifications.conftest import WEBHOOK_SECRET

    await configure(world, hook=webhook)
    rows = await world.runtime.store._db.read(
        lambda conn: conn.execute(select(notification_channels)).all()
    )
    assert len(rows) == 1 and rows[0].secret
    assert WEBHOOK_SECRET not in str(rows[0]) and WEBHOOK_SECRET.encode().hex() not in str(rows[0])
    channels = await world.runtime.notifications.channels(world.org)
    assert channels.webhook is not None and channels.webhook.secret == WEBHOOK_SECRET


async def test_the_dsl_is_told_only_once_the_mail_server_accepted(
    world: World, smtp_server: SmtpServer
) -> None:
    notifications = world.runtime.notifications
    await configure(world, smtp_server)
    nothing = await notifications.dsl_notice(world.org.id, INCIDENT)
    assert not nothing.queued and nothing.delivered_at is None
    smtp_server.stop()
    await notifications.enqueue(concern(world), [cause(world)])
    await notifications.deliver_due()
    queued = await notifications.dsl_notice(world.org.id, INCIDENT)
    assert queued.queued and queued.delivered_at is None
    smtp_server.start()
    world.clock.advance(timedelta(minutes=1))
    await notifications.deliver_due()
    told = await notifications.dsl_notice(world.org.id, INCIDENT)
    assert told.delivered_at == world.clock.now() and told.escalated_at is None
