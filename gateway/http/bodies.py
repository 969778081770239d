"""Request bodies: bounded, strict JSON into frozen pydantic models (unknown fields refused)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.domain.errors import ErrorCode, Refusal

M = TypeVar("M", bound=BaseModel)

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]
Purpose = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_:]{1,64}$")]
# Printable text: no control, format (bidi overrides, zero-width) or separator characters.
PlainText = Annotated[
    str, Field(pattern=r"^[^\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]*$")
]
Name = Annotated[str, Field(min_length=1, max_length=400)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VettingBody(Body):
    kind: Annotated[str, Field(min_length=1, max_length=64)]
    checked_on: date
    expires_on: date


class StaffBody(Body):
    name: Name
    email: Annotated[str, Field(min_length=3, max_length=320)]
    roles: Annotated[list[Literal["tutor", "observer", "dsl", "admin"]], Field(min_length=1)]
    vetting: VettingBody | None = None


class GuardianBody(Body):
    name: Name
    contact: Annotated[str, Field(min_length=3, max_length=320)]


class ChildBody(Body):
    name: Name
    date_of_birth: date
    guardian_ids: Annotated[list[Id], Field(min_length=1, max_length=10)]


class EvidenceBody(Body):
    method: Literal["signed_form", "e_signature", "written_email"]
    reference: Annotated[PlainText, Field(min_length=1, max_length=200)]
    dated: date


class ConsentBody(Body):
    subject_kind: Literal["staff", "child", "guardian"]
    subject_id: Id
    purpose: Purpose
    action: Literal["give", "withdraw"]
    given_by_kind: Literal["staff", "child", "guardian"]
    given_by_id: Id
    evidence: EvidenceBody | None = None


class SessionBody(Body):
    kind: Literal["tutoring", "group", "livestream"]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    host_staff_id: Id
    starts_at: datetime
    ends_at: datetime
    recording_purpose: Annotated[str, Field(max_length=64)] | None = None
    password: Annotated[str, Field(min_length=6, max_length=128)] | None = None
    out_of_hours_approved_by: Id | None = None


class ParticipantBody(Body):
    person_kind: Literal["staff", "child", "guardian"]
    person_id: Id
    role: Literal["observer", "child", "guardian", "viewer"]


class JoinBody(Body):
    token: Annotated[str, Field(min_length=1, max_length=4096)]
    password: Annotated[str, Field(max_length=128)] | None = None


class LeaveBody(Body):
    token: Annotated[str, Field(min_length=1, max_length=4096)]


class EmptyBody(Body):
    pass


async def parse_body(request: web.Request, model: type[M], limit: int) -> M:
    if request.content_length is not None and request.content_length > limit:
        raise Refusal(ErrorCode.BODY_TOO_LARGE, f"The body is over {limit} bytes.")
    raw = await _read_bounded(request, limit)
    if not raw.strip() and model is EmptyBody:
        raw = b"{}"
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # incl. hostile nesting and huge numbers
        raise Refusal(ErrorCode.BODY_INVALID_JSON, "The body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise Refusal(ErrorCode.BODY_INVALID, "The body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        if first["type"] == "extra_forbidden":
            raise Refusal(ErrorCode.BODY_UNKNOWN_FIELD, f"Unknown field: {where}.") from exc
        # The message names the field and the rule, never the value sent.
        raise Refusal(ErrorCode.BODY_INVALID, f"{where}: {first['msg']}.") from exc


async def _read_bounded(request: web.Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(16384):
        size += len(chunk)
        if size > limit:
            raise Refusal(ErrorCode.BODY_TOO_LARGE, f"The body is over {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


class OfferBody(Body):
    credential: Annotated[str, Field(min_length=1, max_length=4096)]
    sdp: Annotated[str, Field(min_length=1, max_length=200_000)]


class ConcernBody(Body):
    token: Annotated[str, Field(min_length=1, max_length=4096)]
    note: Annotated[str, Field(max_length=2000)] | None = None


class RemoveBody(Body):
    token: Annotated[str, Field(min_length=1, max_length=4096)]
    identity: Annotated[str, Field(min_length=1, max_length=64)]
