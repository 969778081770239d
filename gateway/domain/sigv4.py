"""AWS Signature Version 4 over an HTTP request (header form), as S3 clients sign uploads.

The gateway receives LiveKit Egress's uploads on an S3-compatible endpoint
(adapters/recorder_livekit.py): each egress gets its own access key and secret, and every
request it makes is checked here before a byte of it is used. Pure: the caller passes the
request's parts and the time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

__all__ = [
    "ALGORITHM",
    "Credential",
    "SignatureInvalid",
    "canonical_request",
    "parse_authorization",
    "signature",
    "verify",
]

ALGORITHM = "AWS4-HMAC-SHA256"
#: How far a request's x-amz-date may be from now (AWS allows 15 minutes).
MAX_SKEW = timedelta(minutes=15)


class SignatureInvalid(ValueError):
    """The request is not signed by the holder of the secret (one reason, never the secret)."""


@dataclass(frozen=True, slots=True)
class Credential:
    access_key: str
    date: str  # YYYYMMDD
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def parse_authorization(header: str) -> Credential:
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureInvalid("not an AWS4-HMAC-SHA256 signature")
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, _, value = item.strip().partition("=")
        parts[name] = value
    try:
        access_key, date, region, service, terminal = parts["Credential"].split("/")
        signed = tuple(parts["SignedHeaders"].split(";"))
        given = parts["Signature"]
    except (KeyError, ValueError):
        raise SignatureInvalid("malformed Authorization header") from None
    if terminal != "aws4_request" or not signed or not given:
        raise SignatureInvalid("malformed Authorization header")
    return Credential(access_key, date, region, service, signed, given)


def _uri_encode(text: str, *, slash: bool) -> str:
    return quote(text, safe="-_.~" + ("/" if slash else ""))


def canonical_request(
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    payload_hash: str,
) -> str:
    """`path` as sent on the wire (already percent-encoded: S3 does not encode it twice);
    `query` decoded pairs; `headers` with lower-case names."""
    canonical_query = "&".join(
        f"{_uri_encode(k, slash=False)}={_uri_encode(v, slash=False)}" for k, v in sorted(query)
    )
    lines = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in signed_headers)
    return "\n".join(
        [method, path or "/", canonical_query, lines, ";".join(signed_headers), payload_hash]
    )


def signature(secret: str, credential: Credential, amz_date: str, canonical: str) -> str:
    to_sign = "\n".join(
        [ALGORITHM, amz_date, credential.scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + secret).encode()
    for part in (credential.date, credential.region, credential.service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def verify(
    secret: str,
    credential: Credential,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    now: datetime,
) -> str:
    """Check the signature and the date; returns the payload hash the client signed
    (hex SHA-256, or one of the UNSIGNED/STREAMING markers: the caller handles the body)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    required = {"host", "x-amz-date", "x-amz-content-sha256"}
    if not required <= set(credential.signed_headers):
        raise SignatureInvalid("host, x-amz-date and x-amz-content-sha256 must be signed")
    if any(name not in lowered for name in credential.signed_headers):
        raise SignatureInvalid("a signed header is missing")
    amz_date = lowered["x-amz-date"]
    try:
        at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise SignatureInvalid("malformed x-amz-date") from None
    if abs(now - at) > MAX_SKEW or credential.date != amz_date[:8]:
        raise SignatureInvalid("the request's date is too far from now")
    payload_hash = lowered["x-amz-content-sha256"]
    canonical = canonical_request(
        method, path, query, lowered, credential.signed_headers, payload_hash
    )
    expected = signature(secret, credential, amz_date, canonical)
    if not hmac.compare_digest(expected, credential.signature):
        raise SignatureInvalid("signature does not match")
    return payload_hash
