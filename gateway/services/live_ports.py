"""Ports the live-session service needs beyond those in ports.py: the video platform."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.domain.invite_token import MediaClaims
from gateway.domain.models import Grants


@dataclass(frozen=True, slots=True)
class PlatformParticipant:
    """Someone the platform itself says is connected: the truth reconciliation uses."""

    identity: str
    connected: bool
    grants: Grants


@dataclass(frozen=True, slots=True)
class PlatformEvent:
    kind: str  # "joined" | "left" | "slots"
    room: str
    identity: str
    slots: Mapping[int, str] | None = None


class MediaPlatform(Protocol):
    """A video platform behind an adapter (the embedded relay by default, or LiveKit).

    Two ways a browser's media reaches a platform, and the port covers both:
    - through the gateway (the embedded relay): `admit` returns None, the join hands out the
      gateway's own single-use media credential and the browser's SDP offer goes to `connect`;
    - directly (LiveKit): `admit` returns what the browser connects with (`{"platform":
      "livekit", "url", "token"}`), a just-in-time platform token carrying these grants, and
      `connect` is never used.
    Every call that reaches a remote platform has a deadline; past it, or when the platform
    is unreachable, it raises `Unavailable(PLATFORM_UNAVAILABLE)`.
    """

    def on_event(self, handler: Callable[[PlatformEvent], Awaitable[None]]) -> None: ...
    async def open_room(self, room: str, org_id: str) -> None: ...
    async def close_room(self, room: str) -> None: ...
    async def admit(
        self, room: str, identity: str, display_name: str, grants: Grants
    ) -> Mapping[str, object] | None: ...
    async def connect(self, room: str, identity: str, grants: Grants, offer_sdp: str) -> str: ...
    async def set_grants(self, room: str, identity: str, grants: Grants) -> None: ...
    async def remove(self, room: str, identity: str) -> None: ...
    async def participants(self, room: str) -> Sequence[PlatformParticipant]: ...
    async def occupied_rooms(self) -> Sequence[str]:
        """The rooms (sessions) someone is connected to now, whichever process opened them:
        one call however many rooms there are (reconciliation looks for sessions whose owner
        died while their people stayed connected). The gateway's own recorders do not count."""
        ...

    async def adopt(
        self, room: str, org_id: str, identities: Collection[str]
    ) -> Sequence[PlatformParticipant]:
        """This process has just taken the session over from an owner that died: vouch for
        the one connection of each of `identities` (people who still stand in the session)
        and disconnect everything else in the room (anyone else, and anyone connected twice:
        which of the two the former owner admitted last is not known here). Returns those
        vouched for; from now on they count as admitted by this process."""
        ...

    async def let_go(self, room: str) -> None:
        """This process no longer runs the session (another took its lease): forget what it
        knows of the room. Media carried here ends with it (the embedded relay); connections
        the platform carries (LiveKit) are left to the new owner."""
        ...

    def slot_map(self, room: str, identity: str) -> Mapping[int, str]: ...
    def ice_servers(self) -> list[dict[str, object]]: ...


class MediaCredentialCodec(Protocol):
    def mint(
        self,
        session_id: str,
        identity: str,
        grants: Mapping[str, object],
        now: datetime,
        ttl_seconds: int = 60,
    ) -> str: ...
    def verify(self, token: str, now: datetime) -> MediaClaims: ...
