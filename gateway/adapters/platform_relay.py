"""The MediaPlatform port on the embedded relay (aiortc, in this process)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence

from gateway.domain.errors import ErrorCode, Refusal, Unavailable
from gateway.domain.media_load import LoadLimits
from gateway.domain.models import Grants
from gateway.media.errors import RelayError, RelayOverloaded, SdpTooLarge
from gateway.media.events import ParticipantJoined, ParticipantLeft, RelayEvent, SlotsChanged
from gateway.media.grants import IceServerConfig, MediaGrants
from gateway.media.recorder import RelayRecorder
from gateway.media.relay import EmbeddedRelay
from gateway.services.live_ports import PlatformEvent, PlatformParticipant


class RelayPlatform:
    def __init__(
        self,
        *,
        ice_servers: Sequence[IceServerConfig] = (),
        slots_per_peer: int = 8,
        disconnect_timeout: float = 10.0,
        socket_buffer_bytes: int = 0,
        max_video_kbps: int = 2500,
        load_limits: LoadLimits | None = None,
    ) -> None:
        self._ice = list(ice_servers)
        self._handler: Callable[[PlatformEvent], Awaitable[None]] | None = None
        self.relay = EmbeddedRelay(
            ice_servers=ice_servers,
            slots_per_peer=slots_per_peer,
            on_event=self._dispatch,
            disconnect_timeout=disconnect_timeout,
            socket_buffer_bytes=socket_buffer_bytes,
            max_video_kbps=max_video_kbps,
            load_limits=load_limits,
        )
        # The media side of recording (the `ParticipantRecorder` port) on this relay.
        self.recorder = RelayRecorder(self.relay)
        self._rooms: set[str] = set()

    def on_event(self, handler: Callable[[PlatformEvent], Awaitable[None]]) -> None:
        self._handler = handler

    async def _dispatch(self, event: RelayEvent) -> None:
        if self._handler is None:
            return
        if isinstance(event, ParticipantJoined):
            await self._handler(PlatformEvent("joined", event.room, event.identity))
        elif isinstance(event, ParticipantLeft):
            await self._handler(PlatformEvent("left", event.room, event.identity))
        elif isinstance(event, SlotsChanged):
            await self._handler(
                PlatformEvent("slots", event.room, event.identity, dict(event.slots))
            )

    async def open_room(self, room: str, org_id: str = "") -> None:
        if room not in self._rooms:
            await self.relay.open_room(room)
            self._rooms.add(room)

    async def close_room(self, room: str) -> None:
        if room in self._rooms:
            self._rooms.discard(room)
            # A closing room ends its recordings cleanly (their owners seal them).
            await self.recorder.stop_room(room)
            await self.relay.close_room(room)

    async def admit(
        self, room: str, identity: str, display_name: str, grants: Grants
    ) -> Mapping[str, object] | None:
        """None: the browser signals through the gateway (its SDP offer reaches `connect`)."""
        return None

    async def connect(self, room: str, identity: str, grants: Grants, offer_sdp: str) -> str:
        await self.open_room(room)
        try:
            return await self.relay.connect(room, identity, _media(grants), offer_sdp)
        except RelayOverloaded as exc:
            raise Unavailable(ErrorCode.OVERLOADED, str(exc), exc.retry_after) from exc
        except SdpTooLarge as exc:
            raise Refusal(ErrorCode.SDP_TOO_LARGE, "The offer is too large.") from exc
        except RelayError as exc:
            raise Refusal(ErrorCode.SDP_INVALID, f"The offer was refused ({exc.code}).") from exc

    async def set_grants(self, room: str, identity: str, grants: Grants) -> None:
        if room in self._rooms and any(
            p.identity == identity for p in self.relay.participants(room)
        ):
            await self.relay.set_grants(room, identity, _media(grants))

    async def remove(self, room: str, identity: str) -> None:
        if room in self._rooms and any(
            p.identity == identity for p in self.relay.participants(room)
        ):
            await self.relay.remove(room, identity)

    async def participants(self, room: str) -> Sequence[PlatformParticipant]:
        return self.participants_now(room)

    async def occupied_rooms(self) -> Sequence[str]:
        """Only this process's rooms: the relay's media lives and dies with its process."""
        return sorted(room for room in self._rooms if self.relay.participants(room))

    async def adopt(
        self, room: str, org_id: str, identities: Collection[str]
    ) -> Sequence[PlatformParticipant]:
        # A relay room is never another process's: there is nothing to take over.
        return [p for p in self.participants_now(room) if p.identity in identities]

    async def let_go(self, room: str) -> None:
        await self.close_room(room)  # the media is here: it goes with the session

    def participants_now(self, room: str) -> Sequence[PlatformParticipant]:
        """The relay is in this process: its list needs no wait (tests poll it)."""
        if room not in self._rooms:
            return []
        return [
            PlatformParticipant(
                p.identity, p.connected, Grants(p.grants.can_publish, p.grants.can_subscribe)
            )
            for p in self.relay.participants(room)
        ]

    def slot_map(self, room: str, identity: str) -> Mapping[int, str]:
        if room not in self._rooms:
            return {}
        try:
            return self.relay.slot_map(room, identity)
        except RelayError:
            return {}

    def ice_servers(self) -> list[dict[str, object]]:
        return [
            {
                "urls": list(s.urls),
                **({"username": s.username} if s.username else {}),
                **({"credential": s.credential} if s.credential else {}),
            }
            for s in self._ice
        ]

    async def close(self) -> None:
        await self.recorder.close()
        await self.relay.close()


def _media(grants: Grants) -> MediaGrants:
    return MediaGrants(can_publish=grants.can_publish, can_subscribe=grants.can_subscribe)
