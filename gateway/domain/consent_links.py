"""A guardian's personal consent link (R7, R9): signed, expiring, single-purpose, one device.

The token is `<link id>.<MAC>`: the MAC is HMAC-SHA256, under a key kept outside the database,
of the link's purpose ("guardian consent"), organisation, id, guardian and expiry. So it says
nothing about anyone (no name, no address), cannot be made or altered without the key, and
cannot stand in for any other token the gateway issues. The database keeps only the token's
SHA-256; the e-mail is written with the token at delivery time, from the link's id, so the
outbox holds no token either.

Opening the link shows a button only (mail scanners open links). Using it binds the link to
this browser (a random cookie, stored hashed): from then on it works only there, until it
expires. The same link used from anywhere else is a replay: refused, and audited with the
reason; every unusable link gets the same answer, whatever the reason.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime

from gateway.domain.errors import ErrorCode, Refusal

_DOMAIN = b"sgw-guardian-consent-link\x00"
_TOKEN = re.compile(r"^([0-9a-f]{32})\.([A-Za-z0-9_-]{43})$")
TOKEN_MAX = 80
LINK_REFUSED = (
    "This consent link cannot be used. It may have expired or been used on another device. "
    "Ask the organisation to send you a new one."
)


class LinkFault(enum.StrEnum):
    """Why a link could not be used: audited, never told to the person holding it."""

    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    ALTERED = "altered"
    EXPIRED = "expired"
    USED_ELSEWHERE = "used_elsewhere"  # replayed from a browser it is not bound to
    GUARDIAN_GONE = "guardian_gone"


@dataclass(frozen=True, slots=True)
class ConsentLink:
    id: str
    org_id: str
    guardian_id: str
    token_hash: str
    created_by: str  # the admin's staff id
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    device_hash: str | None = None  # SHA-256 of the browser cookie it is bound to


def _mac(key: bytes, org_id: str, link_id: str, guardian_id: str, expires_at: datetime) -> str:
    message = (
        _DOMAIN
        + "\x00".join(
            (org_id, link_id, guardian_id, str(int(expires_at.timestamp() * 1_000_000)))
        ).encode()
    )
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def link_token(
    key: bytes, org_id: str, link_id: str, guardian_id: str, expires_at: datetime
) -> str:
    return f"{link_id}.{_mac(key, org_id, link_id, guardian_id, expires_at)}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_link_id(token: str) -> str | None:
    """The link id a well-formed token names; None for anything else (never looked up)."""
    if len(token) > TOKEN_MAX:
        return None
    found = _TOKEN.match(token)
    return found.group(1) if found else None


def link_fault(
    link: ConsentLink | None, token: str, key: bytes, device_hash: str | None, now: datetime
) -> LinkFault | None:
    """Why this token cannot open a consent page in the browser whose cookie hashes to
    `device_hash`, or None when it can."""
    if token_link_id(token) is None:
        return LinkFault.MALFORMED
    if link is None:
        return LinkFault.UNKNOWN
    expected = link_token(key, link.org_id, link.id, link.guardian_id, link.expires_at)
    if not hmac.compare_digest(expected.encode(), token.encode()) or not hmac.compare_digest(
        token_hash(token), link.token_hash
    ):
        return LinkFault.ALTERED
    if now >= link.expires_at:
        return LinkFault.EXPIRED
    if link.used_at is not None and (
        device_hash is None
        or link.device_hash is None
        or not hmac.compare_digest(device_hash, link.device_hash)
    ):
        return LinkFault.USED_ELSEWHERE
    return None


def visit_form_token(key: bytes, device_secret: str) -> str:
    """The consent page's CSRF token: an HMAC of its browser's cookie."""
    return hmac.new(
        key, b"guardian-consent-form:" + device_secret.encode(), hashlib.sha256
    ).hexdigest()


def refuse_link() -> Refusal:
    return Refusal(ErrorCode.CONSENT_LINK_INVALID, LINK_REFUSED)
