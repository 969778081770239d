"""Events emitted by the embedded relay through its ``on_event`` callback."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["LeftReason", "ParticipantJoined", "ParticipantLeft", "RelayEvent", "SlotsChanged"]

LeftReason = Literal["closed", "failed", "timeout", "removed", "replaced", "room_closed"]


@dataclass(frozen=True, slots=True)
class ParticipantJoined:
    """The participant's connection reached ``connected`` (ICE + DTLS up)."""

    room: str
    identity: str


@dataclass(frozen=True, slots=True)
class ParticipantLeft:
    """The participant is gone for good; only emitted after a ``ParticipantJoined``."""

    room: str
    identity: str
    reason: LeftReason


@dataclass(frozen=True, slots=True)
class SlotsChanged:
    """Which publisher each of ``identity``'s receive slots now carries.

    ``slots`` maps slot index to publisher identity; a missing index is an empty slot.
    """

    room: str
    identity: str
    slots: Mapping[int, str]


RelayEvent = ParticipantJoined | ParticipantLeft | SlotsChanged
