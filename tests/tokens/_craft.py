"""Hand-made JWTs for bad-input tests (any header, any algorithm, any key)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ISSUER = "https://gateway.test"
LATER = NOW + timedelta(hours=48)

_DIGESTS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def hs_token(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    """Sign with the HMAC named by header["alg"] (HS256/384/512)."""
    signing_input = f"{segment(header)}.{segment(claims)}"
    digest = _DIGESTS[header["alg"]]
    signature = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(signature)}"


def unsigned_token(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{segment(header)}.{segment(claims)}."


def new_id() -> str:
    return uuid.uuid4().hex


def invite_claims(**overrides: Any) -> dict[str, Any]:
    iat = int(NOW.timestamp())
    claims: dict[str, Any] = {
        "typ": "invite",
        "iss": ISSUER,
        "aud": "gateway:join",
        "jti": new_id(),
        "sid": new_id(),
        "org": new_id(),
        "iat": iat,
        "nbf": iat,
        "exp": int(LATER.timestamp()),
    }
    for name, value in overrides.items():
        if value is _DROP:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


class _Drop:
    pass


_DROP = _Drop()
DROP: Any = _DROP  # pass as a claim value to leave the claim out
