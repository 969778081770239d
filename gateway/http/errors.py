"""How refusals become HTTP answers: one mapping, one renderer."""

from __future__ import annotations

from aiohttp import web

from gateway.domain.errors import ErrorCode, Refusal

STATUS: dict[ErrorCode, int] = {
    ErrorCode.BODY_INVALID_JSON: 400,
    ErrorCode.BODY_TOO_LARGE: 413,
    ErrorCode.BODY_UNKNOWN_FIELD: 400,
    ErrorCode.BODY_INVALID: 400,
    ErrorCode.QUERY_INVALID: 400,
    ErrorCode.BODY_TIMEOUT: 408,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.SIGNIN_FAILED: 401,
    ErrorCode.SIGNIN_LINK_INVALID: 400,
    ErrorCode.CSRF_REFUSED: 403,
    ErrorCode.INVITE_INVALID: 403,
    ErrorCode.INVITE_EXPIRED: 403,
    ErrorCode.INVITE_REVOKED: 403,
    ErrorCode.INVITE_OTHER_DEVICE: 403,
    ErrorCode.PASSWORD_REQUIRED: 401,
    ErrorCode.PASSWORD_WRONG: 401,
    ErrorCode.TOO_MANY_ATTEMPTS: 429,
    ErrorCode.SESSION_ELSEWHERE: 421,
    ErrorCode.EMAIL_DOMAIN_NOT_ALLOWED: 422,
    ErrorCode.NAME_INVALID: 422,
    ErrorCode.DATE_OF_BIRTH_IN_FUTURE: 422,
    ErrorCode.DATE_INVALID: 422,
    ErrorCode.NOT_A_GUARDIAN: 422,
    ErrorCode.CONSENT_GIVER_NOT_ALLOWED: 422,
    ErrorCode.EVIDENCE_NOT_ACCEPTED: 422,
    ErrorCode.PURPOSE_UNKNOWN: 422,
    ErrorCode.ROLE_NOT_ALLOWED: 422,
    ErrorCode.VETTING_EXPIRED: 422,
    ErrorCode.VETTING_KIND_NOT_ACCEPTED: 422,
    ErrorCode.SCHEDULE_NOT_ALLOWED: 422,
    ErrorCode.SESSION_ENDED: 409,
    ErrorCode.POLICY_INVALID: 422,
    ErrorCode.CREDENTIAL_INVALID: 403,
    ErrorCode.SDP_INVALID: 400,
    ErrorCode.SDP_TOO_LARGE: 413,
    ErrorCode.AUDIT_UNAVAILABLE: 503,
    ErrorCode.LIVE_STATE_UNAVAILABLE: 503,
    ErrorCode.DATABASE_UNAVAILABLE: 503,
    ErrorCode.PLATFORM_UNAVAILABLE: 503,
    ErrorCode.OVERLOADED: 503,
    ErrorCode.RECORDING_UNAVAILABLE: 503,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.INTERNAL: 500,
    # recording a live session (branch recctl)
    ErrorCode.RECORDING_CONSENT_MISSING: 409,
    ErrorCode.RECORDING_NOT_RUNNING: 409,
    ErrorCode.CONSENT_LINK_INVALID: 403,  # branch consent
    # review of recordings (branch review)
    ErrorCode.PLAYBACK_LINK_INVALID: 410,
    ErrorCode.RECORDING_GONE: 410,
    ErrorCode.RECORDING_CORRUPT: 422,
}


def error_response(
    refusal: Refusal, headers: dict[str, str] | None = None, *, request_id: str | None = None
) -> web.Response:
    error: dict[str, str] = {"code": refusal.code.value, "message": refusal.message}
    if request_id is not None:  # unexpected failures: what to quote to whoever runs the gateway
        error["request_id"] = request_id
    return web.json_response(
        {"error": error},
        status=STATUS.get(refusal.code, 400),
        headers=headers,
    )
