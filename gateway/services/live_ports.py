"""Ports the live-session service needs beyond those in ports.py: the video platform."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
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
