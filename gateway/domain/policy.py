"""The organisation's written policy (R11), as a validated, frozen model.

The policy file is TOML; `parse_policy` turns its text into a `Policy` or raises `PolicyError`
naming the key and the reason. Reading the file is the caller's business (no I/O here).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
import zoneinfo
from datetime import time
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PURPOSE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
EMAIL_ADDRESS = re.compile(r"^[^@\s<>\"(),;:]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")
DOMAIN_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")

NameStyle = Literal["first_name_initial", "first_name", "role_number"]


class PolicyError(ValueError):
    """A policy file that cannot be enforced: which key, and why."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InvitePolicy(_Section):
    ttl_hours: Annotated[StrictInt, Field(ge=1, le=24 * 14)] = 48
    password_required: StrictBool = True
    password_max_attempts: Annotated[StrictInt, Field(ge=1, le=100)] = 5
    source_max_attempts: Annotated[StrictInt, Field(ge=1, le=10_000)] = 20
    org_max_attempts: Annotated[StrictInt, Field(ge=1, le=100_000)] = 200
    attempt_window_minutes: Annotated[StrictInt, Field(ge=1, le=24 * 60)] = 15
    # Floods of joins, per gateway process and per minute (429 past them).
    joins_per_minute_per_invite: Annotated[StrictInt, Field(ge=1, le=1_000_000)] = 30
    joins_per_minute_per_source: Annotated[StrictInt, Field(ge=1, le=1_000_000)] = 600


class StaffPolicy(_Section):
    allowed_email_domains: Annotated[tuple[str, ...], Field(min_length=1)]
    accepted_vetting_kinds: Annotated[tuple[str, ...], Field(min_length=1)] = (
        "dbs_enhanced",
        "dbs_enhanced_barred",
    )

    @field_validator("allowed_email_domains")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for domain in value:
            if not DOMAIN_NAME.match(domain):
                raise ValueError(f"{domain!r} is not a lower-case domain name")
        return value


class HoursPolicy(_Section):
    time_zone: str = "Europe/London"
    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = (
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
    )
    start: str = "08:00"
    end: str = "20:00"
    out_of_hours: Literal["refuse", "dsl_approval"] = "refuse"
    early_join_minutes: Annotated[StrictInt, Field(ge=0, le=120)] = 15

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        try:
            time.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a time of day like 08:00") from exc
        return value

    @model_validator(mode="after")
    def _order(self) -> HoursPolicy:
        if time.fromisoformat(self.start) >= time.fromisoformat(self.end):
            raise ValueError("start must be before end")
        return self

    @property
    def start_time(self) -> time:
        return time.fromisoformat(self.start)

    @property
    def end_time(self) -> time:
        return time.fromisoformat(self.end)


class SupervisionPolicy(_Section):
    min_vetted_adults: Annotated[StrictInt, Field(ge=2, le=10)] = 2
    counting_roles: Annotated[tuple[Literal["host", "observer"], ...], Field(min_length=1)] = (
        "host",
        "observer",
    )
    grace_seconds: Annotated[StrictInt, Field(ge=0, le=600)] = 60
    action: Literal["hold_children", "end_session"] = "hold_children"


class DisplayNamePolicy(_Section):
    adults: NameStyle = "first_name_initial"
    children: NameStyle = "first_name_initial"
    viewers: NameStyle = "role_number"


DEFAULT_RESERVED_TITLES = (
    "Teacher",
    "Tutor",
    "Host",
    "Observer",
    "Safeguarding Lead",
    "Designated Safeguarding Lead",
    "DSL",
    "Admin",
    "Administrator",
    "Moderator",
    "Staff",
    "Head Teacher",
)


class NamesPolicy(_Section):
    """Role titles nobody may be registered as (or with a name beginning with): compared
    after case-folding and confusable skeleton, so look-alikes are refused too."""

    reserved: Annotated[tuple[str, ...], Field(max_length=200)] = DEFAULT_RESERVED_TITLES

    @field_validator("reserved")
    @classmethod
    def _titles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for title in value:
            if not 1 <= len(title.strip()) <= 64 or not title.isprintable():
                raise ValueError("each reserved title is 1 to 64 printable characters")
            if not any(c.isalpha() for c in title):
                raise ValueError(f"reserved title {title!r} has no letter")
            if title.casefold() in seen:
                raise ValueError(f"reserved title {title!r} is listed twice")
            seen.add(title.casefold())
        return value


class RecordingPurpose(_Section):
    description: Annotated[str, Field(min_length=1, max_length=500)]
    retention_days: Annotated[StrictInt, Field(ge=1, le=3650)]
    audio_only: StrictBool = False
    # Who besides the designated safeguarding lead may watch these recordings, with a stated
    # reason (R13): "admin", and "tutor" (only recordings of sessions they hosted).
    viewers: tuple[Literal["admin", "tutor"], ...] = ("admin",)


class RecordingPolicy(_Section):
    purposes: dict[str, RecordingPurpose] = Field(default_factory=dict)
    child_declines: Literal["exclude", "block"] = "exclude"
    # What happens to a recording cut short by a crash (the gateway killed, its storage gone):
    # kept, sealed and marked incomplete (its retention as its purpose says), or destroyed.
    after_crash: Literal["keep_incomplete", "destroy"] = "keep_incomplete"
    storage: str = "Encrypted on the organisation's own storage; each recording has its own key."
    access: str = "Admins and the designated safeguarding lead, with a stated reason."

    @field_validator("purposes")
    @classmethod
    def _names(cls, value: dict[str, RecordingPurpose]) -> dict[str, RecordingPurpose]:
        for name in value:
            if not PURPOSE_NAME.match(name):
                raise ValueError(f"purpose name {name!r} must be lower_snake_case")
        return value


class ConsentPolicy(_Section):
    child_assent_age: Annotated[StrictInt, Field(ge=0, le=18)] = 12
    staff_consent_required: StrictBool = True
    accepted_evidence: Annotated[
        tuple[Literal["signed_form", "e_signature", "written_email"], ...], Field(min_length=1)
    ] = ("signed_form", "e_signature")


class LivestreamPolicy(_Section):
    viewers_hidden_from_each_other: StrictBool = True
    viewers_can_publish: Literal[False] = False  # R18: audiences never broadcast
    max_viewers: Annotated[StrictInt, Field(ge=1, le=10_000)] = 200


class ContactPolicy(_Section):
    """Who a child or parent is told to contact when something is wrong (R17)."""

    safeguarding_contact: Annotated[str, Field(min_length=1, max_length=200)] = (
        "the designated safeguarding lead"
    )
    # A message for the DSL still undelivered after this long is also sent to the second
    # contact (DESIGN §3 "Notifications").
    escalate_after_minutes: Annotated[StrictInt, Field(ge=1, le=24 * 60)] = 30
    second_contact: Annotated[str, Field(max_length=320)] | None = None

    @field_validator("second_contact")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL_ADDRESS.match(value):
            raise ValueError(f"{value!r} is not an e-mail address")
        return value


class ConcernsPolicy(_Section):
    """What happens when a participant reports a concern (R17). The DSL is always told who
    raised it; the session's host, who may be the person it is about, learns only that a concern
    was raised and that the DSL is being told, unless `host_sees_reporter`."""

    host_sees_reporter: StrictBool = False


class Policy(_Section):
    version: Annotated[str, Field(min_length=1, max_length=64)]
    invites: InvitePolicy = Field(default_factory=InvitePolicy)
    staff: StaffPolicy
    hours: HoursPolicy = Field(default_factory=HoursPolicy)
    supervision: SupervisionPolicy = Field(default_factory=SupervisionPolicy)
    display_names: DisplayNamePolicy = Field(default_factory=DisplayNamePolicy)
    names: NamesPolicy = Field(default_factory=NamesPolicy)
    recording: RecordingPolicy = Field(default_factory=RecordingPolicy)
    consent: ConsentPolicy = Field(default_factory=ConsentPolicy)
    livestream: LivestreamPolicy = Field(default_factory=LivestreamPolicy)
    contact: ContactPolicy = Field(default_factory=ContactPolicy)
    concerns: ConcernsPolicy = Field(default_factory=ConcernsPolicy)
    digest: str = ""  # sha256 of the file's text; set by parse_policy, recorded with decisions

    @property
    def label(self) -> str:
        """What decisions record as 'the policy that applied': version plus content digest."""
        return f"{self.version}@{self.digest[:12]}"

    def recording_purpose_names(self) -> tuple[str, ...]:
        return tuple(sorted(self.recording.purposes))

    def consent_purposes(self) -> tuple[str, ...]:
        return ("participation", *(f"recording:{p}" for p in self.recording_purpose_names()))


def parse_policy(text: str) -> Policy:
    """Validate a policy file's text. Raises PolicyError(key, reason) on the first problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError("(file)", f"not valid TOML: {exc}") from exc
    if "digest" in raw:
        raise PolicyError("digest", "is computed by the gateway and cannot be set")
    raw["digest"] = hashlib.sha256(text.encode()).hexdigest()
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(file)"
        reason = first["msg"]
        if first["type"] == "extra_forbidden":
            reason = "unknown key (not part of the policy schema)"
        raise PolicyError(key, reason) from exc
