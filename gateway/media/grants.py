"""Value types shared by the embedded relay and its callers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["HOLD", "IceServerConfig", "MediaGrants", "RelayParticipant"]


@dataclass(frozen=True, slots=True)
class MediaGrants:
    """What a participant may do with media.

    ``MediaGrants(False, False)`` is a *hold*: nothing reaches the participant and nothing they
    send reaches anyone.
    """

    can_publish: bool
    can_subscribe: bool


HOLD = MediaGrants(can_publish=False, can_subscribe=False)


@dataclass(frozen=True, slots=True)
class IceServerConfig:
    """One STUN or TURN server (the browser's ``RTCIceServer`` shape)."""

    urls: Sequence[str]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True, slots=True)
class RelayParticipant:
    """A participant as the relay itself sees it (the truth supervision reconciles against)."""

    identity: str
    connected: bool
    publishing: frozenset[str] = field(default_factory=frozenset)
    grants: MediaGrants = HOLD
