"""`/egress-uploads/<upload id>/recording.<mp4|ogg>`: where LiveKit Egress uploads a
participant's recording (an S3-compatible subset; adapters/recorder_livekit.py). The body is
read bounded and handed, with the raw path and headers its signature covers, to the uploads;
their answer is S3's (XML errors), since an S3 client reads it."""

from __future__ import annotations

from aiohttp import web

from gateway.adapters.recorder_livekit import UPLOAD_BUCKET, EgressUploads, UploadRequest
from gateway.domain.errors import Refusal
from gateway.http.bodies import read_bounded

__all__ = ["EGRESS_UPLOADS", "EGRESS_UPLOAD_ROUTES", "MAX_UPLOAD_REQUEST_BYTES"]

EGRESS_UPLOADS = web.AppKey("egress_uploads", EgressUploads)
#: One request's body (a part, or a whole small file) held in memory at most.
MAX_UPLOAD_REQUEST_BYTES = 64 * 1024 * 1024
_TOO_LARGE = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>EntityTooLarge</Code>'
    b"<Message>Too large.</Message></Error>"
)


async def egress_upload(request: web.Request) -> web.Response:
    uploads = request.app.get(EGRESS_UPLOADS)
    if uploads is None:
        return web.Response(status=404)
    try:
        body = await read_bounded(request, MAX_UPLOAD_REQUEST_BYTES)
    except Refusal:
        return web.Response(status=413, body=_TOO_LARGE, content_type="application/xml")
    answer = await uploads.handle(
        UploadRequest(
            method=request.method,
            path=request.raw_path.split("?", 1)[0],
            query=list(request.query.items()),
            headers=dict(request.headers),
            body=body,
        )
    )
    return web.Response(status=answer.status, body=answer.body, headers=dict(answer.headers))


# Path segments the authentication middleware accepts as ids: the id and the extension.
_PATH = f"/{UPLOAD_BUCKET}/{{upload}}/recording.{{extension}}"
EGRESS_UPLOAD_ROUTES = tuple((method, _PATH, egress_upload) for method in ("PUT", "POST", "DELETE"))
