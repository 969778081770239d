"""Reconciliation's batch read of durable facts (`Store.join_records`) says exactly what the
join's own read (`Store.join_record`) says, invite by invite, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.http.world import build_world
from tests.plugins.gateway_server import Gateway


async def test_batch_read_matches_one_by_one(gateway: Gateway) -> None:
    world = await build_world(gateway)
    store = gateway.services.store
    await world.consent("Sam Green", "participation", "Gail Green", "guardian", "withdraw")
    await world.admin.post(f"/v1/invites/{world.invites['Ada Hill']['id']}/revoke")
    ids = [invite["id"] for invite in world.invites.values()]
    batch = await store.join_records([*ids, "no-such-invite"])
    assert sorted(batch) == sorted(ids)
    for invite_id in ids:
        assert batch[invite_id] == await store.join_record(invite_id)
    assert await store.join_records([]) == {}
