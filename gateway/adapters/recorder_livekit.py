"""Recording on LiveKit: one *participant egress* per consenting participant, its file streamed
to the gateway and encrypted as it arrives.

`LiveKitRecorder` implements the recording services' `ParticipantRecorder` port (one catalogue
recording = one participant's own tracks for a stretch) over LiveKit Egress:

* Who: `start(room, identity)` asks LiveKit for a ParticipantEgress of exactly that
  participant's platform identity, camera and microphone (`screen_share=False`), never a room
  composite: nobody else's tracks can be in the file. The recording service decides who is
  recorded (domain/recording_scope.py) and calls `start` only for people who may be.
* Where the media goes (the choice, and why): LiveKit Egress writes files and uploads them to
  S3-compatible storage; it has no output that streams a participant's audio *and* video to an
  arbitrary endpoint (its websocket output is a track egress of audio only). So the gateway is
  that storage: each egress gets an S3 upload target on the gateway
  (`PUT /egress-uploads/<upload id>/recording.mp4`, multipart or single) with its own access key
  (the upload id) and secret (random, per egress). `EgressUploads` checks each request's AWS
  SigV4 signature with that secret (domain/sigv4.py) and hands the bytes straight to the
  recording's `RecordingWriting`, which encrypts them (chunked AES-256-GCM) before anything
  reaches a file the gateway writes. Parts that arrive ahead of their turn wait in memory,
  bounded; beyond the bound the client is told to slow down (S3's 503 SlowDown, which S3
  clients retry). The alternative, egress writing into a directory the gateway ingests, would
  leave a plaintext file on a disk the gateway controls for the whole recording: refused.
* Stop: `stop` calls StopEgress at once (a withdrawal or a departure takes effect within the
  call), then waits (bounded, `finish_seconds`) for the file to arrive. If it does not arrive
  whole, `stop` raises `EgressFailed` and the caller seals the recording as incomplete.
  A StopEgress LiveKit did not take (unreachable) is retried by every poll until the egress is
  no longer active.
* Failure: every `poll_seconds` the recorder reads ListEgress for its rooms. An egress FAILED,
  ABORTED, LIMIT_REACHED, gone from LiveKit's list, or COMPLETE without its file having arrived
  is a failed recording: its upload is closed, `on_failure` is called once (the recording is
  sealed incomplete, the host told, the session goes on). Polling, not the `egress_ended`
  webhook, decides: that webhook is known to go missing (livekit#2308).

Residual risks (said plainly; they are LiveKit Egress's, outside the gateway's code):
* Egress muxes the MP4 into a file in its own temporary folder and uploads it when the egress
  ends: the plaintext exists on the egress host for the length of the recording, and stays
  there if egress crashes before uploading. Run egress with that folder on tmpfs (memory, gone
  at restart) and never with `backup_storage` configured (its fallback writes plaintext
  elsewhere when an upload fails). The deployment is responsible; the gateway cannot check it.
* The per-egress secret travels to LiveKit in StartParticipantEgress (that is how egress gets
  it) and may be echoed in LiveKit's egress listings; it opens only that one recording's upload
  target, only while it is open, and never allows reading anything back.
* `audio_only` asks for an OGG file, which egress produces without video; not checked here
  against a real egress (LiveKit Egress needs GStreamer and Chrome and is not built in the
  tests: they use the wire-level double in tests/livekit_double).
* Uploads signed with aws-chunked *signed* payloads (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) are
  refused (501): the recording then fails loudly (sealed incomplete, host told), never
  silently. Plain, unsigned (TLS) and trailer-checksum payloads are accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import secrets
import zlib
from base64 import b64encode
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

import aiohttp
from livekit import api
from livekit.api.egress_service import EgressService
from livekit.protocol import egress as eg

from gateway.domain import sigv4
from gateway.media.recorder import RecorderBusy
from gateway.services.recording_ports import RecordingWriting

if TYPE_CHECKING:
    from gateway.adapters.platform_livekit import LiveKitPlatform

__all__ = [
    "UPLOAD_BUCKET",
    "EgressFailed",
    "EgressUploads",
    "LiveKitRecorder",
    "UploadAnswer",
    "UploadRequest",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The "bucket" of the gateway's upload target: the first segment of its path.
UPLOAD_BUCKET = "egress-uploads"
UPLOAD_PATH = re.compile(rf"^/{UPLOAD_BUCKET}/([0-9a-f]{{32}})/recording\.(mp4|ogg)$")
#: The region egress is told to sign for (any name works; the signature must carry it).
UPLOAD_REGION = "gateway"
_ENDED = frozenset(
    {
        eg.EgressStatus.EGRESS_FAILED,
        eg.EgressStatus.EGRESS_ABORTED,
        eg.EgressStatus.EGRESS_LIMIT_REACHED,
    }
)
_PART_NUMBER = re.compile(r"<PartNumber>\s*([0-9]{1,5})\s*</PartNumber>")
_DONE = frozenset({eg.EgressStatus.EGRESS_COMPLETE})


class EgressFailed(RuntimeError):
    """A participant's egress did not deliver their recording whole (no personal data)."""


@dataclass(frozen=True, slots=True)
class UploadRequest:
    method: str
    path: str  # as on the wire
    query: Sequence[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class UploadAnswer:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


def _error(status: int, code: str, message: str) -> UploadAnswer:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    return UploadAnswer(status, body, {"Content-Type": "application/xml"})


def _xml(root: str, **values: str) -> UploadAnswer:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in values.items())
    body = f'<?xml version="1.0" encoding="UTF-8"?><{root}>{inner}</{root}>'.encode()
    return UploadAnswer(200, body, {"Content-Type": "application/xml"})


@dataclass
class _Upload:
    id: str
    secret: str
    extension: str
    writer: RecordingWriting
    on_error: Callable[[BaseException], None]
    next_part: int = 1
    waiting: dict[int, bytes] = field(default_factory=dict)
    waiting_bytes: int = 0
    etags: dict[int, str] = field(default_factory=dict)
    multipart: str | None = None
    closed: bool = False
    finished: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def object_path(self) -> str:
        return f"{self.id}/recording.{self.extension}"


class EgressUploads:
    """The gateway's S3-compatible upload target for egress files (a subset of S3: PutObject,
    CreateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload)."""

    def __init__(
        self,
        *,
        max_waiting_bytes: int = 64 * 1024 * 1024,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`now`: the wall clock (egress signs with its own); `max_waiting_bytes`: parts held
        in memory while an earlier one is still on its way."""
        self._uploads: dict[str, _Upload] = {}
        self._max_waiting = max_waiting_bytes
        self._now = now

    def open(
        self, writer: RecordingWriting, extension: str, on_error: Callable[[BaseException], None]
    ) -> _Upload:
        upload = _Upload(
            id=secrets.token_hex(16),
            secret=secrets.token_urlsafe(32),
            extension=extension,
            writer=writer,
            on_error=on_error,
        )
        self._uploads[upload.id] = upload
        return upload

    async def close(self, upload: _Upload) -> None:
        """No byte more reaches the writer after this returns (the caller seals it)."""
        async with upload.lock:
            upload.closed = True
            upload.waiting.clear()
            upload.waiting_bytes = 0
            upload.done.set()
        self._uploads.pop(upload.id, None)

    def forget(self, upload: _Upload) -> None:
        """Closed from the event loop without waiting (a failure seen by the poll): a write
        under way finishes, none starts."""
        upload.closed = True
        upload.done.set()
        self._uploads.pop(upload.id, None)

    def open_count(self) -> int:
        return len(self._uploads)

    async def handle(self, request: UploadRequest) -> UploadAnswer:
        matched = UPLOAD_PATH.fullmatch(request.path)
        upload = self._uploads.get(matched.group(1)) if matched else None
        # One answer for an unknown target and a bad signature: nothing to probe.
        denied = _error(403, "AccessDenied", "Access Denied")
        if upload is None or matched is None or matched.group(2) != upload.extension:
            return denied
        try:
            credential = sigv4.parse_authorization(request.headers.get("Authorization", ""))
            if credential.access_key != upload.id or credential.service != "s3":
                return denied
            payload = sigv4.verify(
                upload.secret,
                credential,
                request.method,
                request.path,
                request.query,
                request.headers,
                self._now(),
            )
        except sigv4.SignatureInvalid:
            log.warning("an egress upload with a bad signature was refused")
            return denied
        body = _payload(payload, request)
        if isinstance(body, UploadAnswer):
            if body.status == 501:  # egress cannot deliver this file to us at all
                async with upload.lock:
                    if not upload.closed:
                        await self._fail(upload, EgressFailed("unsupported upload signing"))
            return body
        query = dict(request.query)
        async with upload.lock:
            if upload.closed or upload.finished:
                return _error(409, "InvalidRequest", "This upload is closed.")
            if request.method == "PUT" and not query:
                return await self._whole(upload, body)
            if request.method == "POST" and "uploads" in query:
                if upload.multipart is not None or upload.next_part != 1:
                    return _error(409, "InvalidRequest", "An upload is already under way.")
                upload.multipart = secrets.token_hex(16)
                return _xml(
                    "InitiateMultipartUploadResult",
                    Bucket=UPLOAD_BUCKET,
                    Key=upload.object_path,
                    UploadId=upload.multipart,
                )
            if query.get("uploadId") != upload.multipart or upload.multipart is None:
                return _error(404, "NoSuchUpload", "No such upload.")
            if request.method == "PUT" and "partNumber" in query:
                return await self._part(upload, query["partNumber"], body)
            if request.method == "POST":
                return await self._complete(upload, body)
            if request.method == "DELETE":
                await self._fail(upload, EgressFailed("egress aborted its upload"))
                return UploadAnswer(204)
        return _error(405, "MethodNotAllowed", "Not supported here.")

    async def _append(self, upload: _Upload, data: bytes) -> bool:
        try:
            await asyncio.to_thread(upload.writer.append, data)
            return True
        except Exception as exc:  # the vault failing (disk full): this recording fails
            await self._fail(upload, exc)
            return False

    async def _fail(self, upload: _Upload, exc: BaseException) -> None:
        upload.closed = True
        upload.waiting.clear()
        upload.waiting_bytes = 0
        upload.done.set()
        self._uploads.pop(upload.id, None)
        upload.on_error(exc)

    async def _whole(self, upload: _Upload, body: bytes) -> UploadAnswer:
        if upload.multipart is not None or upload.next_part != 1:
            return _error(409, "InvalidRequest", "An upload is already under way.")
        if not await self._append(upload, body):
            return _error(500, "InternalError", "The recording could not be stored.")
        upload.finished = True
        upload.done.set()
        return UploadAnswer(200, b"", {"ETag": _etag(body)})

    async def _part(self, upload: _Upload, number_text: str, body: bytes) -> UploadAnswer:
        try:
            number = int(number_text)
        except ValueError:
            number = 0
        if not 1 <= number <= 10000:
            return _error(400, "InvalidArgument", "Bad part number.")
        etag = _etag(body)
        if number < upload.next_part or number in upload.waiting:
            # A retry of a part already taken: the same bytes are fine, others cannot be.
            if upload.etags.get(number) == etag:
                return UploadAnswer(200, b"", {"ETag": etag})
            return _error(409, "InvalidRequest", "This part was already received.")
        if number > upload.next_part:
            if upload.waiting_bytes + len(body) > self._max_waiting:
                return _error(503, "SlowDown", "Please slow down.")
            upload.waiting[number] = body
            upload.waiting_bytes += len(body)
            upload.etags[number] = etag
            return UploadAnswer(200, b"", {"ETag": etag})
        upload.etags[number] = etag
        if not await self._append(upload, body):
            return _error(500, "InternalError", "The recording could not be stored.")
        upload.next_part += 1
        while upload.next_part in upload.waiting:
            data = upload.waiting.pop(upload.next_part)
            upload.waiting_bytes -= len(data)
            if not await self._append(upload, data):
                return _error(500, "InternalError", "The recording could not be stored.")
            upload.next_part += 1
        return UploadAnswer(200, b"", {"ETag": etag})

    async def _complete(self, upload: _Upload, body: bytes) -> UploadAnswer:
        # The parts list is read for its part numbers only (no XML parser on what a client
        # sends: nothing in it can expand or reach out).
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return _error(400, "MalformedXML", "The parts list is not XML.")
        numbers = [int(n) for n in _PART_NUMBER.findall(text)]
        if numbers != list(range(1, upload.next_part)) or upload.waiting:
            return _error(400, "InvalidPart", "Parts are missing.")
        upload.finished = True
        upload.done.set()
        return _xml(
            "CompleteMultipartUploadResult",
            Bucket=UPLOAD_BUCKET,
            Key=upload.object_path,
            ETag=_etag(b"".join(upload.etags[n].encode() for n in numbers)),
        )


def _etag(data: bytes) -> str:
    return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'


def _payload(signed: str, request: UploadRequest) -> bytes | UploadAnswer:
    """The object bytes, checked against what the client signed."""
    if signed == "UNSIGNED-PAYLOAD":
        return request.body
    if signed == "STREAMING-UNSIGNED-PAYLOAD-TRAILER":
        return _aws_chunked(request.body)
    if signed.startswith("STREAMING-"):
        return _error(501, "NotImplemented", "Signed streaming payloads are not supported.")
    if hashlib.sha256(request.body).hexdigest() != signed:
        return _error(400, "XAmzContentSHA256Mismatch", "The body does not match its hash.")
    return request.body


def _aws_chunked(body: bytes) -> bytes | UploadAnswer:
    """Decode `aws-chunked` (size;\\r\\n data \\r\\n ... 0\\r\\n trailers); a CRC32 trailer is
    checked."""
    out = bytearray()
    at = 0
    bad = _error(400, "IncompleteBody", "The chunked body is malformed.")
    while True:
        end = body.find(b"\r\n", at)
        if end < 0:
            return bad
        try:
            size = int(body[at:end].split(b";")[0], 16)
        except ValueError:
            return bad
        at = end + 2
        if size == 0:
            break
        out += body[at : at + size]
        if body[at + size : at + size + 2] != b"\r\n":
            return bad
        at += size + 2
    for line in body[at:].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"x-amz-checksum-crc32":
            expected = b64encode(zlib.crc32(out).to_bytes(4, "big"))
            if value.strip() != expected:
                return _error(400, "BadDigest", "The body does not match its checksum.")
    return bytes(out)


@dataclass
class _Egress:
    room: str
    identity: str
    egress_id: str
    upload: _Upload
    on_failure: Callable[[BaseException], None]
    stopping: bool = False
    failed: bool = False


class LiveKitRecorder:
    """`ParticipantRecorder` over LiveKit Egress (see the module docstring)."""

    def __init__(
        self,
        platform: LiveKitPlatform,
        uploads: EgressUploads,
        *,
        upload_url: str,
        poll_seconds: float = 2.0,
        finish_seconds: float = 30.0,
        timeout_seconds: float = 3.0,
    ) -> None:
        """`upload_url`: the gateway's base URL as the egress service reaches it."""
        self._platform = platform
        self.uploads = uploads
        self._upload_url = upload_url.rstrip("/")
        self._poll_seconds = poll_seconds
        self._finish_seconds = finish_seconds
        self._timeout = timeout_seconds
        self._egresses: dict[tuple[str, str], _Egress] = {}
        self._to_stop: dict[str, str] = {}  # egress id -> LiveKit room name: StopEgress again
        self._http: aiohttp.ClientSession | None = None
        self._service: EgressService | None = None
        self._poller: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # the port ----------------------------------------------------------------------------------
    async def start(
        self,
        room: str,
        identity: str,
        writer: RecordingWriting,
        *,
        audio_only: bool,
        on_failure: Callable[[BaseException], None],
    ) -> None:
        key = (room, identity)
        if key in self._egresses:
            raise RecorderBusy("this participant is already being recorded")
        platform_identity = await self._platform.platform_identity(room, identity)
        if platform_identity is None:
            raise EgressFailed("the participant is not connected to LiveKit")
        extension = "ogg" if audio_only else "mp4"
        recording: _Egress | None = None

        def upload_failed(exc: BaseException) -> None:
            if recording is not None:
                self._failed(recording, exc)

        upload = self.uploads.open(writer, extension, upload_failed)
        output = eg.EncodedFileOutput(
            file_type=eg.EncodedFileType.OGG if audio_only else eg.EncodedFileType.MP4,
            filepath=upload.object_path,
            disable_manifest=True,  # a manifest would be a second upload, naming the room
            s3=eg.S3Upload(
                access_key=upload.id,
                secret=upload.secret,
                region=UPLOAD_REGION,
                endpoint=self._upload_url,
                bucket=UPLOAD_BUCKET,
                force_path_style=True,
            ),
        )
        request = eg.ParticipantEgressRequest(
            room_name=self._platform.room_name(room),
            identity=platform_identity,
            screen_share=False,
            file_outputs=[output],
        )
        try:
            info = await self._call(lambda egress: egress.start_participant_egress(request))
        except BaseException:
            await self.uploads.close(upload)
            raise
        recording = _Egress(room, identity, info.egress_id, upload, on_failure)
        self._egresses[key] = recording
        self._ensure_polling()

    async def stop(self, room: str, identity: str) -> None:
        recording = self._egresses.get((room, identity))
        if recording is None:
            return
        if not recording.stopping:
            recording.stopping = True
            await self._stop_egress(recording.egress_id, self._platform.room_name(room))
        try:
            # The poll ends the wait early when LiveKit says the file will not come.
            async with asyncio.timeout(self._finish_seconds):
                await recording.upload.done.wait()
        except TimeoutError:
            pass
        whole = recording.upload.finished and not recording.failed
        await self.uploads.close(recording.upload)
        if self._egresses.get((room, identity)) is recording:
            del self._egresses[(room, identity)]
        if not whole:
            raise EgressFailed("the participant's egress file did not arrive whole")

    def recording(self, room: str) -> frozenset[str]:
        return frozenset(
            r.identity
            for (at, _), r in self._egresses.items()
            if at == room and not r.stopping and not r.failed
        )

    # watching the egresses -----------------------------------------------------------------
    async def poll_once(self) -> None:
        """One look at LiveKit's egress list for every room with a recording here."""
        rooms: dict[str, list[_Egress]] = {}
        for recording in self._egresses.values():
            rooms.setdefault(self._platform.room_name(recording.room), []).append(recording)
        for name in set(self._to_stop.values()):
            rooms.setdefault(name, [])
        for name, recordings in rooms.items():
            request = api.ListEgressRequest(room_name=name)
            try:
                listed = await self._list(request)
            except Exception:
                log.warning("LiveKit's egress list could not be read; next round")
                continue
            status = {item.egress_id: item.status for item in listed.items}
            for recording in recordings:
                self._judge(recording, status.get(recording.egress_id))
            for egress_id, room_name in list(self._to_stop.items()):
                if room_name != name:
                    continue
                if status.get(egress_id) == eg.EgressStatus.EGRESS_ACTIVE:
                    await self._stop_egress(egress_id, room_name)
                else:
                    self._to_stop.pop(egress_id, None)

    def _judge(self, recording: _Egress, status: int | None) -> None:
        if recording.failed:
            return
        if status is None or status in _ENDED:
            self._failed(recording, EgressFailed("the participant's egress failed"))
        elif status in _DONE and not recording.upload.finished:
            # COMPLETE comes after the upload: a file that has not arrived never will.
            self._failed(recording, EgressFailed("the egress ended without its file"))

    def _failed(self, recording: _Egress, exc: BaseException) -> None:
        """The recording cannot be whole: no byte more is taken; the owner is told once (a
        recording being stopped is told through `stop`)."""
        if recording.failed:
            return
        recording.failed = True
        self.uploads.forget(recording.upload)
        key = (recording.room, recording.identity)
        if self._egresses.get(key) is recording and not recording.stopping:
            del self._egresses[key]  # one being stopped is forgotten by `stop`
        # Whatever is left of it must not go on capturing this person.
        self._to_stop[recording.egress_id] = self._platform.room_name(recording.room)
        self._ensure_polling()
        if recording.stopping:
            return
        log.error("a participant's egress failed (%s)", type(exc).__name__)
        task = asyncio.create_task(self._tell(recording, exc))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tell(self, recording: _Egress, exc: BaseException) -> None:
        # Once a write under way has finished: the owner then seals the writer.
        async with recording.upload.lock:
            pass
        try:
            recording.on_failure(exc)
        except Exception:
            log.exception("recording on_failure handler failed")

    def _ensure_polling(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll_forever())

    async def _poll_forever(self) -> None:
        while self._egresses or self._to_stop:
            await asyncio.sleep(self._poll_seconds)
            try:
                await self.poll_once()
            except Exception:
                log.exception("egress poll failed; next round")

    # LiveKit --------------------------------------------------------------------------------
    async def _stop_egress(self, egress_id: str, room_name: str) -> None:
        try:
            await self._call(
                lambda egress: egress.stop_egress(api.StopEgressRequest(egress_id=egress_id))
            )
            self._to_stop.pop(egress_id, None)
        except api.ServerError as exc:
            if exc.code in (
                api.ServerErrorCode.NOT_FOUND,
                api.ServerErrorCode.FAILED_PRECONDITION,
            ):
                self._to_stop.pop(egress_id, None)  # not active any more: nothing to stop
                return
            self._to_stop[egress_id] = room_name
            log.error("LiveKit did not stop an egress (%s); retried", exc.code)
        except (aiohttp.ClientError, OSError, TimeoutError):
            self._to_stop[egress_id] = room_name
            log.error("LiveKit unreachable stopping an egress; retried")
        if self._to_stop:
            self._ensure_polling()

    async def _list(self, request: api.ListEgressRequest) -> eg.ListEgressResponse:
        return await self._call(lambda egress: egress.list_egress(request))

    def _egress(self) -> EgressService:
        if self._service is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
            self._service = _RecordOnly(
                self._http,
                self._platform.api_url,
                self._platform.api_key,
                self._platform.api_secret,
                failover=False,
            )
        return self._service

    async def _call(self, call: Callable[[EgressService], Awaitable[T]]) -> T:
        async with asyncio.timeout(self._timeout):
            return await call(self._egress())

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        for recording in list(self._egresses.values()):
            with contextlib.suppress(Exception):
                await self._stop_egress(
                    recording.egress_id, self._platform.room_name(recording.room)
                )
        if self._http is not None:
            await self._http.close()
            self._http = None
            self._service = None


class _RecordOnly(EgressService):
    """Every egress call carries `roomRecord` and nothing else."""

    def _auth_header(
        self, grants: api.VideoGrants | None, sip: api.SIPGrants | None = None
    ) -> dict[str, str]:
        token = (
            api.AccessToken(self.api_key, self.api_secret)
            .with_grants(
                api.VideoGrants(
                    room_record=True,
                    room_join=False,
                    room_admin=False,
                    room_create=False,
                    room_list=False,
                    can_publish=False,
                    can_subscribe=False,
                    can_publish_data=False,
                )
            )
            .with_ttl(timedelta(minutes=5))
            .to_jwt()
        )
        return {"authorization": f"Bearer {token}"}
