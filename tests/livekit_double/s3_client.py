"""How LiveKit Egress uploads a finished file to S3-compatible storage (what its S3 client does
on the wire), for the double: SigV4-signed PutObject, or a multipart upload. Written from
AWS's SigV4 description and checked against AWS's published example (tests/egress)."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import aiohttp
from livekit.protocol import egress as eg

__all__ = ["sign_s3", "upload_file"]


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign_s3(
    method: str,
    url: str,
    query: list[tuple[str, str]],
    body: bytes,
    access_key: str,
    secret: str,
    region: str,
    when: datetime,
    extra: dict[str, str] | None = None,
    payload_hash: str | None = None,
) -> dict[str, str]:
    """The headers of a SigV4-signed S3 request."""
    parts = urlsplit(url)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    payload = payload_hash or hashlib.sha256(body).hexdigest()
    headers = {
        "host": parts.netloc,
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload,
        **{k.lower(): v for k, v in (extra or {}).items()},
    }
    names = sorted(headers)
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query)
    )
    canonical = "\n".join(
        [
            method,
            parts.path,
            canonical_query,
            "".join(f"{n}:{headers[n].strip()}\n" for n in names),
            ";".join(names),
            payload,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret).encode(), day), region), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope},"
        f"SignedHeaders={';'.join(names)},Signature={signature}"
    )
    del headers["host"]  # aiohttp sends it
    return headers


async def upload_file(
    http: aiohttp.ClientSession,
    target: eg.S3Upload,
    key: str,
    data: bytes,
    *,
    part_bytes: int | None = None,
    reverse_parts: bool = False,
    secret: str | None = None,
) -> bool:
    """Upload `data` as egress would; True when the storage took it whole."""
    base = f"{target.endpoint.rstrip('/')}/{target.bucket}/{key}"
    signing_secret = target.secret if secret is None else secret

    async def call(method: str, query: list[tuple[str, str]], body: bytes) -> tuple[int, str]:
        headers = sign_s3(
            method,
            base,
            query,
            body,
            target.access_key,
            signing_secret,
            target.region,
            datetime.now(UTC),
        )
        async with http.request(method, base, params=query, data=body, headers=headers) as r:
            return r.status, await r.text()

    if part_bytes is None or len(data) <= part_bytes:
        status, _ = await call("PUT", [], data)
        return status == 200
    status, text = await call("POST", [("uploads", "")], b"")
    found = re.search(r"<UploadId>([^<]+)</UploadId>", text)
    if status != 200 or found is None:
        return False
    upload_id = found.group(1)
    parts = [data[i : i + part_bytes] for i in range(0, len(data), part_bytes)]
    order = list(range(len(parts)))
    if reverse_parts:
        order.reverse()
    for index in order:
        status, _ = await call(
            "PUT", [("partNumber", str(index + 1)), ("uploadId", upload_id)], parts[index]
        )
        if status != 200:
            return False
    listing = "".join(
        f"<Part><PartNumber>{n + 1}</PartNumber><ETag>x</ETag></Part>" for n in range(len(parts))
    )
    status, _ = await call(
        "POST",
        [("uploadId", upload_id)],
        f"<CompleteMultipartUpload>{listing}</CompleteMultipartUpload>".encode(),
    )
    return status == 200
