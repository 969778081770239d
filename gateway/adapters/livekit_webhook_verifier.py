"""LiveKit's webhook signature, checked on the raw body before anything parses it.

LiveKit (webhook/notifier.go) sends `Authorization: <JWT>`: HS256 with the API secret, `iss` the
API key, an `exp` a few minutes ahead, and a `sha256` claim that is the base64 SHA-256 of the
body. This is `livekit.api.WebhookReceiver`'s check (the installed `livekit-api`), with the
key found by the signature among the configured keys (one per LiveKit deployment) and then
required to be the token's `iss`, the hash compared in constant time over the raw bytes, and
only then the body parsed (JSON; only ids and times are read, unknown fields ignored, as
LiveKit's receiver does).

Every failure is the same `unauthenticated` answer: a caller learns nothing about which check
failed (unknown key, bad signature, expired, body tampered).

Keys file (`GATEWAY_LIVEKIT_KEYS_FILE`, JSON, 0600): `{"<api key>": {"secret": "...",
"organisations": ["<org id>", ...] | "*"}}` — which organisations' rooms each deployment's
webhooks may speak about.
"""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.adapters import compact_hs256
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.livekit_webhooks import Hint, body_matches

__all__ = [
    "KeysFileError",
    "LiveKitKey",
    "LiveKitKeys",
    "VerifiedWebhook",
    "WebhookVerifier",
    "load_keys",
]

REFUSED = "The webhook's signature is not valid."
LEEWAY = timedelta(seconds=10)  # the livekit-api default is 0; allow clocks a little apart


@dataclass(frozen=True, slots=True)
class LiveKitKey:
    secret: str
    organisations: frozenset[str] | None  # None: every organisation


@dataclass(frozen=True, slots=True)
class LiveKitKeys:
    keys: dict[str, LiveKitKey]

    def serves(self, api_key: str, org_id: str) -> bool:
        key = self.keys.get(api_key)
        if key is None:
            return False
        return key.organisations is None or org_id in key.organisations


class KeysFileError(ValueError):
    pass


def load_keys(path: Path | None) -> LiveKitKeys:
    """The configured LiveKit keys (none without a file: every webhook is refused)."""
    if path is None:
        return LiveKitKeys({})
    try:
        mode = path.stat().st_mode
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise KeysFileError(f"{path}: not a readable JSON file of LiveKit keys") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeysFileError(f"{path}: LiveKit keys must be readable by their owner only (0600)")
    if not isinstance(raw, dict):
        raise KeysFileError(f"{path}: expected {{api key: {{secret, organisations}}}}")
    keys: dict[str, LiveKitKey] = {}
    for api_key, entry in raw.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("secret"), str):
            raise KeysFileError(f"{path}: each key needs a secret")
        orgs = entry.get("organisations", "*")
        if len(entry["secret"]) < 32:
            raise KeysFileError(f"{path}: a LiveKit secret must be at least 32 characters")
        if orgs == "*":
            keys[str(api_key)] = LiveKitKey(entry["secret"], None)
        elif isinstance(orgs, list) and all(isinstance(o, str) for o in orgs):
            keys[str(api_key)] = LiveKitKey(entry["secret"], frozenset(orgs))
        else:
            raise KeysFileError(f'{path}: organisations is a list of ids or "*"')
    return LiveKitKeys(keys)


@dataclass(frozen=True, slots=True)
class VerifiedWebhook:
    api_key: str
    hint: Hint


class WebhookVerifier:
    """`livekit.api.WebhookReceiver`'s check (TokenVerifier: HS256, `iss` the key, `exp`
    required, `nbf`; then the body hash), on the gateway's strict HS256 codec
    (`compact_hs256`): PyJWT and protobuf's JSON parser cost ~0.5 ms a webhook, most of the
    handler's time. tests/livekit_webhooks checks it against livekit-api's own signer."""

    def __init__(self, keys: LiveKitKeys, clock: Callable[[], float] = time.time) -> None:
        self._secrets = {k: key.secret.encode() for k, key in keys.keys.items()}
        self._clock = clock

    def verify(self, raw_body: bytes, authorization: str | None) -> VerifiedWebhook:
        claims = self._claims(authorization)
        if claims is None or not body_matches(claims["sha256"], raw_body):
            raise Refusal(ErrorCode.UNAUTHENTICATED, REFUSED)
        try:
            event = json.loads(raw_body)
            hint = hint_of(event)
        except (ValueError, TypeError, AttributeError, RecursionError) as exc:
            raise Refusal(ErrorCode.BODY_INVALID, "The webhook is not a LiveKit event.") from exc
        return VerifiedWebhook(claims["iss"], hint)

    def _claims(self, authorization: str | None) -> dict[str, Any] | None:
        """The token's claims if it is signed with a configured key that it names as `iss`,
        in its validity period, and carries a body hash; else None (one answer for all)."""
        if not authorization:
            return None
        token = authorization.removeprefix("Bearer ").strip()  # LiveKit sends it bare
        try:
            compact_hs256.header_of(token)
            for api_key, secret in self._secrets.items():
                try:
                    claims = compact_hs256.verified_payload(token, secret)
                except compact_hs256.BadSignature:
                    continue
                if claims.get("iss") != api_key:
                    return None
                break
            else:
                return None
        except compact_hs256.MalformedToken:
            return None
        now = self._clock()
        leeway = LEEWAY.total_seconds()
        expires, not_before = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(expires, int | float) or isinstance(expires, bool):
            return None  # required (livekit/protocol#1706)
        if not isinstance(not_before, int | float) or isinstance(not_before, bool):
            return None
        if expires < now - leeway or not_before > now + leeway:
            return None
        if not isinstance(claims.get("sha256"), str) or not claims["sha256"]:
            return None
        return claims


def hint_of(event: Any) -> Hint:
    """What the gateway reads of an event (LiveKit's protojson: camelCase names, int64 as
    strings; proto names accepted too): ids and times only. Names, metadata and attributes
    are personal data in LiveKit's own proto and are never looked at."""
    if not isinstance(event, dict):
        raise ValueError("not an object")
    room = _field(_field(event, "room", {}), "name", "")
    if not room:
        room = _field(_field(event, "egressInfo", {}, "egress_info"), "roomName", "", "room_name")
    identity = _field(_field(event, "participant", {}), "identity", "")
    created = _field(event, "createdAt", 0, "created_at")
    if isinstance(created, bool) or not isinstance(created, int | str):
        raise ValueError("createdAt")
    return Hint(
        event_id=_bounded(_text(_field(event, "id", "")), 128),
        kind=_bounded(_text(_field(event, "event", "")), 48),
        room=_bounded(_text(room), 128),
        identity=_bounded(_text(identity), 128),
        created_at=int(created) if str(created).isdigit() else 0,
    )


def _field(message: Any, name: str, default: Any, other: str | None = None) -> Any:
    if not isinstance(message, dict):
        raise ValueError(name)
    if name in message:
        return message[name]
    return message.get(other, default) if other is not None else default


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not text")
    return value


def _bounded(text: str, limit: int) -> str:
    """Longer than any LiveKit makes: empty, so the event is refused as malformed (never cut,
    which could make two events one)."""
    return text if len(text) <= limit else ""
