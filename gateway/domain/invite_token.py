"""Signed credentials as plain data (R1, R2): what a decoded invite or media credential must say.

The adapter (`gateway.adapters.invite_tokens`) checks the signature, the algorithm and the key id
with PyJWT; everything about the *claims* is decided here, against an explicit `now`, so tests can
move time. PyJWT's own time checks are switched off for that reason.

Times are JWT NumericDates (whole seconds since the epoch, UTC). A credential is valid while
`nbf <= now < exp`: at the instant of `exp` it has expired; before `nbf` it is not valid yet.

Refusal messages name what is wrong, never the token or any value taken from it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType

from gateway.domain.errors import ErrorCode, Refusal

__all__ = [
    "ALGORITHM",
    "INVITE_AUDIENCE",
    "INVITE_REQUIRED_CLAIMS",
    "INVITE_TYP",
    "MAX_MEDIA_TTL_SECONDS",
    "MAX_TOKEN_CHARS",
    "MEDIA_AUDIENCE",
    "MEDIA_REQUIRED_CLAIMS",
    "MEDIA_TYP",
    "InviteClaims",
    "MediaClaims",
    "device_hash",
    "invite_claims_from",
    "media_claims_from",
]

ALGORITHM = "HS256"  # the one algorithm; anything else in a header is refused
MAX_TOKEN_CHARS = 4096  # longer tokens are refused before any parsing

INVITE_TYP = "invite"
INVITE_AUDIENCE = "gateway:join"
INVITE_REQUIRED_CLAIMS = ("typ", "iss", "aud", "jti", "sid", "org", "iat", "nbf", "exp")

MEDIA_TYP = "media"
MEDIA_AUDIENCE = "gateway:media"
MEDIA_REQUIRED_CLAIMS = ("typ", "iss", "aud", "jti", "sid", "sub", "grants", "iat", "nbf", "exp")
MAX_MEDIA_TTL_SECONDS = 600

# Opaque ids only (uuid hex, masked identities): printable ASCII without spaces, bounded.
_OPAQUE_ID = re.compile(r"[A-Za-z0-9._:~-]{1,128}")

_LAST_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z; later cannot be a datetime

_Factory = Callable[[str], Refusal]  # builds the refusal with the caller's error code


@dataclass(frozen=True, slots=True)
class InviteClaims:
    """A verified invite: which invite, for which session of which organisation, until when."""

    invite_id: str  # the token's jti; the key of the stored Invite
    session_id: str
    org_id: str
    issuer: str
    issued_at: datetime
    not_before: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class MediaClaims:
    """A verified media credential. Single use is the caller's job: store `credential_id`."""

    credential_id: str  # jti
    session_id: str
    identity: str  # the participant's opaque per-session identity
    grants: Mapping[str, object]
    issuer: str
    issued_at: datetime
    expires_at: datetime


def invite_claims_from(
    payload: Mapping[str, object], *, issuer: str, now: datetime
) -> InviteClaims:
    """Validate the decoded (signature-checked) claims of an invite token at `now`.

    Raises Refusal INVITE_INVALID for a wrong typ/aud/iss, a missing or ill-typed claim, or a
    token that is not valid yet; INVITE_EXPIRED once `exp` has passed.
    """

    def invalid(message: str) -> Refusal:
        return Refusal(ErrorCode.INVITE_INVALID, message)

    _require(payload, INVITE_REQUIRED_CLAIMS, invalid)
    _expect(payload, "typ", INVITE_TYP, "invite token has the wrong type", invalid)
    _expect_audience(payload, INVITE_AUDIENCE, "invite token is for another audience", invalid)
    _expect(payload, "iss", issuer, "invite token has the wrong issuer", invalid)
    invite_id = _opaque(payload, "jti", invalid)
    session_id = _opaque(payload, "sid", invalid)
    org_id = _opaque(payload, "org", invalid)
    iat, nbf, exp = _times(payload, invalid)
    at = _seconds(now)
    if at < nbf:
        raise invalid("invite token is not valid yet (its start time is in the future)")
    if at >= exp:
        raise Refusal(ErrorCode.INVITE_EXPIRED, "invite has expired")
    return InviteClaims(
        invite_id=invite_id,
        session_id=session_id,
        org_id=org_id,
        issuer=issuer,
        issued_at=_instant(iat),
        not_before=_instant(nbf),
        expires_at=_instant(exp),
    )


def media_claims_from(payload: Mapping[str, object], *, issuer: str, now: datetime) -> MediaClaims:
    """Validate the decoded (signature-checked) claims of a media credential at `now`.

    Everything wrong, expiry included, is Refusal CREDENTIAL_INVALID. A credential whose lifetime
    exceeds MAX_MEDIA_TTL_SECONDS is refused as well: these are minted just in time.
    """

    def invalid(message: str) -> Refusal:
        return Refusal(ErrorCode.CREDENTIAL_INVALID, message)

    _require(payload, MEDIA_REQUIRED_CLAIMS, invalid)
    _expect(payload, "typ", MEDIA_TYP, "media credential has the wrong type", invalid)
    _expect_audience(payload, MEDIA_AUDIENCE, "media credential is for another audience", invalid)
    _expect(payload, "iss", issuer, "media credential has the wrong issuer", invalid)
    credential_id = _opaque(payload, "jti", invalid)
    session_id = _opaque(payload, "sid", invalid)
    identity = _opaque(payload, "sub", invalid)
    grants = payload["grants"]
    if not isinstance(grants, Mapping) or not all(isinstance(k, str) for k in grants):
        raise invalid("media credential grants are malformed")
    iat, nbf, exp = _times(payload, invalid)
    if exp - iat > MAX_MEDIA_TTL_SECONDS:
        raise invalid("media credential lives longer than allowed")
    at = _seconds(now)
    if at < nbf:
        raise invalid("media credential is not valid yet")
    if at >= exp:
        raise invalid("media credential has expired")
    return MediaClaims(
        credential_id=credential_id,
        session_id=session_id,
        identity=identity,
        grants=MappingProxyType(dict(grants)),
        issuer=issuer,
        issued_at=_instant(iat),
        expires_at=_instant(exp),
    )


# --- helpers ---------------------------------------------------------------------------------


def _require(payload: Mapping[str, object], names: tuple[str, ...], invalid: _Factory) -> None:
    for name in names:
        if name not in payload:
            raise invalid(f"required claim '{name}' is missing")


def _expect(
    payload: Mapping[str, object], name: str, expected: str, message: str, invalid: _Factory
) -> None:
    value = payload[name]
    if not isinstance(value, str) or value != expected:
        raise invalid(message)


def _expect_audience(
    payload: Mapping[str, object], expected: str, message: str, invalid: _Factory
) -> None:
    # RFC 7519 allows a list; we mint a single string and accept exactly that.
    value = payload["aud"]
    if not isinstance(value, str) or value != expected:
        raise invalid(message)


def _opaque(payload: Mapping[str, object], name: str, invalid: _Factory) -> str:
    value = payload[name]
    if not isinstance(value, str) or not _OPAQUE_ID.fullmatch(value):
        raise invalid(f"claim '{name}' is malformed")
    return value


def _times(payload: Mapping[str, object], invalid: _Factory) -> tuple[int, int, int]:
    values: list[int] = []
    for name in ("iat", "nbf", "exp"):
        value = payload[name]
        # bool is an int in Python; a NumericDate it is not.
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _LAST_SECOND:
            raise invalid(f"claim '{name}' is not a whole number of seconds")
        values.append(value)
    iat, nbf, exp = values
    if not (iat <= exp and nbf <= exp):
        raise invalid("token times are inconsistent")
    return iat, nbf, exp


def _seconds(now: datetime) -> float:
    if now.tzinfo is None:
        raise ValueError("naive datetimes are not accepted; attach a time zone")
    return now.timestamp()


def _instant(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def device_hash(device_secret: str) -> str:
    """What is stored for a device cookie: its SHA-256, hex. The cookie itself is never stored."""
    return hashlib.sha256(device_secret.encode("utf-8")).hexdigest()
