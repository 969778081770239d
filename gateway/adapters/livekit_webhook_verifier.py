"""LiveKit's webhook signature, checked on the raw body before anything parses it.

LiveKit (webhook/notifier.go) sends `Authorization: <JWT>`: HS256 with the API secret, `iss` the
API key, an `exp` a few minutes ahead, and a `sha256` claim that is the base64 SHA-256 of the
body. This is `livekit.api.WebhookReceiver`'s check (the installed `livekit-api`), with the
secret chosen by the token's `iss` among the configured keys (one per LiveKit deployment), the
hash compared in constant time over the raw bytes, and only then the body parsed, as the
protobuf `WebhookEvent` (unknown fields ignored, as LiveKit's receiver does).

Every failure is the same `unauthenticated` answer: a caller learns nothing about which check
failed (unknown key, bad signature, expired, body tampered).

Keys file (`GATEWAY_LIVEKIT_KEYS_FILE`, JSON, 0600): `{"<api key>": {"secret": "...",
"organisations": ["<org id>", ...] | "*"}}` — which organisations' rooms each deployment's
webhooks may speak about.
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import jwt
from google.protobuf.json_format import Parse, ParseError
from livekit.api.access_token import TokenVerifier
from livekit.protocol.webhook import WebhookEvent

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
    def __init__(self, keys: LiveKitKeys) -> None:
        self._keys = keys
        self._verifiers = {
            api_key: TokenVerifier(api_key, key.secret, leeway=LEEWAY)
            for api_key, key in keys.keys.items()
        }

    def verify(self, raw_body: bytes, authorization: str | None) -> VerifiedWebhook:
        if not authorization:
            raise Refusal(ErrorCode.UNAUTHENTICATED, REFUSED)
        token = authorization.removeprefix("Bearer ").strip()  # LiveKit sends it bare
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
            if not isinstance(issuer, str) or issuer not in self._verifiers:
                raise Refusal(ErrorCode.UNAUTHENTICATED, REFUSED)
            claims = self._verifiers[issuer].verify(token)
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise Refusal(ErrorCode.UNAUTHENTICATED, REFUSED) from exc
        if not claims.sha256 or not body_matches(claims.sha256, raw_body):
            raise Refusal(ErrorCode.UNAUTHENTICATED, REFUSED)
        try:
            event = Parse(raw_body.decode(), WebhookEvent(), ignore_unknown_fields=True)
        except (ParseError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise Refusal(ErrorCode.BODY_INVALID, "The webhook is not a LiveKit event.") from exc
        return VerifiedWebhook(issuer, hint_of(event))


def hint_of(event: WebhookEvent) -> Hint:
    """What the gateway reads of an event: ids and times only (names, metadata and attributes
    are personal data in LiveKit's own proto and are never looked at)."""
    room = event.room.name if event.HasField("room") else ""
    if not room and event.HasField("egress_info"):
        room = event.egress_info.room_name
    identity = event.participant.identity if event.HasField("participant") else ""
    return Hint(
        event_id=_bounded(event.id, 128),
        kind=_bounded(event.event, 48),
        room=_bounded(room, 128),
        identity=_bounded(identity, 128),
        created_at=int(event.created_at),
    )


def _bounded(text: str, limit: int) -> str:
    """Longer than any LiveKit makes: empty, so the event is refused as malformed (never cut,
    which could make two events one)."""
    return text if len(text) <= limit else ""
