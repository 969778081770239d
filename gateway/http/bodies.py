"""Request bodies and query strings: bounded, strict input into frozen pydantic models.

Unknown fields and parameters are refused; bodies must be sent as `application/json`. The
same models give the OpenAPI document its schemas, so what it promises is what is checked.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime
from typing import Annotated, Literal, TypeVar

from aiohttp import web
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.names import MAX_NAME_CODE_POINTS
from gateway.domain.registry_rules import EMAIL_PATTERN, PLAIN_TEXT_PATTERN

M = TypeVar("M", bound=BaseModel)
JSON = "application/json"

# Instants the gateway stores as UTC microseconds: an aware time written with a year from 1970
# to 8999. The year is checked as written (the schema says so with a pattern), so its UTC
# conversion is always within what datetime and the database columns hold.
FIRST_YEAR, LAST_YEAR = 1970, 8999
INSTANT_PATTERN = r"^(19[7-9][0-9]|[2-8][0-9]{3})-"


def _in_range(instant: datetime) -> datetime:
    if not FIRST_YEAR <= instant.year <= LAST_YEAR:
        raise ValueError(f"must be in the years {FIRST_YEAR} to {LAST_YEAR}")
    return instant


def _ascii_digits(value: object) -> object:
    # int() takes "²", "①" or "١" as digits; a query or JSON count never is.
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("must be a whole number")
    return value


Instant = Annotated[
    AwareDatetime,
    AfterValidator(_in_range),
    Field(
        description="A time with its UTC offset, in the years 1970 to 8999.",
        json_schema_extra={"pattern": INSTANT_PATTERN},
    ),
]
# After the bounds, so the schema keeps them: Annotated[int, Field(ge=1, le=9), ASCII_DIGITS].
ASCII_DIGITS = BeforeValidator(_ascii_digits)

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]
Purpose = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_:]{1,64}$")]
# Printable text: no control, format (bidi overrides, zero-width) or separator characters.
PlainText = Annotated[
    str, Field(pattern=r"^[^\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]*$")
]
# A person's name: the bounds of the stored column. Whether a name is acceptable (one script,
# not a role title...) is a rule, refused with 422 name_invalid (gateway/domain/names.py).
Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_NAME_CODE_POINTS,
        description="A person's name; refused with 422 name_invalid when it breaks a naming "
        "rule (mixed scripts, a role title, invisible characters).",
    ),
]
Email = Annotated[
    str,
    Field(
        min_length=3,
        max_length=318,
        pattern=EMAIL_PATTERN,
        json_schema_extra={"format": "email"},
        description="An organisational e-mail address; its domain must be one the "
        "organisation's policy allows (422 email_domain_not_allowed names them).",
    ),
]
Contact = Annotated[str, Field(min_length=3, max_length=320, pattern=PLAIN_TEXT_PATTERN)]
Title = Annotated[str, Field(min_length=1, max_length=200, pattern=PLAIN_TEXT_PATTERN)]
VettingKind = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="A kind of vetting check the policy accepts (422 vetting_kind_not_accepted "
        "names them).",
    ),
]
StaffRoleName = Literal["tutor", "observer", "dsl", "admin"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VettingBody(Body):
    kind: VettingKind
    checked_on: date
    expires_on: date


class StaffBody(Body):
    name: Name
    email: Email
    roles: Annotated[list[StaffRoleName], Field(min_length=1, max_length=8)]
    vetting: VettingBody | None = None


class StaffPatchBody(Body):
    """Fields left out (or null) stay as they are; a new vetting check replaces the old one."""

    name: Name | None = None
    email: Email | None = None
    roles: Annotated[list[StaffRoleName], Field(min_length=1, max_length=8)] | None = None
    vetting: VettingBody | None = None


class GuardianBody(Body):
    name: Name
    contact: Contact


class GuardianPatchBody(Body):
    name: Name | None = None
    contact: Contact | None = None


class ChildPatchBody(Body):
    name: Name | None = None
    date_of_birth: date | None = None


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
    title: Title
    host_staff_id: Id
    starts_at: Instant
    ends_at: Instant
    recording_purpose: Purpose | None = None
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


class Query(BaseModel):
    """A query string: each parameter at most once, unknown ones refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Q = TypeVar("Q", bound=Query)


def parse_query(request: web.Request, model: type[Q]) -> Q:
    """The one way query strings are read: into `model`, or a `query_invalid` refusal naming
    the parameter and the rule (never the value sent)."""
    values: dict[str, str] = {}
    known = {field.alias or name for name, field in model.model_fields.items()}
    for name, value in request.query.items():
        if name not in known:
            raise Refusal(ErrorCode.QUERY_INVALID, f"Unknown query parameter: {name[:64]}.")
        if name in values:
            raise Refusal(ErrorCode.QUERY_INVALID, f"{name} is given once.")
        values[name] = value
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "query"
        raise Refusal(ErrorCode.QUERY_INVALID, f"{where}: {first['msg']}.") from exc


async def parse_body(request: web.Request, model: type[M], limit: int) -> M:
    # A body that is not declared JSON is refused unread (a form post or text/plain from a
    # page on another site must not be taken as an API call); only an empty body may come
    # without a type, where no body is needed.
    if request.content_type != JSON and not (
        model is EmptyBody and request.content_length in (None, 0) and not request.body_exists
    ):
        raise Refusal(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "The body must be application/json.")
    raw = await read_bounded(request, limit)
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


async def read_bounded(request: web.Request, limit: int) -> bytes:
    """The body, refused (413 body_too_large) past `limit` bytes: a declared length before
    anything is read, a chunked body as it arrives."""
    length = request.content_length
    if length is not None:
        if length > limit:
            raise Refusal(ErrorCode.BODY_TOO_LARGE, f"The body is over {limit} bytes.")
        # Read exactly that, in one call. A body cut short reads as what arrived, which is
        # then not valid JSON.
        try:
            return await request.content.readexactly(length)
        except asyncio.IncompleteReadError as short:
            return short.partial
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


class RecordingStartBody(Body):
    """The host starts recording for a purpose the policy lists (R10)."""

    token: Annotated[str, Field(min_length=1, max_length=4096)]
    purpose: Annotated[str, Field(min_length=1, max_length=64)]


class RecordingTodayBody(Body):
    """A child's answer on the day (R8): happy to be recorded today, or not."""

    token: Annotated[str, Field(min_length=1, max_length=4096)]
    answer: Literal["yes", "no"]


class SessionRecordingBody(Body):
    purpose: Annotated[str, Field(min_length=1, max_length=64)]
