"""The pure parts, as tables: when a consent link can be used, and the words a signature
covers (one text per policy, purpose, person and signer; hashed exactly as shown)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.domain.consent import consent_state
from gateway.domain.consent_links import (
    REVOKED,
    WITHDRAWAL_GRACE,
    ConsentLink,
    LinkFault,
    genuine,
    link_fault,
    link_token,
    may_give,
    may_withdraw,
    token_hash,
    token_link_id,
)
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.esignature import Signer, check_shown, check_typed_name, wording
from gateway.domain.models import (
    Child,
    ConsentAction,
    ConsentRecord,
    Evidence,
    EvidenceMethod,
    PersonKind,
)
from gateway.domain.policy import parse_policy
from tests.plugins.gateway_server import ROOT

KEY = b"k" * 32
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
POLICY = parse_policy((ROOT / "policies" / "default.toml").read_text())


def _link(**changes: object) -> tuple[ConsentLink, str]:
    expires = NOW + timedelta(days=7)
    token = link_token(KEY, "o" * 32, "a" * 32, "g" * 32, expires)
    link = ConsentLink(
        id="a" * 32,
        org_id="o" * 32,
        guardian_id="g" * 32,
        token_hash=token_hash(token),
        created_by="s" * 32,
        created_at=NOW,
        expires_at=expires,
    )
    return replace(link, **changes), token  # type: ignore[arg-type]


BOUND = {"used_at": NOW, "device_hash": "d" * 64}


@pytest.mark.parametrize(
    ("changes", "token_edit", "device", "at", "fault"),
    [
        ({}, None, None, NOW, None),  # first use, any browser
        (BOUND, None, "d" * 64, NOW, None),  # the browser it is bound to
        (BOUND, None, "e" * 64, NOW, LinkFault.USED_ELSEWHERE),
        (BOUND, None, None, NOW, LinkFault.USED_ELSEWHERE),
        ({}, None, None, NOW + timedelta(days=7), LinkFault.EXPIRED),
        (BOUND, None, "d" * 64, NOW + timedelta(days=8), LinkFault.EXPIRED),
        ({"guardian_id": "h" * 32}, None, None, NOW, LinkFault.ALTERED),  # another guardian's
        ({"expires_at": NOW + timedelta(days=70)}, None, None, NOW, LinkFault.ALTERED),
        ({"token_hash": "0" * 64}, None, None, NOW, LinkFault.ALTERED),
        ({}, "flip", None, NOW, LinkFault.ALTERED),
        ({}, "cut", None, NOW, LinkFault.MALFORMED),
        ({}, "junk", None, NOW, LinkFault.MALFORMED),
        # revoked unused (a newer link was sent): no browser can ever be bound to it
        ({"used_at": NOW, "device_hash": REVOKED}, None, None, NOW, LinkFault.REVOKED),
        ({"used_at": NOW, "device_hash": REVOKED}, None, REVOKED, NOW, LinkFault.REVOKED),
    ],
)
def test_when_a_link_can_be_used(
    changes: dict[str, object],
    token_edit: str | None,
    device: str | None,
    at: datetime,
    fault: LinkFault | None,
) -> None:
    link, token = _link(**changes)
    if token_edit == "flip":
        token = token[:-1] + ("A" if token[-1] != "A" else "B")
    elif token_edit == "cut":
        token = token[:-1]
    elif token_edit == "junk":
        token = "x" * 200
    assert link_fault(link, token, KEY, device, at) is fault


def test_a_token_names_nobody_and_only_its_link() -> None:
    _, token = _link()
    assert token_link_id(token) == "a" * 32 and len(token) == 76
    assert link_fault(None, token, KEY, None, NOW) is LinkFault.UNKNOWN
    assert link_fault(_link()[0], token, b"other key" * 4, None, NOW) is LinkFault.ALTERED


@pytest.mark.parametrize(
    ("changes", "at", "gives", "withdraws"),
    [
        (BOUND, NOW, True, True),
        (BOUND, NOW + timedelta(days=7), False, True),  # expired: withdraw-only
        (BOUND, NOW + timedelta(days=7) + WITHDRAWAL_GRACE - timedelta(seconds=1), False, True),
        (BOUND, NOW + timedelta(days=7) + WITHDRAWAL_GRACE, False, False),
        ({"used_at": NOW, "device_hash": REVOKED}, NOW, True, False),
    ],
)
def test_what_a_bound_browser_may_do_over_time(
    changes: dict[str, object], at: datetime, gives: bool, withdraws: bool
) -> None:
    link, _ = _link(**changes)
    assert (may_give(link, at), may_withdraw(link, at)) == (gives, withdraws)


def test_only_an_untouched_token_is_genuine_whatever_the_links_state() -> None:
    link, token = _link(used_at=NOW, device_hash=REVOKED)
    assert genuine(link, token, KEY)
    assert not genuine(link, token[:-1] + ("A" if token[-1] != "A" else "B"), KEY)
    assert not genuine(None, token, KEY) and not genuine(link, token, b"x" * 32)


KIM = Child("c" * 32, "o" * 32, "Kim Parker", date(2012, 5, 1), frozenset({"g" * 32}))


@pytest.mark.parametrize(
    ("purpose", "signer", "must_say"),
    [
        ("recording:lesson_review", Signer.GUARDIAN, ("30 days", "sound and video", "Withdraw")),
        ("recording:safeguarding_review", Signer.GUARDIAN, ("90 days", "Who may see it:")),
        ("recording:lesson_review", Signer.CHILD, ("Your voice and your face.", "I am Kim.")),
        ("participation", Signer.GUARDIAN, ("records nothing", "Kim's parent or carer")),
        ("participation", Signer.CHILD, ("first name", "Can I change my mind?")),
        ("recording:lesson_review", Signer.SELF, ("I, Kim, agree to be recorded",)),
    ],
)
def test_the_words_shown_for_each_purpose_and_signer(
    purpose: str, signer: Signer, must_say: tuple[str, ...]
) -> None:
    shown = wording(POLICY, purpose, signer, KIM.name)
    for words in must_say:
        assert words in shown.text
    assert shown.text.endswith(f"Policy version: {POLICY.label}")
    assert shown.digest == hashlib.sha256(shown.text.encode()).hexdigest()
    check_shown(shown, shown.digest)
    # Another policy version: other words, and a form signed over the old ones is refused.
    newer = POLICY.model_copy(update={"version": "2027-01-01"})
    with pytest.raises(Refusal) as refused:
        check_shown(wording(newer, purpose, signer, KIM.name), shown.digest)
    assert refused.value.code is ErrorCode.CONFLICT


@pytest.mark.parametrize(
    ("purpose", "signer"),
    [("recording:marketing", Signer.GUARDIAN), ("participation", Signer.SELF)],
)
def test_purposes_the_policy_does_not_list_have_no_words(purpose: str, signer: Signer) -> None:
    with pytest.raises(Refusal) as refused:
        wording(POLICY, purpose, signer, "Kim")
    assert refused.value.code is ErrorCode.PURPOSE_UNKNOWN


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("  Pat   Parker ", "Pat Parker"),
        ("Zoë", "Zoë"),
        ("", None),
        ("x" * 121, None),
        ("a\x00b", None),
    ],
)
def test_typed_names(typed: str, kept: str | None) -> None:
    if kept is None:
        with pytest.raises(Refusal):
            check_typed_name(typed)
    else:
        assert check_typed_name(typed) == kept


def test_an_e_signature_counts_in_the_consent_checks() -> None:
    """A guardian's e-signed give plus, from the assent age, the child's own."""
    evidence = Evidence(EvidenceMethod.E_SIGNATURE, "e-signature x", date(2026, 11, 23))

    def give(record_id: str, kind: PersonKind, by: str) -> ConsentRecord:
        return ConsentRecord(
            record_id,
            "o" * 32,
            PersonKind.CHILD,
            KIM.id,
            "recording:lesson_review",
            ConsentAction.GIVE,
            kind,
            by,
            evidence,
            NOW,
        )

    today = date(2026, 11, 23)
    guardian_only = [give("r1", PersonKind.GUARDIAN, "g" * 32)]
    state = consent_state(KIM, guardian_only, "recording:lesson_review", POLICY, today)
    assert not state.valid and state.reasons == ("guardian_consent", "no_child_assent")
    both = [*guardian_only, give("r2", PersonKind.CHILD, KIM.id)]
    state = consent_state(KIM, both, "recording:lesson_review", POLICY, today)
    assert state.valid and state.record_ids == ("r1", "r2")
