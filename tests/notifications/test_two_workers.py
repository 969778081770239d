"""Two gateway processes' workers on one PostgreSQL: every message delivered exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.clock import FrozenClock
from gateway.domain.audit import AuditEvent
from gateway.services.ports import AuditQuery
from tests.notifications.conftest import DSL, World, configure, make_world
from tests.notifications.receivers import SmtpServer
from tests.plugins.gateway_server import MONDAY_10AM

pytestmark = pytest.mark.postgres


async def test_two_workers_never_deliver_one_message_twice(
    postgres_url: str, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    clock = FrozenClock(MONDAY_10AM)
    first = await make_world(postgres_url, tmp_path / "keys", clock)
    second = await make_world(postgres_url, tmp_path / "keys", clock)
    try:
        org, _ = await first.services.organisations.create("Test Club")
        world = World(first, clock, org)
        await configure(world, smtp_server)
        # Small batches so both workers keep coming back for more at the same time.
        for runtime in (first, second):
            runtime.notifications._batch = 7
        count = 150
        for n in range(count):
            messages = first.notifications.concern_raised(org.id, "a" * 32, f"{n:032d}", "Sam R.")
            await first.notifications.enqueue(
                messages, [AuditEvent("incident.opened", "test", org.id)]
            )

        delivered = await asyncio.gather(
            first.notifications.deliver_due(), second.notifications.deliver_due()
        )

        assert sum(delivered) == count
        assert all(n > 0 for n in delivered), "both workers took part"
        ids = [r.mail["Message-ID"] for r in smtp_server.to(DSL)]
        assert len(ids) == len(set(ids)) == count
        entries = await first.store.audit_entries(
            AuditQuery(org_id=org.id, kind="notification.delivered", limit=1000)
        )
        assert len({e.data["message"] for e in entries}) == len(entries) == count
        assert (await first.store.verify_audit()).intact
    finally:
        await second.close()
        await first.close()
