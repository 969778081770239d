"""Invite tokens, media credentials and device cookies (R1, R2): compact JWS, HS256.

One algorithm only: HS256. A token's header must say HS256 and (for invites) carry a `kid` that
names a key in the KeyRing; the kid is looked up among known keys *before* anything is verified,
and no other key is ever tried. `compact_hs256` checks the shape and the signature; the claims
(type, audience, issuer, required claims, expiry and start time) are judged by
`gateway.domain.invite_token` against the caller's `now`.

Tokens are secrets: no message, exception or log line produced here contains one, or any value
read from one.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from gateway.adapters import compact_hs256
from gateway.adapters.keys import KeyRing
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.invite_token import (
    INVITE_AUDIENCE,
    INVITE_TYP,
    MAX_MEDIA_TTL_SECONDS,
    MAX_TOKEN_CHARS,
    MEDIA_AUDIENCE,
    MEDIA_TYP,
    InviteClaims,
    MediaClaims,
    device_hash,
    invite_claims_from,
    media_claims_from,
)

__all__ = [
    "DEVICE_TOKEN_BYTES",
    "InviteTokens",
    "MediaCredentials",
    "device_hash",
    "device_token",
]

DEVICE_TOKEN_BYTES = 32


class InviteTokens:
    """Mints and verifies personal invite tokens. Only opaque ids go in: no personal data."""

    def __init__(self, keyring: KeyRing, issuer: str) -> None:
        if not issuer:
            raise ValueError("an issuer is required")
        self._keyring = keyring
        self._issuer = issuer

    def __repr__(self) -> str:
        return f"InviteTokens(issuer={self._issuer!r})"

    def mint(
        self,
        invite_id: str,
        session_id: str,
        org_id: str,
        expires_at: datetime,
        now: datetime,
    ) -> str:
        """A signed invite token (jti = invite_id) valid from `now` until `expires_at`."""
        iat = _whole_seconds(now)
        exp = _whole_seconds(expires_at)
        if exp <= iat:
            raise ValueError("an invite must expire after it is issued")
        claims = {
            "typ": INVITE_TYP,
            "iss": self._issuer,
            "aud": INVITE_AUDIENCE,
            "jti": invite_id,
            "sid": session_id,
            "org": org_id,
            "iat": iat,
            "nbf": iat,
            "exp": exp,
        }
        _self_check(lambda: invite_claims_from(claims, issuer=self._issuer, now=now))
        kid, secret = self._keyring.signing_key()
        return compact_hs256.sign(claims, secret, kid=kid)

    def verify(self, token: str, now: datetime) -> InviteClaims:
        """The claims of a genuine, current invite token, else Refusal.

        INVITE_EXPIRED once `exp` has passed; INVITE_INVALID for everything else (too long,
        malformed, another algorithm or none, missing or unknown kid, forged signature, wrong
        audience/issuer/type, missing claims, not valid yet).
        """

        def invalid(message: str) -> Refusal:
            return Refusal(ErrorCode.INVITE_INVALID, message)

        def key_for(header: Mapping[str, Any]) -> bytes:
            kid = header.get("kid")
            if kid is None:
                raise invalid("invite token names no signing key")
            if not isinstance(kid, str):
                raise invalid("invite token's key id is malformed")
            secret = self._keyring.verification_key(kid)
            if secret is None:
                raise invalid("invite token was signed with an unknown key")
            return secret

        payload = _decode(
            token,
            what="invite token",
            key_for=key_for,
            invalid=invalid,
        )
        return invite_claims_from(payload, issuer=self._issuer, now=now)


class MediaCredentials:
    """Short-lived credentials for media signalling, signed with the ring's media key.

    Single use is the caller's job: after `verify`, store the credential's `credential_id`
    (jti) until its `expires_at` and refuse any credential whose jti is already stored.
    """

    def __init__(self, keyring: KeyRing, issuer: str) -> None:
        if not issuer:
            raise ValueError("an issuer is required")
        self._keyring = keyring
        self._issuer = issuer

    def __repr__(self) -> str:
        return f"MediaCredentials(issuer={self._issuer!r})"

    def mint(
        self,
        session_id: str,
        identity: str,
        grants: Mapping[str, object],
        now: datetime,
        ttl_seconds: int = 60,
    ) -> str:
        """A credential for `identity` in `session_id` with explicit `grants` (JSON values)."""
        if not 1 <= ttl_seconds <= MAX_MEDIA_TTL_SECONDS:
            raise ValueError(f"ttl_seconds must be 1..{MAX_MEDIA_TTL_SECONDS}")
        iat = _whole_seconds(now)
        claims = {
            "typ": MEDIA_TYP,
            "iss": self._issuer,
            "aud": MEDIA_AUDIENCE,
            "jti": secrets.token_hex(16),
            "sid": session_id,
            "sub": identity,
            "grants": dict(grants),
            "iat": iat,
            "nbf": iat,
            "exp": iat + ttl_seconds,
        }
        # No self-check here (invites have one): one is minted per join, and a malformed
        # credential fails closed anyway, refused by `verify` before any peer connection.
        return compact_hs256.sign(claims, self._keyring.media_key())

    def verify(self, token: str, now: datetime) -> MediaClaims:
        """The claims of a genuine, current media credential, else Refusal CREDENTIAL_INVALID."""

        def invalid(message: str) -> Refusal:
            return Refusal(ErrorCode.CREDENTIAL_INVALID, message)

        payload = _decode(
            token,
            what="media credential",
            key_for=lambda _header: self._keyring.media_key(),
            invalid=invalid,
        )
        return media_claims_from(payload, issuer=self._issuer, now=now)


def device_token() -> str:
    """A fresh random value for the device cookie (32 bytes, URL-safe base64)."""
    return secrets.token_urlsafe(DEVICE_TOKEN_BYTES)


# --- shared verification ---------------------------------------------------------------------


def _decode(
    token: str,
    *,
    what: str,
    key_for: Callable[[Mapping[str, Any]], bytes],
    invalid: Callable[[str], Refusal],
) -> dict[str, Any]:
    if not isinstance(token, str) or not token:
        raise invalid(f"{what} is missing")
    if len(token) > MAX_TOKEN_CHARS:
        raise invalid(f"{what} is too long")
    if not token.isascii() or token.count(".") != 2:
        raise invalid(f"{what} is malformed")
    try:
        header = compact_hs256.header_of(token)
        secret = key_for(header)
        return compact_hs256.verified_payload(token, secret)
    except compact_hs256.RefusedAlgorithm:
        raise invalid(f"{what} uses an algorithm that is not accepted") from None
    except compact_hs256.BadSignature:
        raise invalid(f"{what} signature does not verify") from None
    except compact_hs256.MalformedToken:
        raise invalid(f"{what} is malformed") from None


def _self_check(check: Callable[[], object]) -> None:
    """Mint only what verify would accept (opaque ids, consistent times)."""
    try:
        check()
    except Refusal as refusal:
        raise ValueError(f"refusing to mint: {refusal.message}") from None


def _whole_seconds(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError("naive datetimes are not accepted; attach a time zone")
    return int(at.timestamp())
