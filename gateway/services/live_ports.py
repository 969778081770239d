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
    """A video platform behind an adapter (the embedded relay by default)."""

    def on_event(self, handler: Callable[[PlatformEvent], Awaitable[None]]) -> None: ...
    async def open_room(self, room: str) -> None: ...
    async def close_room(self, room: str) -> None: ...
    async def connect(self, room: str, identity: str, grants: Grants, offer_sdp: str) -> str: ...
    async def set_grants(self, room: str, identity: str, grants: Grants) -> None: ...
    async def remove(self, room: str, identity: str) -> None: ...
    def participants(self, room: str) -> Sequence[PlatformParticipant]: ...
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
