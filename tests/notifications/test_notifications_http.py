"""The admin's view over HTTP: channels set per organisation (secrets write-only), delivery
state listed, and the gateway's own worker delivering what was queued."""

from __future__ import annotations

import asyncio

from gateway.domain.audit import AuditEvent
from gateway.http.notifications_api import NOTIFICATIONS
from tests.notifications.conftest import DSL, WEBHOOK_SECRET, Hook
from tests.notifications.receivers import SmtpServer
from tests.plugins.gateway_server import Gateway

PASSWORD = "smtp-password-not-to-be-shown"


def channels_body(smtp: SmtpServer, hook: Hook | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "email": {
            "host": "127.0.0.1",
            "port": smtp.port,
            "security": "none",
            "from_address": "gateway@example.org",
            "dsl_address": DSL,
            "second_contact_address": "deputy@example.org",
        }
    }
    if hook is not None:
        body["webhook"] = {"url": hook.url, "secret": WEBHOOK_SECRET}
    return body


async def test_channels_are_per_organisation_and_secrets_never_come_back(
    gateway: Gateway, smtp_server: SmtpServer, webhook: Hook
) -> None:
    _, key = await gateway.organisation("Club A")
    _, other_key = await gateway.organisation("Club B")
    admin = await gateway.client(key)
    body = channels_body(smtp_server, webhook)
    body["email"]["username"] = "gateway"  # type: ignore[index]
    body["email"]["password"] = PASSWORD  # type: ignore[index]

    put = await admin.call("PUT", "/v1/notification-channels", body)
    assert put.status == 200, put.body
    assert put.body["email"]["password_set"] is True
    assert put.body["webhook"] == {"url": webhook.url, "secret_set": True}
    got = await admin.get("/v1/notification-channels")
    assert got.body == put.body
    for answer in (put, got):
        assert PASSWORD not in str(answer.body) and WEBHOOK_SECRET not in str(answer.body)
    # Changing the port without re-sending the secrets keeps them.
    body["email"]["port"] = smtp_server.port  # type: ignore[index]
    del body["email"]["password"]  # type: ignore[attr-defined]
    del body["webhook"]["secret"]  # type: ignore[attr-defined]
    again = await admin.call("PUT", "/v1/notification-channels", body)
    assert again.body["email"]["password_set"] and again.body["webhook"]["secret_set"]
    # Another organisation has none.
    other = await (await gateway.client(other_key)).get("/v1/notification-channels")
    assert other.body == {"email": None, "webhook": None}
    # The change is audited without its secrets.
    audit = await admin.get("/v1/audit?kind=notification.channels_set")
    assert audit.status == 200 and len(audit.body["items"]) == 2
    assert PASSWORD not in str(audit.body) and WEBHOOK_SECRET not in str(audit.body)


async def test_bad_channel_settings_are_refused_with_the_reason(
    gateway: Gateway, smtp_server: SmtpServer
) -> None:
    _, key = await gateway.organisation()
    admin = await gateway.client(key)
    cases = [
        (
            {"email": {**channels_body(smtp_server)["email"], "host": "mail.example.org"}},
            "loopback",
        ),  # type: ignore[dict-item]
        (
            {"email": {**channels_body(smtp_server)["email"], "dsl_address": "not-an-address"}},
            "e-mail",
        ),  # type: ignore[dict-item]
        ({"webhook": {"url": "http://hooks.example.org/x", "secret": WEBHOOK_SECRET}}, "https"),
        (
            {"webhook": {"url": "https://u:p@hooks.example.org/x", "secret": WEBHOOK_SECRET}},
            "credentials",
        ),
        ({"webhook": {"url": "https://hooks.example.org/x"}}, "secret"),
        ({"webhook": {"url": "https://hooks.example.org/x", "secret": "short"}}, "secret"),
        ({"sms": {}}, "Unknown field"),
    ]
    for body, reason in cases:
        answer = await admin.call("PUT", "/v1/notification-channels", body)
        assert answer.status == 400, (body, answer.body)
        assert reason in answer.body["error"]["message"], answer.body
    assert (await admin.get("/v1/notification-channels")).body == {"email": None, "webhook": None}
    assert (await (await gateway.client()).get("/v1/notifications")).status == 401


async def test_the_gateways_worker_delivers_and_the_state_shows_it(
    gateway: Gateway, smtp_server: SmtpServer
) -> None:
    org_id, key = await gateway.organisation()
    admin = await gateway.client(key)
    assert (
        await admin.call("PUT", "/v1/notification-channels", channels_body(smtp_server))
    ).status == 200
    notifications = gateway.app[NOTIFICATIONS]
    messages = notifications.concern_raised(org_id, "a" * 32, "b" * 32, "Sam R.")
    await notifications.enqueue(messages, [AuditEvent("incident.opened", "test", org_id)])

    for _ in range(50):  # the worker runs every second under the leader lease
        if smtp_server.to(DSL):
            break
        await asyncio.sleep(0.1)
    assert len(smtp_server.to(DSL)) == 1
    for _ in range(20):
        delivered = await admin.get("/v1/notifications?state=delivered")
        if delivered.body["items"]:
            break
        await asyncio.sleep(0.1)
    [item] = delivered.body["items"]
    assert item["recipient"] == "dsl" and item["channel"] == "email" and item["attempts"] == 1
    assert item["incident_id"] == "b" * 32 and item["next_attempt_at"] is None
    assert "Sam" not in str(item) and DSL not in str(item)
    assert (await admin.get("/v1/notifications?state=pending")).body == {"items": []}
    for query in ("state=lost", "limit=0", "limit=x", "colour=red"):
        answer = await admin.get(f"/v1/notifications?{query}")
        assert answer.status == 400 and answer.code == "query_invalid"


async def test_invite_locked_reaches_the_sessions_host_and_the_dsl(
    gateway: Gateway, smtp_server: SmtpServer
) -> None:
    from tests.http.world import World

    org_id, key = await gateway.organisation()
    world = World(gateway, await gateway.client(key), org_id)
    await world.staff("Robin Tutor", ["tutor"])
    session_id = await world.new_session("Robin Tutor")
    await world.admin.call("PUT", "/v1/notification-channels", channels_body(smtp_server))
    notifications = gateway.app[NOTIFICATIONS]
    messages = notifications.invite_locked(org_id, session_id, "Sam R.")
    await notifications.enqueue(messages, [AuditEvent("invite.locked", "test", org_id)])

    for _ in range(50):
        if len(smtp_server.received) == 2:
            break
        await asyncio.sleep(0.1)
    # The host's address comes from the registry when the message is sent.
    [host] = smtp_server.to("robin.tutor@example.org")
    [dsl] = smtp_server.to(DSL)
    assert host.mail["Subject"] == dsl.mail["Subject"] == "Invite locked after wrong passwords"
    assert session_id in host.text and "Sam R." in host.text
