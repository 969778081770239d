"""One MediaPlatform per organisation, by configuration: the embedded relay by default, LiveKit
for the organisations named in GATEWAY_LIVEKIT_ORGANISATIONS.

A session's platform is chosen when its room is opened (the join, which knows the
organisation) and remembered for the session's life in this process: every later call about
that room (grants, removal, the participant list) goes to the same platform. The session's
one authority runs here, so the joins that open a room are the ones that act on it.

Closing is the exception: a session may end through a process that never opened its room
(a host's request reaching another instance, or the owner killed). That room is closed on the
platform of the session's organisation, so a LiveKit room is deleted and its connections end
whoever opened it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence

from gateway.domain.models import Grants
from gateway.services.live_ports import MediaPlatform, PlatformEvent, PlatformParticipant
from gateway.services.recording_ports import ParticipantRecorder, RecordingWriting

__all__ = ["PlatformsByOrganisation", "RecordersByRoom"]


class RecordersByRoom:
    """`ParticipantRecorder` that records each room on its own platform (the relay's recorder,
    or LiveKit egress). A recording stays with the recorder that started it, even once its
    room is closed."""

    def __init__(
        self,
        platforms: PlatformsByOrganisation,
        default: ParticipantRecorder | None,
        livekit: ParticipantRecorder | None,
    ) -> None:
        self._platforms = platforms
        self._by_platform = {id(platforms.default): default, id(platforms.livekit): livekit}
        self._started: dict[tuple[str, str], ParticipantRecorder] = {}

    def _for(self, room: str) -> ParticipantRecorder:
        recorder = self._by_platform.get(id(self._platforms.platform_of(room)))
        if recorder is None:
            raise RuntimeError("this room's platform cannot record")
        return recorder

    async def start(
        self,
        room: str,
        identity: str,
        writer: RecordingWriting,
        *,
        audio_only: bool,
        on_failure: Callable[[BaseException], None],
    ) -> None:
        recorder = self._for(room)
        await recorder.start(room, identity, writer, audio_only=audio_only, on_failure=on_failure)
        self._started[(room, identity)] = recorder

    async def stop(self, room: str, identity: str) -> None:
        recorder = self._started.pop((room, identity), None)
        if recorder is not None:
            await recorder.stop(room, identity)

    def recording(self, room: str) -> frozenset[str]:
        recorders = {id(r): r for (at, _), r in self._started.items() if at == room}
        found: frozenset[str] = frozenset()
        for recorder in recorders.values():
            found |= recorder.recording(room)
        return found


class PlatformsByOrganisation:
    def __init__(
        self,
        default: MediaPlatform,
        livekit: MediaPlatform,
        livekit_organisations: frozenset[str],
        organisation_of: Callable[[str], Awaitable[str | None]],
    ) -> None:
        """`livekit_organisations`: organisation ids on LiveKit ("*": every one).
        `organisation_of`: a session's organisation (durable), for closing a room this
        process did not open."""
        self.default = default
        self.livekit = livekit
        self._livekit_for = livekit_organisations
        self._organisation_of = organisation_of
        self._rooms: dict[str, MediaPlatform] = {}

    def platform_for(self, org_id: str) -> MediaPlatform:
        if "*" in self._livekit_for or org_id in self._livekit_for:
            return self.livekit
        return self.default

    def _of(self, room: str) -> MediaPlatform:
        return self._rooms.get(room, self.default)

    def platform_of(self, room: str) -> MediaPlatform:
        """The platform this room was opened on (the default for a room not open here)."""
        return self._of(room)

    def on_event(self, handler: Callable[[PlatformEvent], Awaitable[None]]) -> None:
        self.default.on_event(handler)
        self.livekit.on_event(handler)

    async def open_room(self, room: str, org_id: str) -> None:
        platform = self.platform_for(org_id)
        await platform.open_room(room, org_id)
        self._rooms[room] = platform

    async def close_room(self, room: str) -> None:
        platform = self._rooms.pop(room, None)
        if platform is None:
            org_id = await self._organisation_of(room)
            platform = self.default if org_id is None else self.platform_for(org_id)
        await platform.close_room(room)

    async def admit(
        self, room: str, identity: str, display_name: str, grants: Grants
    ) -> Mapping[str, object] | None:
        return await self._of(room).admit(room, identity, display_name, grants)

    async def connect(self, room: str, identity: str, grants: Grants, offer_sdp: str) -> str:
        return await self._of(room).connect(room, identity, grants, offer_sdp)

    async def set_grants(self, room: str, identity: str, grants: Grants) -> None:
        await self._of(room).set_grants(room, identity, grants)

    async def remove(self, room: str, identity: str) -> None:
        await self._of(room).remove(room, identity)

    async def participants(self, room: str) -> Sequence[PlatformParticipant]:
        return await self._of(room).participants(room)

    async def occupied_rooms(self) -> Sequence[str]:
        rooms = set(await self.default.occupied_rooms())
        if self.livekit is not self.default:
            rooms |= set(await self.livekit.occupied_rooms())
        return sorted(rooms)

    async def adopt(
        self, room: str, org_id: str, identities: Collection[str]
    ) -> Sequence[PlatformParticipant]:
        """The room of a session taken over: on its organisation's platform, remembered here
        for the session's life, as if this process had opened it."""
        platform = self.platform_for(org_id)
        self._rooms[room] = platform
        return await platform.adopt(room, org_id, identities)

    async def let_go(self, room: str) -> None:
        await self._rooms.pop(room, self.default).let_go(room)

    def slot_map(self, room: str, identity: str) -> Mapping[int, str]:
        return self._of(room).slot_map(room, identity)

    def ice_servers(self) -> list[dict[str, object]]:
        return self.default.ice_servers()
