"""Errors raised by the embedded relay; each carries a stable machine-readable ``code``."""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AiortcInternalsError",
    "CodecUnsupported",
    "ParticipantNotFound",
    "RelayClosed",
    "RelayError",
    "RelayOverloaded",
    "RoomNotFound",
    "SdpInvalid",
    "SdpTooLarge",
    "SdpUnsupported",
]


class RelayError(Exception):
    """Base class; ``code`` is stable and safe to return to clients."""

    code: ClassVar[str] = "relay_error"


class SdpTooLarge(RelayError):
    code = "sdp_too_large"


class SdpInvalid(RelayError):
    code = "sdp_invalid"


class SdpUnsupported(RelayError):
    """Well-formed SDP asking for something the relay does not offer (e.g. data channels)."""

    code = "sdp_unsupported"


class CodecUnsupported(RelayError):
    """No common codec: the relay only forwards VP8 video and Opus audio."""

    code = "codec_unsupported"


class RoomNotFound(RelayError):
    code = "room_not_found"


class ParticipantNotFound(RelayError):
    code = "participant_not_found"


class RelayClosed(RelayError):
    code = "relay_closed"


class AiortcInternalsError(RelayError):
    """The installed aiortc no longer has the internals the pass-through relies on."""

    code = "relay_internals"


class RelayOverloaded(RelayError):
    """The process is past its measured capacity: this new connection is refused so that the
    sessions already running keep their quality. ``retry_after`` is in seconds."""

    code = "overloaded"

    def __init__(self, message: str, retry_after: float, reasons: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.reasons = reasons
