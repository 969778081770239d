"""Compact JWS with HS256, and nothing else: sign, and verify before reading.

Why not PyJWT on this path: every join verifies an invite and mints a media credential, and
PyJWT's generality (any algorithm, key preparation and DER sniffing on every call, parsing the
header twice to pick a key by `kid`) cost about 0.3 ms a token on these machines, a third of the
event loop's time per join. What is left is small enough to check by eye:

- the token is ASCII `header.payload.signature`, each part unpadded base64url in its one
  canonical form (RFC 4648 3.5: no padding, unused trailing bits zero), so one signature has
  exactly one spelling and a token cannot be varied without breaking it (PyJWT, like Python's
  decoder, ignores the trailing bits and so accepts up to 16 spellings of one signature);
- the header is a JSON object whose `alg` is exactly HS256, with no `crit` (RFC 7515 4.1.11:
  extensions we do not understand must be refused);
- the key is chosen by the caller from the header (an unknown `kid` is refused by the caller)
  and the signature compared in constant time before the payload is even decoded;
- the payload must be a JSON object. Its claims are judged by `gateway.domain.invite_token`.

PyJWT stays the reference: tests check that each accepts what the other signs and refuses what
the other refuses.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

from gateway.domain.invite_token import ALGORITHM

_COMPACT = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)")
_SIGNATURE_BYTES = 32  # HMAC-SHA256


class MalformedToken(ValueError):
    """Not a well-formed compact HS256 token (nothing about its content is said)."""


class RefusedAlgorithm(MalformedToken):
    """The header names another algorithm (or none), or extensions it requires us to know."""


class BadSignature(ValueError):
    """Well-formed, but not signed with the key it names."""


def sign(claims: Mapping[str, Any], key: bytes, *, kid: str | None = None) -> str:
    header: dict[str, str] = {"alg": ALGORITHM, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    signing_input = _b64(_json(header)) + b"." + _b64(_json(claims))
    signature = _mac(key, signing_input)
    return (signing_input + b"." + _b64(signature)).decode("ascii")


def header_of(token: str) -> dict[str, Any]:
    """The header, unverified: only for choosing the key. Checks the token's shape first."""
    match = _COMPACT.fullmatch(token)
    if match is None:
        raise MalformedToken
    part = match.group(1)
    known = _headers.get(part)
    if known is not None:
        return dict(known)
    header = _object(part)
    if header.get("alg") != ALGORITHM or "crit" in header:
        raise RefusedAlgorithm
    if len(_headers) < _MAX_HEADERS and len(part) <= _MAX_HEADER_TEXT:
        _headers[part] = dict(header)
    return header


# Every token one key signs has the same header text ({"alg","typ","kid"}), so an accepted
# header is remembered by its text (a handful live at once: current, previous and media keys).
# Only accepted ones, bounded in number and size: headers sent by anyone cannot grow it.
# A remembered header is no verdict on any token: the signature is still checked each time.
_MAX_HEADERS, _MAX_HEADER_TEXT = 64, 256
_headers: dict[str, dict[str, Any]] = {}


def verified_payload(token: str, key: bytes) -> dict[str, Any]:
    """The payload of a token signed with `key`; call `header_of` first to choose the key."""
    match = _COMPACT.fullmatch(token)
    if match is None:
        raise MalformedToken
    signature = _unb64(match.group(3))
    if len(signature) != _SIGNATURE_BYTES:
        raise MalformedToken
    signing_input = token[: match.end(2)].encode("ascii")
    if not hmac.compare_digest(_mac(key, signing_input), signature):
        raise BadSignature
    return _object(match.group(2))


# HMAC-SHA256 (RFC 2104) from hashlib objects with the key's pads hashed once. Not
# hmac.digest: OpenSSL's one-shot HMAC releases the GIL, and on a busy gateway the event loop
# then waits for the database threads to give it back (measured: 9 us alone, 220 us under load).
# hashlib keeps the GIL for inputs this small. Tests compare it with hmac.digest and PyJWT.
_BLOCK = 64
_pads: dict[bytes, tuple[Any, Any]] = {}


def _mac(key: bytes, data: bytes) -> bytes:
    pads = _pads.get(key)
    if pads is None:
        block = hashlib.sha256(key).digest() if len(key) > _BLOCK else key
        block = block.ljust(_BLOCK, b"\0")
        pads = (
            hashlib.sha256(bytes(b ^ 0x36 for b in block)),
            hashlib.sha256(bytes(b ^ 0x5C for b in block)),
        )
        if len(_pads) < 64:  # a handful of keys live at once (current, previous, media)
            _pads[key] = pads
    inner, outer = pads[0].copy(), pads[1].copy()
    inner.update(data)
    outer.update(inner.digest())
    return outer.digest()


def _object(part: str) -> dict[str, Any]:
    try:
        value = json.loads(_unb64(part))
    except (ValueError, RecursionError):  # bad UTF-8 or JSON; ints past the digit limit
        raise MalformedToken from None
    if not isinstance(value, dict):
        raise MalformedToken
    return value


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def _unb64(part: str) -> bytes:
    if len(part) % 4 == 1:  # no base64 text has this length
        raise MalformedToken
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise MalformedToken from None
    # Canonical only: the decoder ignores unused trailing bits, so "...Q" and "...R" can decode
    # to the same bytes; re-encoding must give back exactly the text received.
    if _b64(raw) != part.encode("ascii"):
        raise MalformedToken
    return raw
