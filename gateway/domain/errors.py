"""The one error base and its stable codes.

Refusal (code, message, retry_after=None)
  |   a request the gateway will not carry out, as plain data, raised by domain rules and
  |   services; the HTTP layer maps `code` to a status and renders
  |   {"error": {"code": ..., "message": ...}} (plus `Retry-After` when `retry_after` is set).
  |   Messages never carry personal data or secrets.
  +-- Unavailable (code, message, retry_after=2.0)
        a dependency (SQL, live state, the platform) is down or past its deadline: always a
        503 with `Retry-After`, never a 500, never an admission.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    # request shape
    BODY_INVALID_JSON = "body_invalid_json"
    BODY_TOO_LARGE = "body_too_large"
    BODY_UNKNOWN_FIELD = "body_unknown_field"
    BODY_INVALID = "body_invalid"
    QUERY_INVALID = "query_invalid"
    BODY_TIMEOUT = "body_timeout"
    # who is asking
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    SIGNIN_FAILED = "signin_failed"
    SIGNIN_LINK_INVALID = "signin_link_invalid"
    CSRF_REFUSED = "csrf_refused"
    # invites and joining
    INVITE_INVALID = "invite_invalid"
    INVITE_EXPIRED = "invite_expired"
    INVITE_REVOKED = "invite_revoked"
    INVITE_OTHER_DEVICE = "invite_other_device"
    PASSWORD_REQUIRED = "password_required"
    PASSWORD_WRONG = "password_wrong"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    SESSION_ELSEWHERE = "session_elsewhere"  # join at the session's owner process (421)
    # registry and consent rules
    EMAIL_DOMAIN_NOT_ALLOWED = "email_domain_not_allowed"
    NAME_INVALID = "name_invalid"
    DATE_OF_BIRTH_IN_FUTURE = "date_of_birth_in_future"
    DATE_INVALID = "date_invalid"
    NOT_A_GUARDIAN = "not_a_guardian"
    CONSENT_GIVER_NOT_ALLOWED = "consent_giver_not_allowed"
    EVIDENCE_NOT_ACCEPTED = "evidence_not_accepted"
    PURPOSE_UNKNOWN = "purpose_unknown"
    ROLE_NOT_ALLOWED = "role_not_allowed"
    VETTING_EXPIRED = "vetting_expired"
    VETTING_KIND_NOT_ACCEPTED = "vetting_kind_not_accepted"
    SCHEDULE_NOT_ALLOWED = "schedule_not_allowed"
    SESSION_ENDED = "session_ended"
    POLICY_INVALID = "policy_invalid"
    # media
    CREDENTIAL_INVALID = "credential_invalid"
    SDP_INVALID = "sdp_invalid"
    SDP_TOO_LARGE = "sdp_too_large"
    # the gateway itself
    AUDIT_UNAVAILABLE = "audit_unavailable"
    LIVE_STATE_UNAVAILABLE = "live_state_unavailable"
    DATABASE_UNAVAILABLE = "database_unavailable"
    PLATFORM_UNAVAILABLE = "platform_unavailable"
    OVERLOADED = "overloaded"
    RECORDING_UNAVAILABLE = "recording_unavailable"  # no master key: nothing can be recorded
    # request routing
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    INTERNAL = "internal"
    # recording a live session (branch recctl)
    RECORDING_CONSENT_MISSING = "recording_consent_missing"  # who lacks what, by masked name
    RECORDING_NOT_RUNNING = "recording_not_running"
    # branch consent: a guardian's consent link that cannot be used (forged, used elsewhere,
    # expired); one answer whatever the reason, the audit log keeps which
    CONSENT_LINK_INVALID = "consent_link_invalid"
    # review of recordings (branch review)
    PLAYBACK_LINK_INVALID = "playback_link_invalid"
    RECORDING_GONE = "recording_gone"
    RECORDING_CORRUPT = "recording_corrupt"


class Refusal(Exception):
    """A request refused for a stated, stable reason; `retry_after` (seconds) when trying
    again later can succeed."""

    def __init__(self, code: ErrorCode, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message
        self.retry_after = retry_after


class Unavailable(Refusal):
    """A dependency is down or past its deadline. Fail closed for admissions and recordings;
    exits (leave, end, withdraw) catch this and store what they can."""

    def __init__(self, code: ErrorCode, message: str, retry_after: float = 2.0) -> None:
        super().__init__(code, message, retry_after)
