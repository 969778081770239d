"""Jobs that must run once across instances (issue 10 point 7): two gateway processes on one
PostgreSQL and Redis deliver every queued notification exactly once (one e-mail per message at
a real SMTP server, one `notification.delivered` entry), and the audit chain verifies."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
import pytest

from gateway.app import build_runtime
from gateway.domain.audit import AuditEvent
from gateway.domain.outbox import Channels, EmailChannel
from gateway.settings import Settings
from tests.live._gateways import ready, serving
from tests.multinode.conftest import Cluster, audit_kinds
from tests.notifications.receivers import SmtpServer
from tests.plugins.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

DSL = "dsl@example.org"
CONCERNS = 30


async def _queue_concerns(cluster: Cluster, smtp: SmtpServer) -> str:
    """An organisation whose DSL is reached by e-mail at `smtp`, with `CONCERNS` concerns
    waiting in the outbox; its API key."""
    runtime = await build_runtime(Settings.from_env(cluster.env))
    try:
        org, key = await runtime.services.organisations.create("Busy Club")
        channel = EmailChannel(
            host="127.0.0.1",
            port=smtp.port,
            security="none",
            from_address="gateway@example.org",
            dsl_address=DSL,
        )
        await runtime.notifications.set_channels(org, Channels(email=channel), actor="test")
        for n in range(CONCERNS):
            messages = runtime.notifications.concern_raised(org.id, "a" * 32, f"{n:032d}", "Sam R.")
            await runtime.notifications.enqueue(
                messages, [AuditEvent("incident.opened", "test", org.id)]
            )
        return key
    finally:
        await runtime.close()


async def test_two_instances_deliver_each_notification_once(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    smtp = SmtpServer(free_port())
    smtp.start()
    try:
        key = await _queue_concerns(cluster, smtp)
        with serving(cluster.env, 2) as (a, b):
            await ready(http, a.base, b.base)
            async with asyncio.timeout(30):
                while len(smtp.to(DSL)) < CONCERNS:
                    await asyncio.sleep(0.1)
            await asyncio.sleep(3.0)  # more delivery rounds on both: nothing is sent again
            delivered = await audit_kinds(http, b.base, key, "notification.delivered")
        mails = Counter(r.mail["Message-ID"] for r in smtp.to(DSL))
    finally:
        smtp.stop()
    assert len(mails) == CONCERNS and set(mails.values()) == {1}, mails.most_common(3)
    per_message = Counter(e["data"]["message"] for e in delivered)
    assert len(per_message) == CONCERNS and set(per_message.values()) == {1}
    verified = await asyncio.to_thread(cluster.gateway, "audit", "verify")
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout
