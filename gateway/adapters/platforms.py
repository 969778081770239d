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

from collections.abc import Awaitable, Callable, Mapping, Sequence

from gateway.domain.models import Grants
from gateway.services.live_ports import MediaPlatform, PlatformEvent, PlatformParticipant

__all__ = ["PlatformsByOrganisation"]


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

    def slot_map(self, room: str, identity: str) -> Mapping[int, str]:
        return self._of(room).slot_map(room, identity)

    def ice_servers(self) -> list[dict[str, object]]:
        return self.default.ice_servers()
