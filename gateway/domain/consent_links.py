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

Withdrawal is never blocked (R9), so what an expired or unusable link still allows is decided
here, and chosen to be the safest that keeps withdrawal within reach:

  * The browser a link is bound to keeps a *withdraw-only* view for `WITHDRAWAL_GRACE` after
    the link expires: it sees what was agreed and can withdraw it, but cannot give any new
    consent (a signature needs a live link). Withdrawing only ever lowers what may happen to a
    child, so a stale device can do no harm with it; the grace is bounded because the page
    still shows the children's names, and an old shared device should not show them forever.
  * Any link whose MAC is ours (expired, used elsewhere, revoked: never an altered one) offers
    "send me a new link". The new link goes only to the e-mail address on the registry, never
    to one typed in, so holding an old link gains nothing but a message to its guardian. The
    answer is the same whether or not anything was sent (no e-mail on file, no e-mail channel,
    the guardian's limit reached, a token that names nobody): it reveals nothing about anyone.
    It is limited per guardian and per source, and audited.
  * Sending a new link (by an admin, by the API, or on request) revokes the guardian's older
    unused links in the same transaction: at most one unused link is ever in the post. A
    revoked link is marked used by `REVOKED` (a device hash no browser can have, since real
    ones are SHA-256 hex), so it can never be bound to a browser; the audit log says why.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.domain.errors import ErrorCode, Refusal

_DOMAIN = b"sgw-guardian-consent-link\x00"
_TOKEN = re.compile(r"^([0-9a-f]{32})\.([A-Za-z0-9_-]{43})$")
TOKEN_MAX = 80
WITHDRAWAL_GRACE = timedelta(days=30)
REVOKED = "revoked"  # the device hash of a link revoked unused: matches no browser
LINK_REFUSED = (
    "This consent link cannot be used. It may have expired or been used on another device. "
    "You can ask for a new one below: it goes to the e-mail address the organisation has "
    "for you."
)
RENEWAL_ANSWER = (
    "If this link was one of ours, a new one is on its way to the e-mail address the "
    "organisation has for you. Open the newest e-mail: older links stop working."
)


class LinkFault(enum.StrEnum):
    """Why a link could not be used: audited, never told to the person holding it."""

    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    ALTERED = "altered"
    EXPIRED = "expired"
    USED_ELSEWHERE = "used_elsewhere"  # replayed from a browser it is not bound to
    GUARDIAN_GONE = "guardian_gone"
    REVOKED = "revoked"  # a newer link was sent before this one was used


@dataclass(frozen=True, slots=True)
class ConsentLink:
    id: str
    org_id: str
    guardian_id: str
    token_hash: str
    created_by: str  # the admin's staff id; "api" (an API key); the guardian's id (renewed)
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


def genuine(link: ConsentLink | None, token: str, key: bytes) -> bool:
    """Whether the token is this link's own, untouched (whatever its state)."""
    if link is None or token_link_id(token) is None:
        return False
    expected = link_token(key, link.org_id, link.id, link.guardian_id, link.expires_at)
    return hmac.compare_digest(expected.encode(), token.encode()) and hmac.compare_digest(
        token_hash(token), link.token_hash
    )


def link_fault(
    link: ConsentLink | None, token: str, key: bytes, device_hash: str | None, now: datetime
) -> LinkFault | None:
    """Why this token cannot open a consent page in the browser whose cookie hashes to
    `device_hash`, or None when it can."""
    if token_link_id(token) is None:
        return LinkFault.MALFORMED
    if link is None:
        return LinkFault.UNKNOWN
    if not genuine(link, token, key):
        return LinkFault.ALTERED
    if link.device_hash == REVOKED:
        return LinkFault.REVOKED
    if now >= link.expires_at:
        return LinkFault.EXPIRED
    if link.used_at is not None and (
        device_hash is None
        or link.device_hash is None
        or not hmac.compare_digest(device_hash, link.device_hash)
    ):
        return LinkFault.USED_ELSEWHERE
    return None


def may_give(link: ConsentLink, now: datetime) -> bool:
    """Whether the browser bound to this link may give consent now (withdrawal: see below)."""
    return now < link.expires_at


def may_withdraw(link: ConsentLink, now: datetime) -> bool:
    """Whether the browser bound to this link may still see and withdraw what was agreed."""
    return link.device_hash != REVOKED and now < link.expires_at + WITHDRAWAL_GRACE


def visit_form_token(key: bytes, device_secret: str) -> str:
    """The consent page's CSRF token: an HMAC of its browser's cookie."""
    return hmac.new(
        key, b"guardian-consent-form:" + device_secret.encode(), hashlib.sha256
    ).hexdigest()


def refuse_link() -> Refusal:
    return Refusal(ErrorCode.CONSENT_LINK_INVALID, LINK_REFUSED)
