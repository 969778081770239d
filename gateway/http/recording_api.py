"""Recording a live session over HTTP: the host's start and stop (with their invite, like
the other host powers), the API's start and stop for an organisation's systems, and a child's
answer on the day (R7, R8, R10, R12)."""

from __future__ import annotations

from aiohttp import web

from gateway.http.bodies import (
    EmptyBody,
    LeaveBody,
    RecordingStartBody,
    RecordingTodayBody,
    SessionRecordingBody,
    parse_body,
)
from gateway.http.errors import error_response
from gateway.http.keys import SETTINGS
from gateway.http.live_api import LIVE, _device_of
from gateway.http.middleware import ORG
from gateway.http.routing import Route
from gateway.http.views import ForeignView
from gateway.services.live import RecordingRefused, SessionElsewhere

__all__ = ["RECORDING_LIVE_ROUTES"]


class RecordingRunView(ForeignView):
    """A recording run as started or stopped (masked identities only)."""

    type: str
    active: bool
    run: str | None = None
    purpose: str | None = None
    audio_only: bool | None = None
    recorded: list[str] | None = None
    excluded: list[dict[str, str]] | None = None
    recordings: list[str] | None = None


def _refused(refusal: RecordingRefused | SessionElsewhere) -> web.Response:
    """The refusal with what the caller needs: who lacks what (masked), or where to go. The
    service has audited it (recording.refused) with the same list."""
    answer = error_response(refusal)
    error: dict[str, object] = {"code": refusal.code.value, "message": refusal.message}
    if isinstance(refusal, RecordingRefused):
        error["lacking"] = refusal.lacking
    body: dict[str, object] = {"error": error}
    if isinstance(refusal, SessionElsewhere):
        body["location"] = refusal.location
    return web.json_response(body, status=answer.status)


async def host_start(request: web.Request) -> web.Response:
    body = await parse_body(request, RecordingStartBody, request.app[SETTINGS].max_body_bytes)
    try:
        started = await request.app[LIVE].recording.start_by_host(
            body.token, _device_of(request), body.purpose
        )
    except (RecordingRefused, SessionElsewhere) as refusal:
        return _refused(refusal)
    return web.json_response(started)


async def host_stop(request: web.Request) -> web.Response:
    body = await parse_body(request, LeaveBody, request.app[SETTINGS].max_body_bytes)
    try:
        stopped = await request.app[LIVE].recording.stop_by_host(body.token, _device_of(request))
    except SessionElsewhere as elsewhere:  # the run is on the session's authority: go there
        return _refused(elsewhere)
    return web.json_response(stopped)


async def answer_today(request: web.Request) -> web.Response:
    body = await parse_body(request, RecordingTodayBody, request.app[SETTINGS].max_body_bytes)
    return web.json_response(
        await request.app[LIVE].recording.answer_today(body.token, _device_of(request), body.answer)
    )


async def api_start(request: web.Request) -> web.Response:
    body = await parse_body(request, SessionRecordingBody, request.app[SETTINGS].max_body_bytes)
    org = request[ORG]
    try:
        started = await request.app[LIVE].recording.start(
            org.id, request.match_info["id"], body.purpose, f"api:{org.id}"
        )
    except (RecordingRefused, SessionElsewhere) as refusal:
        return _refused(refusal)
    return web.json_response(started)


async def api_stop(request: web.Request) -> web.Response:
    await parse_body(request, EmptyBody, request.app[SETTINGS].max_body_bytes)
    org = request[ORG]
    try:
        stopped = await request.app[LIVE].recording.stop(
            org.id, request.match_info["id"], f"api:{org.id}"
        )
    except SessionElsewhere as elsewhere:
        return _refused(elsewhere)
    return web.json_response(stopped)


RECORDING_LIVE_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/v1/live/recording/start",
        host_start,
        "Host: start recording the session for a purpose the policy lists",
        RecordingStartBody,
        public=True,
        operation_id="startLiveRecording",
    ),
    Route(
        "POST",
        "/v1/live/recording/stop",
        host_stop,
        "Host: stop recording the session",
        LeaveBody,
        public=True,
        operation_id="stopLiveRecording",
    ),
    Route(
        "POST",
        "/v1/live/recording/today",
        answer_today,
        "A child says whether they are happy to be recorded today",
        RecordingTodayBody,
        public=True,
        operation_id="answerRecordingToday",
    ),
    Route(
        "POST",
        "/v1/sessions/{id}/recording/start",
        api_start,
        "Start recording a live session for a purpose the policy lists",
        SessionRecordingBody,
        operation_id="startSessionRecording",
        response=RecordingRunView,
    ),
    Route(
        "POST",
        "/v1/sessions/{id}/recording/stop",
        api_stop,
        "Stop recording a live session",
        EmptyBody,
        operation_id="stopSessionRecording",
        response=RecordingRunView,
    ),
)
