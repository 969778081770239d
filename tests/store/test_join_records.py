"""Joins arriving together have their records read in one statement: each still gets exactly
the record it would have got alone (adults, children with guardians and consents, an unknown
invite, the same invite twice), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from tests.http.world import build_world
from tests.plugins.gateway_server import Gateway

PEOPLE = ("Tina Tutor", "Oscar Observer", "Sam Green", "Ada Hill")


async def test_joins_read_together_get_what_each_would_get_alone(gateway: Gateway) -> None:
    world = await build_world(gateway)
    store = gateway.services.store
    ids = [str(world.invites[name]["id"]) for name in PEOPLE] + ["inv_nobody"]
    alone = [await store.join_record(invite_id) for invite_id in ids]  # one batch each
    assert alone[-1] is None
    records = [record for record in alone[:-1] if record is not None]
    assert [r.invite.id for r in records] == ids[:-1]
    sam = records[2]
    assert sam.person.guardian_ids and sam.consents  # type: ignore[union-attr]

    mixed = ids + ids[::-1] + ids[2:3] * 5  # duplicates, reversed, an unknown one twice
    together = await asyncio.gather(*(store.join_record(invite_id) for invite_id in mixed))
    expected = {invite_id: record for invite_id, record in zip(ids, alone, strict=True)}
    assert together == [expected[invite_id] for invite_id in mixed]
