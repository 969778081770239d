"""The gateway's upload target for egress files (an S3 subset, adapters/recorder_livekit.py):
SigV4 as AWS publishes it, and every bad upload refused with nothing written: another
egress's secret, an unknown target, a body that is not the one signed, a replay once the file
is in, a signed streaming payload (the recording then fails loudly), parts too far ahead."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import aiohttp
import pytest
from livekit.protocol import egress as eg

from gateway.adapters.recorder_livekit import UPLOAD_BUCKET, UPLOAD_REGION, EgressUploads
from gateway.domain import sigv4
from gateway.http.egress_uploads_api import EGRESS_UPLOADS
from tests.livekit_double.s3_client import sign_s3, upload_file
from tests.plugins.gateway_server import Gateway

# AWS's published SigV4 example (S3, GET Object with a Range header).
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_SIGNATURE = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def test_sigv4_matches_aws_published_example() -> None:
    when = datetime(2013, 5, 24, tzinfo=UTC)
    headers = sign_s3(
        "GET",
        "https://examplebucket.s3.amazonaws.com/test.txt",
        [],
        b"",
        "AKIAIOSFODNN7EXAMPLE",
        AWS_SECRET,
        "us-east-1",
        when,
        extra={"Range": "bytes=0-9"},
    )
    assert headers["Authorization"].endswith("Signature=" + AWS_SIGNATURE)
    credential = sigv4.parse_authorization(headers["Authorization"])
    assert credential.signed_headers == ("host", "range", "x-amz-content-sha256", "x-amz-date")
    received = {**headers, "Host": "examplebucket.s3.amazonaws.com"}
    signed = sigv4.verify(AWS_SECRET, credential, "GET", "/test.txt", [], received, when)
    assert signed == EMPTY_SHA256
    with pytest.raises(sigv4.SignatureInvalid):
        sigv4.verify("another secret", credential, "GET", "/test.txt", [], received, when)
    with pytest.raises(sigv4.SignatureInvalid):  # replayed an hour later
        sigv4.verify(AWS_SECRET, credential, "GET", "/test.txt", [], received, when.replace(hour=1))


class Kept:
    """The recording's writer as the upload target sees it (the vault's tests cover
    encryption): what reached it, in order."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.sealed = False

    def append(self, data: bytes) -> None:
        self.data += data

    def seal(self) -> tuple[int, int]:
        self.sealed = True
        return len(self.data), 1

    def abort(self) -> None:
        pass


def target(gateway: Gateway, uploads: EgressUploads, upload_id: str, secret: str) -> eg.S3Upload:
    return eg.S3Upload(
        access_key=upload_id,
        secret=secret,
        region=UPLOAD_REGION,
        endpoint=gateway.base,
        bucket=UPLOAD_BUCKET,
    )


@pytest.fixture
async def http() -> aiohttp.ClientSession:
    session = aiohttp.ClientSession()
    yield session  # type: ignore[misc]
    await session.close()


async def test_an_upload_signed_with_its_own_secret_is_taken_whole(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    uploads = gateway.app[EGRESS_UPLOADS]
    kept, errors = Kept(), []
    upload = uploads.open(kept, "mp4", errors.append)
    s3 = target(gateway, uploads, upload.id, upload.secret)
    data = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
    taken = await upload_file(
        http, s3, upload.object_path, data, part_bytes=1000, reverse_parts=True
    )
    assert taken
    assert bytes(kept.data) == data and upload.finished and errors == []
    # a replay of the file once it is in changes nothing
    assert not await upload_file(http, s3, upload.object_path, b"other bytes")
    assert bytes(kept.data) == data


async def test_bad_uploads_are_refused_and_nothing_is_written(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    uploads = gateway.app[EGRESS_UPLOADS]
    kept, errors = Kept(), []
    upload = uploads.open(kept, "mp4", errors.append)
    other = uploads.open(Kept(), "mp4", errors.append)
    s3 = target(gateway, uploads, upload.id, upload.secret)
    url = f"{gateway.base}/{UPLOAD_BUCKET}/{upload.object_path}"

    # another egress's secret, an unknown target, no signature at all: one answer, 403
    assert not await upload_file(http, s3, upload.object_path, b"x", secret=other.secret)
    assert not await upload_file(http, s3, f"{'0' * 32}/recording.mp4", b"x")
    async with http.put(url, data=b"x") as answer:
        assert answer.status == 403
        assert "AccessDenied" in await answer.text()
    # the body is not the one that was signed
    now = datetime.now(UTC)
    headers = sign_s3("PUT", url, [], b"signed", upload.id, upload.secret, UPLOAD_REGION, now)
    async with http.put(url, data=b"tampered", headers=headers) as answer:
        assert answer.status == 400
    assert kept.data == b"" and not upload.finished and errors == []

    # parts too far ahead of the next one expected: slow down (S3 clients retry)
    uploads._max_waiting = 10
    start = sign_s3("POST", url, [("uploads", "")], b"", upload.id, upload.secret, "gateway", now)
    async with http.post(url, params=[("uploads", "")], headers=start) as answer:
        assert answer.status == 200
        upload_id = (await answer.text()).split("<UploadId>")[1].split("<")[0]
    query = [("partNumber", "2"), ("uploadId", upload_id)]
    part = sign_s3("PUT", url, query, b"x" * 64, upload.id, upload.secret, "gateway", now)
    async with http.put(url, params=query, data=b"x" * 64, headers=part) as answer:
        assert answer.status == 503 and "SlowDown" in await answer.text()
    assert kept.data == b""

    # a signed streaming payload is not supported: refused, and that recording fails loudly
    streaming = sign_s3(
        "PUT",
        url,
        [("partNumber", "1"), ("uploadId", upload_id)],
        b"",
        upload.id,
        upload.secret,
        "gateway",
        now,
        payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    )
    async with http.put(
        url, params=[("partNumber", "1"), ("uploadId", upload_id)], headers=streaming
    ) as answer:
        assert answer.status == 501
    assert kept.data == b"" and len(errors) == 1  # its recording is sealed incomplete
