"""What is read of a verified LiveKit event: ids and times, in either JSON spelling LiveKit's
protobuf allows; never names or metadata; anything odd makes it malformed, never cut short."""

from __future__ import annotations

import pytest
from google.protobuf.json_format import MessageToDict
from livekit.protocol import models
from livekit.protocol.webhook import WebhookEvent

from gateway.adapters.livekit_webhook_verifier import hint_of
from gateway.domain.livekit_webhooks import Hint


def test_livekit_events_as_protobuf_writes_them() -> None:
    event = WebhookEvent(
        event="participant_joined",
        id="EV_1",
        created_at=1_700_000_000,
        room=models.Room(name="room-1", metadata="secret plans"),
        participant=models.ParticipantInfo(identity="p_1", name="Sam Green", metadata="x"),
    )
    for spelling in (MessageToDict(event), MessageToDict(event, preserving_proto_field_name=True)):
        assert hint_of(spelling) == Hint(
            "EV_1", "participant_joined", "room-1", "p_1", 1_700_000_000
        )


def test_egress_events_are_about_their_room() -> None:
    event = {
        "event": "egress_ended",
        "id": "EV_2",
        "createdAt": "5",
        "egressInfo": {"roomName": "r"},
    }
    assert hint_of(event) == Hint("EV_2", "egress_ended", "r", "", 5)


@pytest.mark.parametrize(
    "event",
    [[], {"event": 3}, {"room": "r"}, {"createdAt": True}, {"participant": {"identity": 7}}],
)
def test_odd_shapes_are_refused(event: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        hint_of(event)


def test_overlong_ids_are_emptied_not_cut() -> None:
    hint = hint_of(
        {"event": "room_started", "id": "E" * 129, "createdAt": "1", "room": {"name": "r"}}
    )
    assert hint.event_id == ""
    assert hint_of({"createdAt": "-4"}).created_at == 0
