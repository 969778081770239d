"""The MediaPlatform port on LiveKit: browsers connect to LiveKit with a token the gateway
mints just in time; the gateway controls every participant through LiveKit's RoomService.

What LiveKit does on its own, and what this adapter does about it (../shared/PLATFORMS.md):
- A token without publish/subscribe grants gets them all: every token and every permission
  update states each grant (publish, subscribe, data, sources, own metadata, hidden, and the
  admin grants) explicitly.
- A token's expiry is checked only when it first connects, and a second connection with the
  same identity kicks the first. So each admission gets a fresh platform identity
  (`<masked identity>.<nonce>`) in a token that lives minutes: an old token cannot take over
  a newer connection, and the gateway refuses a removed person a new token (the standing
  check).
- A connection counts only under the person's latest admission made by the session's current
  authority (this process): anything else LiveKit lists is removed when seen, and not
  reported. That one rule covers a removed person back with their old token, an older tab or
  a copied token (superseded), and every admission a former owner made before it was killed
  or restarted: the new owner cannot vouch for those, whatever the former owner revoked in
  its memory, so their pages re-join here (children held until the adults are counted again,
  as when the embedded relay's media dies with its process). Nothing about revocations needs
  to outlive a process. (Egress participants, started by the gateway, are left alone.)
- Rooms are created explicitly, named by a deterministic authenticated encryption (AES-SIV)
  of the session id under a key derived from the API secret: unguessable, no personal data,
  the same on every gateway instance, and any instance maps a room name back to its session
  (a webhook reaching a process that did not open the room).
- Calls have a deadline; LiveKit unreachable, past it, or refusing the key is
  `Unavailable(PLATFORM_UNAVAILABLE)`: a join is refused (503), nothing is admitted blind.

Admissions are kept in this process (the session's authority mints them), bounded by the
rosters of the rooms it runs, forgotten when a room closes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import jwt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from livekit import api
from livekit.api.room_service import RoomService

from gateway.clock import Clock
from gateway.domain.errors import ErrorCode, Refusal, Unavailable
from gateway.domain.models import Grants
from gateway.domain.takeover import kept_connections
from gateway.services.live_ports import PlatformEvent, PlatformParticipant

__all__ = ["LiveKitPlatform", "livekit_identity", "masked_part"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: What a publishing participant may send: camera and microphone (no screen share, no data
#: channel: nothing the gateway does not show and cannot moderate).
PUBLISH_SOURCES = ("camera", "microphone")
_IDENTITY_SEPARATOR = "."
#: A participant LiveKit counts as connected with media (JOINED is signalling only).
_ACTIVE = 2
#: Participants the gateway itself brings into a room (egress recording): never "unknown".
_EGRESS = api.ParticipantInfo.Kind.EGRESS
_ROOM_PREFIX = "r_"


def livekit_identity(masked_identity: str, nonce: str) -> str:
    """The platform identity of one admission: the opaque per-session identity and a nonce."""
    return f"{masked_identity}{_IDENTITY_SEPARATOR}{nonce}"


def masked_part(platform_identity: str) -> str:
    """The per-session identity behind a platform identity (itself when it has no nonce)."""
    return platform_identity.rsplit(_IDENTITY_SEPARATOR, 1)[0]


@dataclass
class _Admission:
    platform_identity: str
    hidden: bool
    expires_at: datetime
    wanted: Grants


class LiveKitPlatform:
    def __init__(
        self,
        *,
        url: str,
        api_key: str,
        api_secret: str,
        clock: Clock,
        token_seconds: float = 120.0,
        timeout_seconds: float = 3.0,
        room_empty_seconds: int = 300,
    ) -> None:
        if not url or not api_key or not api_secret:
            raise ValueError("LiveKit needs a URL, an API key and an API secret")
        self._client_url = _websocket_url(url)
        self._api_url = _http_url(url)
        self._api_key = api_key
        self._api_secret = api_secret
        # AES-256-SIV takes a 512-bit key: derived, never the secret itself.
        self._room_names = AESSIV(
            hmac.new(api_secret.encode(), b"gateway room names", hashlib.sha512).digest()
        )
        self._clock = clock
        self._token_ttl = timedelta(seconds=token_seconds)
        self._timeout = timeout_seconds
        self._room_empty_seconds = room_empty_seconds
        self._http: aiohttp.ClientSession | None = None
        self._rooms: RoomService | None = None
        self._handler: Callable[[PlatformEvent], Awaitable[None]] | None = None
        self._admissions: dict[tuple[str, str], _Admission] = {}

    @property
    def api_key(self) -> str:
        return self._api_key

    @property
    def api_url(self) -> str:
        """Where LiveKit's server API (RoomService, Egress) answers."""
        return self._api_url

    @property
    def api_secret(self) -> str:
        """For checking the webhooks this server signs with the same key (never logged)."""
        return self._api_secret

    # naming ------------------------------------------------------------------------------------
    def room_name(self, room: str) -> str:
        """LiveKit's name for a session's room: unguessable without the API secret (the
        session id encrypted deterministically: the same name on every instance)."""
        sealed = self._room_names.encrypt(room.encode(), None)
        return _ROOM_PREFIX + base64.b32encode(sealed).decode().rstrip("=").lower()

    async def platform_identity(self, room: str, identity: str) -> str | None:
        """The platform identity under which this person may be connected now: their latest
        admission made here, the only connection of theirs that counts (any other is removed
        on sight), or None: what an egress must name."""
        admission = self._admissions.get((room, identity))
        return None if admission is None else admission.platform_identity

    def session_for_room(self, room_name: str) -> str | None:
        """The session behind a LiveKit room name made with this key, whichever instance
        opened it (for webhooks); None for any other name (not ours, or forged)."""
        if not room_name.startswith(_ROOM_PREFIX):
            return None
        text = room_name[len(_ROOM_PREFIX) :].upper()
        try:
            sealed = base64.b32decode(text + "=" * (-len(text) % 8))
            return self._room_names.decrypt(sealed, None).decode()
        except (binascii.Error, ValueError, InvalidTag, UnicodeDecodeError):
            return None

    # the port ----------------------------------------------------------------------------------
    def on_event(self, handler: Callable[[PlatformEvent], Awaitable[None]]) -> None:
        # Joined/left come from reconciliation over ListParticipants (and from webhooks, which
        # are hints that trigger it); nothing here pushes events on its own.
        self._handler = handler

    async def open_room(self, room: str, org_id: str = "") -> None:
        """Create the room (LiveKit answers with the existing one if it is there): this is
        also the join's proof that LiveKit answers."""
        request = api.CreateRoomRequest(
            name=self.room_name(room),
            empty_timeout=self._room_empty_seconds,
            departure_timeout=20,
        )
        await self._call(lambda rooms: rooms.create_room(request))

    async def close_room(self, room: str) -> None:
        """Delete the room (whoever opened it): every connection in it ends."""
        name = self.room_name(room)
        for key in [k for k in self._admissions if k[0] == room]:
            del self._admissions[key]
        await self._call(
            lambda rooms: rooms.delete_room(api.DeleteRoomRequest(room=name)), missing_ok=True
        )

    async def admit(
        self, room: str, identity: str, display_name: str, grants: Grants
    ) -> Mapping[str, object] | None:
        """A token for this admission: a fresh platform identity, the policy's display name,
        every grant explicit, minutes long. Any earlier admission of the person is superseded:
        its connection is removed now, and again whenever it is seen (`participants`)."""
        now = self._clock.now()
        previous = self._admissions.get((room, identity))
        if previous is not None:
            # An older connection (another tab, a dropped one) would keep the grants it had:
            # it is disconnected now, and removed again if it comes back.
            await self._disconnect(room, previous.platform_identity)
        admission = _Admission(
            platform_identity=livekit_identity(identity, secrets.token_hex(8)),
            hidden=grants.hidden,
            expires_at=now + self._token_ttl,
            wanted=grants,
        )
        self._admissions[(room, identity)] = admission
        token = self.mint(
            self.room_name(room), admission.platform_identity, display_name, grants, now
        )
        return {
            "platform": "livekit",
            "url": self._client_url,
            "token": token,
            "expires_in": int(self._token_ttl.total_seconds()),
        }

    def mint(
        self,
        room_name: str,
        platform_identity: str,
        display_name: str,
        grants: Grants,
        now: datetime,
    ) -> str:
        """An access token with nothing but the identity, the display name and the grants."""
        video = _video_grants(room_name, grants)
        claims: dict[str, Any] = {
            "video": _camel(dataclasses.asdict(video)),
            "name": display_name,
            "sub": platform_identity,
            "iss": self._api_key,
            "nbf": int(now.timestamp()),
            "exp": int((now + self._token_ttl).timestamp()),
        }
        return jwt.encode(claims, self._api_secret, algorithm="HS256")

    async def connect(self, room: str, identity: str, grants: Grants, offer_sdp: str) -> str:
        raise Refusal(
            ErrorCode.CREDENTIAL_INVALID,
            "This session's media connects to the video platform, not through the gateway.",
        )

    async def set_grants(self, room: str, identity: str, grants: Grants) -> None:
        admission = self._admissions.get((room, identity))
        if admission is None:
            targets = [
                p.identity for p in await self._listed(room) if masked_part(p.identity) == identity
            ]
            hidden = grants.hidden
        else:
            admission.wanted = grants
            targets = [admission.platform_identity]
            hidden = grants.hidden or admission.hidden  # a hidden viewer stays hidden when held
        name = self.room_name(room)
        permission = _permission(grants, hidden)
        for target in targets:
            # Not connected yet (not_found): their token carries what was granted at the join,
            # and the session's authority brings it in line once they are listed.
            await self._update(
                api.UpdateParticipantRequest(room=name, identity=target, permission=permission)
            )

    async def remove(self, room: str, identity: str) -> None:
        """Off LiveKit now; with no admission left, any of their connections seen again (an
        old token, on any process that runs the session) is removed at once."""
        self._admissions.pop((room, identity), None)
        for listed in await self._listed(room):
            if masked_part(listed.identity) == identity or listed.identity == identity:
                await self._disconnect(room, listed.identity)

    async def participants(self, room: str) -> Sequence[PlatformParticipant]:
        """Who LiveKit says is in the room (the truth reconciliation uses). A connection that
        is not under its person's current admission made here (removed, superseded, or
        admitted by a former owner of the session) is removed now and not reported."""
        seen: list[PlatformParticipant] = []
        for listed in await self._listed(room):
            masked = masked_part(listed.identity)
            current = self._admissions.get((room, masked))
            vouched = current is not None and current.platform_identity == listed.identity
            if not vouched and listed.kind != _EGRESS:
                log.warning("a connection not admitted by the session's authority was removed")
                await self._disconnect(room, listed.identity)
                continue
            permission = listed.permission
            seen.append(
                PlatformParticipant(
                    masked,
                    listed.state == _ACTIVE,
                    Grants(
                        can_publish=permission.can_publish,
                        can_subscribe=permission.can_subscribe,
                        hidden=permission.hidden,
                    ),
                )
            )
        return seen

    async def occupied_rooms(self) -> Sequence[str]:
        """The sessions whose LiveKit rooms have anyone in them: one ListRooms, whoever
        opened them (rooms this key did not name are not ours, and left out)."""
        response = await self._call(lambda rooms: rooms.list_rooms(api.ListRoomsRequest()))
        listed = list(response.rooms) if response is not None else []
        sessions = (self.session_for_room(r.name) for r in listed if r.num_participants > 0)
        return sorted(s for s in sessions if s is not None)

    async def adopt(
        self, room: str, org_id: str, identities: Collection[str]
    ) -> Sequence[PlatformParticipant]:
        """Vouch for what the former owner admitted, as far as that can be known here
        (`domain.takeover.kept_connections`); the others are disconnected and their pages
        re-join here. Egress is left alone."""
        listed = [p for p in await self._listed(room) if p.kind != _EGRESS]
        kept = kept_connections(
            {
                p.identity: (masked_part(p.identity) if _IDENTITY_SEPARATOR in p.identity else None)
                for p in listed
            },
            identities,
        )
        now = self._clock.now()
        adopted: list[PlatformParticipant] = []
        for participant in listed:
            if participant.identity not in kept:
                await self._disconnect(room, participant.identity)
                continue
            masked = masked_part(participant.identity)
            permission = participant.permission
            grants = Grants(
                can_publish=permission.can_publish,
                can_subscribe=permission.can_subscribe,
                hidden=permission.hidden,
            )
            # Its token was spent at connect; a re-join here gets a fresh admission.
            self._admissions[(room, masked)] = _Admission(
                participant.identity, permission.hidden, now, grants
            )
            adopted.append(PlatformParticipant(masked, participant.state == _ACTIVE, grants))
        return adopted

    async def let_go(self, room: str) -> None:
        """Another process runs the session now: its admissions here are forgotten, and
        LiveKit's connections left to it (the new owner vouches for them or removes them)."""
        for key in [k for k in self._admissions if k[0] == room]:
            del self._admissions[key]

    def slot_map(self, room: str, identity: str) -> Mapping[int, str]:
        return {}  # the LiveKit client lays out the tracks it is allowed to receive

    def ice_servers(self) -> list[dict[str, object]]:
        return []  # LiveKit hands its own ICE configuration to its client

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
            self._rooms = None

    # inside --------------------------------------------------------------------------------------
    async def _listed(self, room: str) -> Sequence[Any]:
        request = api.ListParticipantsRequest(room=self.room_name(room))
        response = await self._call(lambda rooms: rooms.list_participants(request), missing_ok=True)
        return list(response.participants) if response is not None else []

    async def _update(self, request: api.UpdateParticipantRequest) -> None:
        await self._call(lambda rooms: rooms.update_participant(request), missing_ok=True)

    async def _disconnect(self, room: str, platform_identity: str) -> None:
        request = api.RoomParticipantIdentity(room=self.room_name(room), identity=platform_identity)
        await self._call(lambda rooms: rooms.remove_participant(request), missing_ok=True)

    def _service(self) -> RoomService:
        if self._rooms is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
            # No failover: a self-hosted deployment has one origin, and a retry elsewhere
            # would only stretch the deadline.
            self._rooms = RoomService(
                self._http, self._api_url, self._api_key, self._api_secret, failover=False
            )
        return self._rooms

    async def _call(
        self, call: Callable[[RoomService], Awaitable[T]], *, missing_ok: bool = False
    ) -> T | None:
        """One RoomService call within the deadline. `missing_ok`: LiveKit's not_found (no such
        room or participant) is an answer, not a failure."""
        try:
            async with asyncio.timeout(self._timeout):
                return await call(self._service())
        except api.ServerError as exc:
            if missing_ok and exc.code == api.ServerErrorCode.NOT_FOUND:
                return None
            log.error("LiveKit refused a call (%s, HTTP %s)", exc.code, exc.status)
            raise _unavailable() from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.error("LiveKit unreachable (%s)", type(exc).__name__)
            raise _unavailable() from exc


def _unavailable() -> Unavailable:
    return Unavailable(
        ErrorCode.PLATFORM_UNAVAILABLE,
        "The video platform cannot be reached right now; try again in a moment.",
    )


def _video_grants(room_name: str, grants: Grants) -> api.VideoGrants:
    """Every grant stated: LiveKit grants all publish/subscribe rights when none is set."""
    return api.VideoGrants(
        room_create=False,
        room_list=False,
        room_record=False,
        room_admin=False,
        room_join=True,
        room=room_name,
        can_publish=grants.can_publish,
        can_subscribe=grants.can_subscribe,
        can_publish_data=False,
        can_publish_sources=list(PUBLISH_SOURCES) if grants.can_publish else [],
        can_update_own_metadata=False,
        ingress_admin=False,
        hidden=grants.hidden,
        recorder=False,
        agent=False,
        can_subscribe_metrics=False,
        can_manage_agent_session=False,
    )


def _permission(grants: Grants, hidden: bool) -> api.ParticipantPermission:
    """UpdateParticipant replaces the whole set: all of it, every time."""
    sources = [api.TrackSource.CAMERA, api.TrackSource.MICROPHONE] if grants.can_publish else []
    return api.ParticipantPermission(
        can_subscribe=grants.can_subscribe,
        can_publish=grants.can_publish,
        can_publish_data=False,
        can_publish_sources=sources,
        hidden=hidden,
        recorder=False,
        can_update_metadata=False,
        agent=False,
        can_subscribe_metrics=False,
        can_manage_agent_session=False,
    )


def _camel(fields: Mapping[str, Any]) -> dict[str, Any]:
    """LiveKit's claim names (camelCase), None left out; False and [] kept (explicit)."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None:
            continue
        head, *rest = key.split("_")
        out[head + "".join(part.title() for part in rest)] = value
    return out


def _websocket_url(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _http_url(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
