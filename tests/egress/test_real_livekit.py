"""Against a real LiveKit server (no egress service runs beside it: LiveKit Egress needs
GStreamer and Chrome and is not built here). What the real server can show: the recorder's
egress calls carry a grant it accepts (roomRecord), it answers them with a refusal because no
egress service is connected, and the recorder turns that into a failed start, with nothing
left open on the gateway: the recording service then seals that person's recording
incomplete and tells the host (covered against the double in test_recording_on_livekit)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from livekit import api
from livekit.protocol import egress as eg

from gateway.adapters.recorder_livekit import EgressUploads, LiveKitRecorder
from gateway.domain.models import Grants
from tests.platforms._drivers import LiveKitDriver
from tests.plugins.livekit_server import LiveKitServer

pytestmark = pytest.mark.media


class Kept:
    def __init__(self) -> None:
        self.data = bytearray()

    def append(self, data: bytes) -> None:
        self.data += data

    def seal(self) -> tuple[int, int]:
        return len(self.data), 1

    def abort(self) -> None:
        pass


@pytest.fixture
async def livekit(livekit_server: LiveKitServer) -> AsyncIterator[LiveKitDriver]:
    driver = LiveKitDriver(livekit_server)
    try:
        yield driver
    finally:
        await driver.close()


async def test_a_real_server_takes_the_grant_and_a_missing_egress_service_fails_the_start(
    livekit: LiveKitDriver, livekit_server: LiveKitServer
) -> None:
    uploads = EgressUploads()
    recorder = LiveKitRecorder(
        livekit.platform,
        uploads,
        upload_url="http://127.0.0.1:9",
        poll_seconds=0.2,
        timeout_seconds=1.0,
    )
    room = "s-" + secrets.token_hex(4)
    try:
        await livekit.arrive(room, "p_tutor", Grants(can_publish=True, can_subscribe=True))
        failures: list[BaseException] = []
        # The server waits for an egress worker to take the request, in vain: past the
        # deadline (or refused), the start fails.
        with pytest.raises((api.TwirpError, TimeoutError)) as refused:
            await recorder.start(
                room, "p_tutor", Kept(), audio_only=False, on_failure=failures.append
            )
        if isinstance(refused.value, api.TwirpError):  # not an authorisation problem
            assert refused.value.code not in ("unauthenticated", "permission_denied")
        assert uploads.open_count() == 0 and recorder.recording(room) == frozenset()
        # a token without roomRecord is refused by the same server (the check is real)
        client = api.LiveKitAPI(
            livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret
        )
        try:
            admin_only = api.VideoGrants(room_admin=True, room=livekit.platform.room_name(room))
            client.egress._token = (
                api.AccessToken(livekit_server.api_key, livekit_server.api_secret)
                .with_grants(admin_only)
                .to_jwt()
            )
            with pytest.raises(api.TwirpError) as denied:
                await client.egress.list_egress(eg.ListEgressRequest())
            assert denied.value.code in ("unauthenticated", "permission_denied")
            # while the recorder's own token (roomRecord) is let past the check (to the
            # server's "egress not connected")
            with pytest.raises(api.TwirpError) as past_the_check:
                await recorder._list(eg.ListEgressRequest())
            assert past_the_check.value.code not in ("unauthenticated", "permission_denied")
        finally:
            await client.aclose()
    finally:
        await recorder.close()
