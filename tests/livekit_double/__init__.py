"""A wire-level TEST DOUBLE of a LiveKit server (not LiveKit): for the cases a real server
cannot produce on demand. The real server (scripts/test builds it) covers everything else.

It speaks LiveKit's wire protocols, so the gateway's LiveKit adapter talks to it unchanged
(it needs only a URL and a key/secret):

- Twirp at `POST /twirp/livekit.RoomService/<Method>` and `/twirp/livekit.Egress/<Method>`,
  bodies as `application/protobuf` or `application/json` (livekit-protocol messages), errors as
  Twirp JSON `{"code", "msg"}` with Twirp's HTTP statuses;
- the same per-call grant checks as LiveKit (service/roomservice.go, egress.go): CreateRoom and
  DeleteRoom need `roomCreate`, ListRooms `roomList`, participant calls `roomAdmin` for that very
  room, egress calls `roomRecord`; the API token is HS256 with the secret, `iss` the key;
- webhooks signed as LiveKit signs them (webhook/notifier.go): `Authorization: <JWT>` whose
  `sha256` claim is the base64 SHA-256 of the body, `Content-Type: application/webhook+json`.

Egress: a stopped egress with an S3 file output uploads a made-up MP4 (`media`, kept in
`uploaded`) to that output as egress does when it ends (SigV4-signed PutObject, or multipart
with `upload_part_bytes`, its parts in reverse order with `reverse_parts`), then is COMPLETE
(FAILED if the storage refused it) with its `egress_ended`. No media is really recorded.

Knobs (what a real server will not do when asked): `unreachable` (connections are dropped
mid-call), `fail_egress(id)` (an egress fails mid-recording, with its `egress_ended`),
`egress_uploads` = "upload" | "skip" (an egress that ends COMPLETE without uploading),
`webhooks` = "deliver" | "drop" | "hold" (kept for `release_held(order)`), `duplicate_webhooks`.
Participants are simulated with `join(room, identity)` / `leave(room, identity)`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from google.protobuf.json_format import MessageToJson, Parse
from google.protobuf.message import DecodeError, Message
from livekit.api import AccessToken
from livekit.api.access_token import TokenVerifier
from livekit.protocol import egress as eg
from livekit.protocol import models
from livekit.protocol import room as rm
from livekit.protocol.webhook import WebhookEvent

from tests.livekit_double.s3_client import upload_file
from tests.plugins.servers import free_port

__all__ = ["LiveKitDouble", "running_double", "sign_webhook"]

TWIRP_STATUS = {
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "invalid_argument": 400,
    "already_exists": 409,
    "bad_route": 404,
    "malformed": 400,
    "failed_precondition": 412,
    "unavailable": 503,
    "internal": 500,
}


class TwirpError(Exception):
    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def sign_webhook(
    body: bytes, api_key: str, secret: str, ttl: timedelta = timedelta(minutes=5)
) -> str:
    """The Authorization value LiveKit puts on a webhook for `body`."""
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    return AccessToken(api_key, secret).with_sha256(digest).with_ttl(ttl).to_jwt()


def event_body(event: WebhookEvent) -> bytes:
    return MessageToJson(event, indent=None).encode()


@dataclass
class Grants:
    room_create: bool = False
    room_list: bool = False
    room_admin: bool = False
    room_record: bool = False
    room: str = ""


# method -> (request type, response type or None for Empty-like, grant check)
def _needs(what: str) -> Callable[[Grants, Message], bool]:
    def check(grants: Grants, request: Message) -> bool:
        if what == "admin":
            return grants.room_admin and grants.room == getattr(request, "room", None)
        return bool(getattr(grants, what))

    return check


@dataclass
class LiveKitDouble:
    api_key: str = field(default_factory=lambda: "APIdouble" + secrets.token_hex(4))
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    webhook_url: str | None = None
    # knobs
    unreachable: bool = False
    webhooks: str = "deliver"  # deliver | drop | hold
    duplicate_webhooks: bool = False
    egress_uploads: str = "upload"  # upload | skip
    upload_part_bytes: int | None = None
    reverse_parts: bool = False
    # state
    rooms: dict[str, models.Room] = field(default_factory=dict)
    participants: dict[str, dict[str, models.ParticipantInfo]] = field(default_factory=dict)
    egresses: dict[str, eg.EgressInfo] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (service, method) served
    held: list[tuple[bytes, str]] = field(default_factory=list)
    delivered: list[tuple[int, bytes]] = field(default_factory=list)  # (status, body)
    uploaded: dict[str, bytes] = field(default_factory=dict)  # egress id -> file it uploaded
    url: str = ""
    _http: aiohttp.ClientSession | None = None
    _endings: set[asyncio.Task[None]] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # --- the server --------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 20)
        app.router.add_post("/twirp/livekit.{service}/{method}", self._twirp)
        return app

    async def _twirp(self, request: web.Request) -> web.StreamResponse:
        if self.unreachable:  # as if the server vanished mid-call: no answer at all
            assert request.transport is not None
            request.transport.abort()
            raise web.HTTPServiceUnavailable()
        service, method = request.match_info["service"], request.match_info["method"]
        json_body = request.content_type == "application/json"
        try:
            handler = self._methods().get((service, method))
            if handler is None:
                raise TwirpError("bad_route", f"no handler for {service}/{method}")
            request_type, check, run = handler
            grants = self._authorise(request.headers.get("Authorization", ""))
            raw = await request.read()
            message = request_type()
            try:
                if json_body:
                    Parse(raw.decode() or "{}", message)
                else:
                    message.ParseFromString(raw)
            except (DecodeError, ValueError) as exc:
                raise TwirpError("malformed", "body is not a valid message") from exc
            if not check(grants, message):
                raise TwirpError("permission_denied", "permissions denied")
            response = await run(message)
        except TwirpError as error:
            return web.json_response(
                {"code": error.code, "msg": error.msg}, status=TWIRP_STATUS.get(error.code, 400)
            )
        self.calls.append((service, method))
        if json_body:
            return web.Response(
                body=MessageToJson(response).encode(), content_type="application/json"
            )
        return web.Response(body=response.SerializeToString(), content_type="application/protobuf")

    def _authorise(self, header: str) -> Grants:
        token = header.removeprefix("Bearer ").strip()
        if not token:
            raise TwirpError("unauthenticated", "permissions denied")
        try:
            claims = TokenVerifier(self.api_key, self.secret).verify(token)
        except (jwt.PyJWTError, ValueError) as exc:
            raise TwirpError("unauthenticated", "invalid token") from exc
        video = claims.video
        if video is None:
            return Grants()
        return Grants(
            room_create=bool(video.room_create),
            room_list=bool(video.room_list),
            room_admin=bool(video.room_admin),
            room_record=bool(video.room_record),
            room=video.room or "",
        )

    def _methods(self) -> dict[tuple[str, str], tuple[type[Message], Any, Any]]:
        return {
            ("RoomService", "CreateRoom"): (
                rm.CreateRoomRequest,
                _needs("room_create"),
                self._create_room,
            ),
            ("RoomService", "ListRooms"): (
                rm.ListRoomsRequest,
                _needs("room_list"),
                self._list_rooms,
            ),
            ("RoomService", "DeleteRoom"): (
                rm.DeleteRoomRequest,
                _needs("room_create"),
                self._delete_room,
            ),
            ("RoomService", "ListParticipants"): (
                rm.ListParticipantsRequest,
                _needs("admin"),
                self._list_participants,
            ),
            ("RoomService", "GetParticipant"): (
                rm.RoomParticipantIdentity,
                _needs("admin"),
                self._get_participant,
            ),
            ("RoomService", "UpdateParticipant"): (
                rm.UpdateParticipantRequest,
                _needs("admin"),
                self._update_participant,
            ),
            ("RoomService", "RemoveParticipant"): (
                rm.RoomParticipantIdentity,
                _needs("admin"),
                self._remove_participant,
            ),
            ("Egress", "StartParticipantEgress"): (
                eg.ParticipantEgressRequest,
                _needs("room_record"),
                self._start_participant_egress,
            ),
            ("Egress", "StartTrackEgress"): (
                eg.TrackEgressRequest,
                _needs("room_record"),
                self._start_track_egress,
            ),
            ("Egress", "ListEgress"): (
                eg.ListEgressRequest,
                _needs("room_record"),
                self._list_egress,
            ),
            ("Egress", "StopEgress"): (
                eg.StopEgressRequest,
                _needs("room_record"),
                self._stop_egress,
            ),
        }

    # --- RoomService -------------------------------------------------------------------------
    async def _create_room(self, request: rm.CreateRoomRequest) -> models.Room:
        existing = self.rooms.get(request.name)
        if existing is not None:
            return existing  # LiveKit answers an existing room as created
        created = models.Room(
            sid="RM_" + secrets.token_hex(6),
            name=request.name,
            empty_timeout=request.empty_timeout,
            departure_timeout=request.departure_timeout,
            max_participants=request.max_participants,
            creation_time=int(time.time()),
        )
        self.rooms[request.name] = created
        self.participants[request.name] = {}
        await self._webhook("room_started", room=created)
        return created

    async def _list_rooms(self, request: rm.ListRoomsRequest) -> rm.ListRoomsResponse:
        names = set(request.names)
        rooms = []
        for name, room in self.rooms.items():
            if names and name not in names:
                continue
            listed = models.Room()
            listed.CopyFrom(room)
            listed.num_participants = len(self.participants.get(name, {}))
            rooms.append(listed)
        return rm.ListRoomsResponse(rooms=rooms)

    async def _delete_room(self, request: rm.DeleteRoomRequest) -> rm.DeleteRoomResponse:
        room = self.rooms.pop(request.room, None)
        if room is None:
            raise TwirpError("not_found", "room not found")
        self.participants.pop(request.room, None)
        await self._webhook("room_finished", room=room)
        return rm.DeleteRoomResponse()

    def _participant(self, room: str, identity: str) -> models.ParticipantInfo:
        found = self.participants.get(room, {}).get(identity)
        if found is None:
            raise TwirpError("not_found", "participant not found")
        return found

    async def _list_participants(
        self, request: rm.ListParticipantsRequest
    ) -> rm.ListParticipantsResponse:
        if request.room not in self.rooms:
            raise TwirpError("not_found", "room not found")
        return rm.ListParticipantsResponse(
            participants=list(self.participants[request.room].values())
        )

    async def _get_participant(self, request: rm.RoomParticipantIdentity) -> models.ParticipantInfo:
        return self._participant(request.room, request.identity)

    async def _update_participant(
        self, request: rm.UpdateParticipantRequest
    ) -> models.ParticipantInfo:
        found = self._participant(request.room, request.identity)
        if request.HasField("permission"):  # replaces the whole set, as LiveKit does
            found.permission.CopyFrom(request.permission)
        if request.name:
            found.name = request.name
        return found

    async def _remove_participant(
        self, request: rm.RoomParticipantIdentity
    ) -> rm.RemoveParticipantResponse:
        found = self._participant(request.room, request.identity)
        del self.participants[request.room][request.identity]
        await self._webhook("participant_left", room=self.rooms[request.room], participant=found)
        return rm.RemoveParticipantResponse()

    # --- Egress ------------------------------------------------------------------------------
    async def _start_participant_egress(
        self, request: eg.ParticipantEgressRequest
    ) -> eg.EgressInfo:
        self._participant(request.room_name, request.identity)
        info = eg.EgressInfo(
            egress_id="EG_" + secrets.token_hex(6),
            room_name=request.room_name,
            status=eg.EgressStatus.EGRESS_ACTIVE,
            started_at=time.time_ns(),
            participant=request,
        )
        self.egresses[info.egress_id] = info
        await self._webhook("egress_started", egress=info)
        return info

    async def _start_track_egress(self, request: eg.TrackEgressRequest) -> eg.EgressInfo:
        if request.room_name not in self.rooms:
            raise TwirpError("not_found", "room not found")
        info = eg.EgressInfo(
            egress_id="EG_" + secrets.token_hex(6),
            room_name=request.room_name,
            status=eg.EgressStatus.EGRESS_ACTIVE,
            started_at=time.time_ns(),
            track=request,
        )
        self.egresses[info.egress_id] = info
        await self._webhook("egress_started", egress=info)
        return info

    async def _list_egress(self, request: eg.ListEgressRequest) -> eg.ListEgressResponse:
        found = [
            e
            for e in self.egresses.values()
            if (not request.room_name or e.room_name == request.room_name)
            and (not request.egress_id or e.egress_id == request.egress_id)
            and (not request.active or e.status == eg.EgressStatus.EGRESS_ACTIVE)
        ]
        return eg.ListEgressResponse(items=found)

    async def _stop_egress(self, request: eg.StopEgressRequest) -> eg.EgressInfo:
        info = self.egresses.get(request.egress_id)
        if info is None:
            raise TwirpError("not_found", "egress not found")
        if info.status != eg.EgressStatus.EGRESS_ACTIVE:
            raise TwirpError("failed_precondition", "egress is not active")
        info.status = eg.EgressStatus.EGRESS_ENDING
        answer = eg.EgressInfo()
        answer.CopyFrom(info)
        # As egress: the file is finished and uploaded after StopEgress has answered.
        task = asyncio.create_task(self._end_egress(info))
        self._endings.add(task)
        task.add_done_callback(self._endings.discard)
        return answer

    @staticmethod
    def media(info: eg.EgressInfo) -> bytes:
        """The made-up recording of one egress: an MP4 header and 300 KB of noise."""
        return b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + secrets.token_bytes(300_000)

    async def _end_egress(self, info: eg.EgressInfo) -> None:
        outputs = list(info.participant.file_outputs)
        ok = True
        if self.egress_uploads == "upload":
            for output in outputs:
                if not output.HasField("s3"):
                    continue
                data = self.media(info)
                assert self._http is not None
                try:
                    ok = await upload_file(
                        self._http,
                        output.s3,
                        output.filepath,
                        data,
                        part_bytes=self.upload_part_bytes,
                        reverse_parts=self.reverse_parts,
                    )
                except aiohttp.ClientError:
                    ok = False
                if ok:
                    self.uploaded[info.egress_id] = data
        if info.status != eg.EgressStatus.EGRESS_ENDING:
            return  # failed meanwhile
        info.status = eg.EgressStatus.EGRESS_COMPLETE if ok else eg.EgressStatus.EGRESS_FAILED
        if not ok:
            info.error = "upload failed"
        info.ended_at = time.time_ns()
        await self._webhook("egress_ended", egress=info)

    # --- what a test makes happen ------------------------------------------------------------
    async def join(self, room: str, identity: str, *, publishing: bool = True) -> None:
        """A participant connects (as a browser would) and, if `publishing`, publishes a
        camera track."""
        info = models.ParticipantInfo(
            sid="PA_" + secrets.token_hex(6),
            identity=identity,
            state=models.ParticipantInfo.State.ACTIVE,
            joined_at=int(time.time()),
        )
        if publishing:
            info.tracks.append(
                models.TrackInfo(sid="TR_" + secrets.token_hex(6), type=models.TrackType.VIDEO)
            )
        self.participants.setdefault(room, {})[identity] = info
        await self._webhook(
            "participant_joined",
            room=self.rooms.get(room, models.Room(name=room)),
            participant=info,
        )

    async def leave(self, room: str, identity: str) -> None:
        info = self.participants.get(room, {}).pop(identity, None)
        if info is not None:
            await self._webhook(
                "participant_left",
                room=self.rooms.get(room, models.Room(name=room)),
                participant=info,
            )

    async def fail_egress(self, egress_id: str, error: str = "pipeline failed") -> None:
        """The egress dies mid-recording: status FAILED and its `egress_ended` (unless
        webhooks are dropped: then only ListEgress tells)."""
        info = self.egresses[egress_id]
        info.status = eg.EgressStatus.EGRESS_FAILED
        info.error = error
        info.ended_at = time.time_ns()
        await self._webhook("egress_ended", egress=info)

    def event(self, kind: str, **parts: Message) -> WebhookEvent:
        """A webhook event as LiveKit builds it (fresh id, created now)."""
        event = WebhookEvent(
            event=kind, id=f"EV_{secrets.token_hex(6)}", created_at=int(time.time())
        )
        for name, value in parts.items():
            getattr(event, {"egress": "egress_info"}.get(name, name)).CopyFrom(value)
        return event

    async def send(self, body: bytes, authorization: str | None = None) -> int:
        """POST a webhook body to the gateway, signed with this double's key unless given."""
        assert self.webhook_url is not None and self._http is not None
        headers = {
            "Content-Type": "application/webhook+json",
            "Authorization": authorization
            if authorization is not None
            else sign_webhook(body, self.api_key, self.secret),
        }
        async with self._http.post(self.webhook_url, data=body, headers=headers) as answer:
            await answer.read()
            self.delivered.append((answer.status, body))
            return answer.status

    async def release_held(self, order: Callable[[list[bytes]], list[bytes]] = list) -> None:
        """Deliver the held webhooks, in the order `order` gives (e.g. reversed)."""
        bodies, self.held = [b for b, _ in self.held], []
        for body in order(bodies):
            await self.send(body)

    async def _webhook(self, kind: str, **parts: Message) -> None:
        if self.webhook_url is None or self.webhooks == "drop":
            return
        body = event_body(self.event(kind, **parts))
        if self.webhooks == "hold":
            self.held.append((body, kind))
            return
        await self.send(body)
        if self.duplicate_webhooks:
            await self.send(body)


@asynccontextmanager
async def running_double(**kwargs: Any) -> AsyncIterator[LiveKitDouble]:
    """A double on a loopback port, stopped afterwards."""
    double = LiveKitDouble(**kwargs)
    runner = web.AppRunner(double.app(), access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    double.url = f"http://127.0.0.1:{port}"
    double._http = aiohttp.ClientSession()
    try:
        yield double
    finally:
        for task in list(double._endings):
            task.cancel()
        await double._http.close()
        await runner.cleanup()
