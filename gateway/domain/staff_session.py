"""Staff sign-in and staff sessions on the gateway's pages (R5, R13): the pure decisions.

How long a sign-in link and a staff session last, when a session has ended (idle, absolute,
revoked), how failed sign-ins are limited, whether a form post carries the right CSRF token and
comes from the gateway's own origin, and who may open which staff page. No I/O, time passed in.

Secrets (session ids, sign-in link tokens, the browser-binding cookie) are random 256-bit
values; only their SHA-256 is ever stored, so a copy of the database signs nobody in.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.models import Staff, StaffRole

# A sign-in link is good for one use within this time (long enough to open a mailbox).
SIGNIN_LINK_TTL = timedelta(minutes=15)
# A password may be set only from a session opened by a sign-in link, within this time: proof
# that the person holds the organisational mailbox, and never an admin choosing it for them.
SET_PASSWORD_WINDOW = timedelta(minutes=15)
# `last_seen_at` is written at most this often (a page load per request would be a write).
TOUCH_EVERY = timedelta(seconds=60)

PASSWORD_MIN = 12
PASSWORD_MAX = 128

# Failure limits (fixed windows in the attempt limiter). The account limit locks an account
# against guessing whoever guesses; the source limit slows one address guessing many accounts.
ATTEMPT_WINDOW_SECONDS = 15 * 60
ACCOUNT_MAX_FAILURES = 5
SOURCE_MAX_FAILURES = 20
# Sign-in link requests: a mailbox is not flooded, and one address cannot spray the registry.
LINKS_PER_ACCOUNT = 3
LINKS_PER_SOURCE = 10

SESSION_COOKIE = "gw_staff"
PRE_COOKIE = "gw_staff_pre"  # before sign-in: binds forms (CSRF) and sign-in links to a browser

# Ways of closing an incident from the DSL's pages: a closed list, recorded with the reason.
CLOSING_OUTCOMES: dict[str, str] = {
    "no_further_action": "No further action",
    "handled_internally": "Handled within the organisation",
    "referred_children_services": "Referred to children's social care",
    "referred_police": "Referred to the police",
    "referred_lado": "Referred to the LADO (allegation about an adult)",
}
REASON_MAX = 2000


class SessionState(enum.StrEnum):
    ACTIVE = "active"
    IDLE = "idle"  # no request for longer than the idle timeout
    EXPIRED = "expired"  # older than the absolute timeout
    REVOKED = "revoked"  # signed out (here or everywhere)


class SignInMethod(enum.StrEnum):
    LINK = "link"
    PASSWORD = "password"


@dataclass(frozen=True, slots=True)
class SessionTimeouts:
    idle: timedelta
    absolute: timedelta


@dataclass(frozen=True, slots=True)
class StaffSession:
    """A signed-in browser, as stored (keyed by the SHA-256 of its cookie)."""

    id_hash: str
    staff_id: str
    org_id: str
    csrf_token: str
    method: SignInMethod
    created_at: datetime
    last_seen_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SignInLink:
    """A one-time link, as stored (keyed by the SHA-256 of its token)."""

    token_hash: str
    staff_id: str
    org_id: str
    browser_hash: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class LinkFault(enum.StrEnum):
    """Why a link was refused: audited, never told (the answer is the same for all)."""

    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    OTHER_BROWSER = "other_browser"


# secrets ----------------------------------------------------------------------------------------
def new_secret() -> str:
    return secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    """What is stored for a session id, a link token or a browser cookie."""
    return hashlib.sha256(secret.encode()).hexdigest()


def well_formed_secret(value: str | None) -> bool:
    """Could be one of ours (43 URL-safe characters); anything else is never looked up."""
    return (
        value is not None
        and len(value) == 43
        and all(c.isalnum() or c in "-_" for c in value)
        and value.isascii()
    )


# sessions ---------------------------------------------------------------------------------------
def session_state(session: StaffSession, now: datetime, timeouts: SessionTimeouts) -> SessionState:
    if session.revoked_at is not None:
        return SessionState.REVOKED
    if now - session.created_at >= timeouts.absolute:
        return SessionState.EXPIRED
    if now - session.last_seen_at >= timeouts.idle:
        return SessionState.IDLE
    return SessionState.ACTIVE


def needs_touch(session: StaffSession, now: datetime) -> bool:
    return now - session.last_seen_at >= TOUCH_EVERY


def may_set_password(session: StaffSession, now: datetime) -> bool:
    return session.method is SignInMethod.LINK and now - session.created_at < SET_PASSWORD_WINDOW


# links ------------------------------------------------------------------------------------------
def link_fault(
    link: SignInLink | None, browser_hash: str | None, now: datetime
) -> LinkFault | None:
    """None when the link may sign its browser in now."""
    if link is None:
        return LinkFault.UNKNOWN
    if link.used_at is not None:
        return LinkFault.USED
    if now >= link.expires_at:
        return LinkFault.EXPIRED
    if browser_hash is None or not hmac.compare_digest(link.browser_hash, browser_hash):
        return LinkFault.OTHER_BROWSER
    return None


# passwords --------------------------------------------------------------------------------------
def check_new_password(password: str, confirmation: str) -> str:
    if password != confirmation:
        raise Refusal(ErrorCode.BODY_INVALID, "The two passwords are not the same.")
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise Refusal(
            ErrorCode.BODY_INVALID,
            f"A password is {PASSWORD_MIN} to {PASSWORD_MAX} characters.",
        )
    if not password.isprintable():
        raise Refusal(ErrorCode.BODY_INVALID, "A password holds printable characters only.")
    return password


def account_key(email: str) -> str:
    """The attempt-limiter key of an e-mail address (hashed: keys may sit in Redis)."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


# CSRF -------------------------------------------------------------------------------------------
def form_token(key: bytes, browser_secret: str) -> str:
    """Before sign-in: the form token is an HMAC of the browser's pre-session cookie
    (double submit, signed so a cookie planted by a sibling site cannot forge one)."""
    return hmac.new(key, b"staff-form:" + browser_secret.encode(), hashlib.sha256).hexdigest()


def token_matches(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def same_origin(public_url: str, origin: str | None, referer: str | None) -> bool:
    """A state-changing request must come from the gateway's own pages: Origin when the browser
    sends it, else the Referer's origin; neither at all is refused."""
    expected = _origin(public_url)
    if origin:
        return origin != "null" and _origin(origin) == expected
    if referer:
        return _origin(referer) == expected
    return False


def _origin(url: str) -> tuple[str, str, int | None]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ("", "", None)
    scheme = parts.scheme.lower()
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme)
    return (scheme, (parts.hostname or "").lower(), port)


# who sees what ----------------------------------------------------------------------------------
def may_open_incident_desk(staff: Staff) -> bool:
    """The incident pages: the safeguarding lead, and admins (who may handle incidents)."""
    return bool(staff.roles & {StaffRole.DSL, StaffRole.ADMIN})


def check_may_open_incident_desk(staff: Staff) -> None:
    if not may_open_incident_desk(staff):
        raise Refusal(ErrorCode.FORBIDDEN, "Only the safeguarding lead or an admin can open this.")


def role_names(staff: Staff) -> list[str]:
    order = (StaffRole.ADMIN, StaffRole.DSL, StaffRole.TUTOR, StaffRole.OBSERVER)
    labels = {
        StaffRole.ADMIN: "Admin",
        StaffRole.DSL: "Designated safeguarding lead",
        StaffRole.TUTOR: "Tutor",
        StaffRole.OBSERVER: "Observer",
    }
    return [labels[role] for role in order if role in staff.roles]


def check_closing(outcome: str, reason: str) -> tuple[str, str]:
    """Closing from the pages needs an outcome from the list and a stated reason."""
    if outcome not in CLOSING_OUTCOMES:
        raise Refusal(
            ErrorCode.BODY_INVALID,
            "Choose an outcome: " + ", ".join(CLOSING_OUTCOMES.values()) + ".",
        )
    reason = reason.replace("\r\n", "\n").strip()
    if not 1 <= len(reason) <= REASON_MAX:
        raise Refusal(ErrorCode.BODY_INVALID, f"A reason is 1 to {REASON_MAX} characters.")
    return outcome, reason


def closing_note(outcome: str, reason: str) -> str:
    """The note a closing leaves on the incident (the notes are the case record)."""
    return f"Closed. Outcome: {CLOSING_OUTCOMES[outcome]}.\nReason: {reason}"
