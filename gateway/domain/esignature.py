"""Consent given online with an electronic signature (R7, R11): what is shown, and what is kept.

A consent page shows, for each purpose the policy lists, what it means in plain words (what is
recorded, who may see it, how long it is kept, how to withdraw) and one statement to sign. The
signer types their name. What is kept, append-only, with the consent record it makes valid:
the typed name, the exact text shown (every line, the statement and the policy version among
them), its SHA-256, the policy's version and digest, and the time. A child's own assent (from
the policy's `child_assent_age`) is shown in words for a child and signed by the child.

Everything here is pure: the text is a function of the policy, the purpose, the person it is
about and who signs, so the page and the check of a posted form compute the same text, and a
form signed over wording that has since changed (a new policy version) is refused.
"""

from __future__ import annotations

import enum
import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.models import PARTICIPATION, RECORDING_PREFIX, PersonKind
from gateway.domain.policy import Policy

TYPED_NAME_MAX = 120
DIGEST_LENGTH = 64


class Signer(enum.StrEnum):
    """Who signs the statement, which decides its words."""

    GUARDIAN = "guardian"  # for their child
    CHILD = "child"  # their own assent, in words for a child
    SELF = "self"  # their own consent to being recorded (a member of staff, or a guardian)


@dataclass(frozen=True, slots=True)
class Wording:
    """One purpose explained: a heading, the plain-words paragraphs and the statement signed."""

    purpose: str
    heading: str
    points: tuple[tuple[str, str], ...]  # (question, answer): what, who sees, how long, withdraw
    statement: str
    policy_line: str

    @property
    def text(self) -> str:
        """Exactly what the page shows, line by line: what the signature's hash covers."""
        lines = [self.heading]
        lines += [f"{question} {answer}" for question, answer in self.points]
        lines += [self.statement, self.policy_line]
        return "\n".join(lines)

    @property
    def digest(self) -> str:
        return shown_digest(self.text)


@dataclass(frozen=True, slots=True)
class ESignature:
    """The evidence kept for one consent given online (append-only, one per consent record)."""

    id: str
    org_id: str
    consent_record_id: str
    signer_kind: PersonKind
    signer_id: str
    typed_name: str
    shown_text: str
    shown_sha256: str
    policy_version: str
    policy_digest: str
    signed_at: datetime
    link_id: str | None = None  # the guardian's consent link it came through, if any


def shown_digest(text: str) -> str:
    """SHA-256 (hex) of the text exactly as shown, UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def purpose_title(purpose: str) -> str:
    """'recording:lesson_review' -> 'Recording for lesson review'."""
    if purpose == PARTICIPATION:
        return "Taking part in live online sessions"
    name = purpose.removeprefix(RECORDING_PREFIX).replace("_", " ")
    return f"Recording for {name}"


def first_name(name: str) -> str:
    return name.split()[0] if name.split() else name


def wording(policy: Policy, purpose: str, signer: Signer, subject_name: str) -> Wording:
    """The words shown for `purpose` to `signer`; `subject_name` is the child's registered
    name (a guardian or the child signs) or the member of staff's own. Raises PURPOSE_UNKNOWN
    for a purpose the policy does not list."""
    if purpose not in policy.consent_purposes() or (
        signer is Signer.SELF and purpose == PARTICIPATION
    ):
        raise Refusal(ErrorCode.PURPOSE_UNKNOWN, "This purpose is not in the policy.")
    policy_line = f"Policy version: {policy.label}"
    name = first_name(subject_name)
    withdraw_effect = (
        "your child can no longer join sessions."
        if purpose == PARTICIPATION
        else "recording of your child stops, and every recording with your child in it is "
        "destroyed, unless our safeguarding lead must keep it as evidence of a concern."
    )
    if purpose == PARTICIPATION:
        points = _participation_points(policy, signer, withdraw_effect)
        statement = _statement(signer, name, "take part in live online sessions", purpose)
        return Wording(purpose, purpose_title(purpose), points, statement, policy_line)
    rule = policy.recording.purposes[purpose.removeprefix(RECORDING_PREFIX)]
    media = "sound only" if rule.audio_only else "sound and video"
    if signer is Signer.CHILD:
        points = (
            ("Why?", rule.description),
            (
                "What do we record?",
                "Your voice only." if rule.audio_only else "Your voice and your face.",
            ),
            (
                "Who can watch it?",
                "Only a few grown-ups at the organisation who are allowed to, and only when they "
                "have a good reason.",
            ),
            (
                "How long do we keep it?",
                f"{rule.retention_days} days. Then we delete it for ever.",
            ),
            (
                "Can I change my mind?",
                "Yes, at any time. Tell your grown-up, and they can press Withdraw on this page. "
                "Saying no is fine: nobody will be cross.",
            ),
        )
    else:
        own = signer is Signer.SELF
        points = (
            ("Why:", rule.description),
            (
                "What is recorded:",
                f"{media} of the session, and only of people who have agreed to it.",
            ),
            ("Who may see it:", policy.recording.access),
            (
                "How long it is kept:",
                f"{rule.retention_days} days, then it is destroyed. {policy.recording.storage}",
            ),
            (
                "How to withdraw:",
                "press Withdraw on this page at any time. It takes effect straight away: "
                + (
                    "you are no longer recorded, and every recording with you in it is "
                    "destroyed, unless our safeguarding lead must keep it as evidence of a "
                    "concern."
                    if own
                    else withdraw_effect
                ),
            ),
        )
    statement = _statement(signer, name, f"be recorded for {_purpose_words(purpose)}", purpose)
    return Wording(purpose, purpose_title(purpose), points, statement, policy_line)


def _purpose_words(purpose: str) -> str:
    return purpose.removeprefix(RECORDING_PREFIX).replace("_", " ")


def _participation_points(
    policy: Policy, signer: Signer, withdraw_effect: str
) -> tuple[tuple[str, str], ...]:
    if signer is Signer.CHILD:
        return (
            (
                "What is it?",
                "Lessons and groups on a video call, with at least "
                f"{policy.supervision.min_vetted_adults} checked grown-ups there.",
            ),
            ("Who can see me?", "The people in the session. They see only your first name."),
            ("How long does my yes last?", "Until you or your grown-up change it."),
            (
                "Can I change my mind?",
                "Yes, at any time. Tell your grown-up, and they can press Withdraw on this page.",
            ),
        )
    return (
        (
            "What it is:",
            "your child may join live online sessions with their personal invite. A child "
            f"waits until at least {policy.supervision.min_vetted_adults} checked adults are "
            "there. Taking part records nothing: recording needs its own consent below.",
        ),
        (
            "Who may see your child:",
            "the people registered for the same session, who see a shortened name only.",
        ),
        ("How long it lasts:", "until you withdraw it."),
        (
            "How to withdraw:",
            f"press Withdraw on this page at any time. It takes effect straight away: "
            f"{withdraw_effect}",
        ),
    )


def _statement(signer: Signer, name: str, what: str, purpose: str) -> str:
    if signer is Signer.GUARDIAN:
        return (
            f"I am {name}'s parent or carer, and I agree that {name} may {what}, as set out above."
        )
    if signer is Signer.CHILD:
        return f"I am {name}. I have read this (or had it read to me), and I am happy to {what}."
    return f"I, {name}, agree to {what}, as set out above."


def check_typed_name(value: str) -> str:
    """The name a signer types: 1 to TYPED_NAME_MAX printable characters, spaces collapsed."""
    typed = " ".join(unicodedata.normalize("NFC", value).split())
    if not typed or len(typed) > TYPED_NAME_MAX or not typed.isprintable():
        raise Refusal(
            ErrorCode.BODY_INVALID,
            f"Type your name to sign (up to {TYPED_NAME_MAX} characters).",
        )
    return typed


def check_shown(expected: Wording, posted_digest: str) -> None:
    """The form was signed over the wording shown now: a page opened before the policy (or a
    name) changed is refused, so the text kept is the text that was read."""
    if len(posted_digest) != DIGEST_LENGTH or posted_digest != expected.digest:
        raise Refusal(
            ErrorCode.CONFLICT,
            "The wording has changed since this page was opened. Read it again, then sign.",
        )
