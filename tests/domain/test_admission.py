"""The join decision (R1, R4, R5, R6, R16, R18)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.admission import (
    JoinFacts,
    Standing,
    confirm_supervised,
    count_vetted_adults,
    decide_join,
    is_vetted_adult,
    join_reads_presence,
    standing_reasons,
)
from gateway.domain.models import (
    ConsentAction,
    ConsentRecord,
    Grants,
    Invite,
    Outcome,
    Person,
    PersonKind,
    Presence,
    Session,
    SessionKind,
    SessionRole,
    StaffRole,
)
from gateway.domain.policy import Policy

from .factories import (
    DEFAULT_POLICY,
    NOW,
    TODAY,
    TWO_ADULTS,
    adult,
    child,
    guardian,
    kid,
    make_policy,
    participant,
    record,
    session,
    staff,
    vetting,
)

SAM = child()
PAT = guardian()
ROBIN = staff()
OBS = staff("staff_2", roles=frozenset({StaffRole.OBSERVER}))
SAM_OK = (record(SAM, by=PAT),)
LIVE = session(kind=SessionKind.LIVESTREAM)
BOTH = Grants(can_publish=True, can_subscribe=True)
VIEW = Grants(can_publish=False, can_subscribe=True, hidden=True)
NONE = Grants.none()


def facts(
    person: Person,
    role: SessionRole,
    *,
    present: Sequence[Presence] = TWO_ADULTS,
    consents: Sequence[ConsentRecord] = (),
    sess: Session | None = None,
    now: datetime = NOW,
    policy: Policy = DEFAULT_POLICY,
    participant_id: str | None = None,
) -> JoinFacts:
    return JoinFacts(
        now=now,
        policy=policy,
        session=sess if sess is not None else session(),
        participant=participant(person, role, id=participant_id),
        person=person,
        consents=consents,
        present=present,
    )


CASES = [
    # -- adults
    pytest.param(
        facts(ROBIN, SessionRole.HOST, present=()),
        Outcome.ADMIT,
        ("admitted",),
        BOTH,
        id="host-alone-admitted",
    ),
    pytest.param(
        facts(OBS, SessionRole.OBSERVER), Outcome.ADMIT, ("admitted",), BOTH, id="observer"
    ),
    pytest.param(
        facts(staff(roles=frozenset({StaffRole.DSL})), SessionRole.HOST),
        Outcome.ADMIT,
        ("admitted",),
        BOTH,
        id="dsl-may-host",
    ),
    pytest.param(
        facts(staff(roles=frozenset({StaffRole.DSL})), SessionRole.OBSERVER),
        Outcome.ADMIT,
        ("admitted",),
        BOTH,
        id="dsl-may-observe",
    ),
    pytest.param(
        facts(ROBIN, SessionRole.OBSERVER),
        Outcome.ADMIT,
        ("admitted",),
        BOTH,
        id="tutor-may-observe",
    ),
    pytest.param(
        facts(OBS, SessionRole.HOST),
        Outcome.DENY,
        ("staff_role_not_allowed",),
        NONE,
        id="observer-may-not-host",
    ),
    pytest.param(
        facts(staff(roles=frozenset({StaffRole.ADMIN})), SessionRole.HOST),
        Outcome.DENY,
        ("staff_role_not_allowed",),
        NONE,
        id="admin-may-not-host",
    ),
    pytest.param(
        facts(staff(roles=frozenset({StaffRole.ADMIN})), SessionRole.OBSERVER),
        Outcome.DENY,
        ("staff_role_not_allowed",),
        NONE,
        id="admin-may-not-observe",
    ),
    pytest.param(
        facts(staff(vetting_=None), SessionRole.HOST),
        Outcome.DENY,
        ("vetting_missing",),
        NONE,
        id="no-vetting",
    ),
    pytest.param(
        facts(staff(vetting_=vetting(kind="basic_dbs")), SessionRole.HOST),
        Outcome.DENY,
        ("vetting_kind_not_accepted",),
        NONE,
        id="vetting-kind",
    ),
    pytest.param(
        facts(staff(vetting_=vetting(expires_on=TODAY)), SessionRole.HOST),
        Outcome.DENY,
        ("vetting_expired",),
        NONE,
        id="vetting-lapses-on-expiry-day",
    ),
    pytest.param(
        facts(staff(vetting_=vetting(expires_on=TODAY + timedelta(days=1))), SessionRole.HOST),
        Outcome.ADMIT,
        ("admitted",),
        BOTH,
        id="vetting-valid-day-before-expiry",
    ),
    pytest.param(
        facts(staff(vetting_=vetting(checked_on=TODAY)), SessionRole.HOST),
        Outcome.ADMIT,
        ("admitted",),
        BOTH,
        id="vetting-checked-today",
    ),
    pytest.param(
        facts(staff(vetting_=vetting(checked_on=TODAY + timedelta(days=1))), SessionRole.HOST),
        Outcome.DENY,
        ("vetting_not_yet_valid",),
        NONE,
        id="vetting-future",
    ),
    pytest.param(
        facts(staff(vetting_=None, roles=frozenset({StaffRole.ADMIN})), SessionRole.HOST),
        Outcome.DENY,
        ("vetting_missing", "staff_role_not_allowed"),
        NONE,
        id="both-staff-reasons",
    ),
    pytest.param(
        facts(staff(vetting_=None), SessionRole.VIEWER, sess=LIVE),
        Outcome.ADMIT,
        ("admitted",),
        VIEW,
        id="unvetted-staff-may-view",
    ),
    # -- role sanity
    pytest.param(
        facts(SAM, SessionRole.HOST, consents=SAM_OK),
        Outcome.DENY,
        ("role_mismatch",),
        NONE,
        id="child-as-host",
    ),
    pytest.param(
        facts(PAT, SessionRole.OBSERVER),
        Outcome.DENY,
        ("role_mismatch",),
        NONE,
        id="guardian-as-observer",
    ),
    pytest.param(
        facts(ROBIN, SessionRole.CHILD), Outcome.DENY, ("role_mismatch",), NONE, id="staff-as-child"
    ),
    pytest.param(
        facts(ROBIN, SessionRole.GUARDIAN),
        Outcome.DENY,
        ("role_mismatch",),
        NONE,
        id="staff-as-guardian",
    ),
    pytest.param(
        facts(PAT, SessionRole.CHILD),
        Outcome.DENY,
        ("role_mismatch",),
        NONE,
        id="guardian-as-child",
    ),
    pytest.param(
        facts(PAT, SessionRole.GUARDIAN), Outcome.ADMIT, ("admitted",), BOTH, id="guardian"
    ),
    pytest.param(
        facts(PAT, SessionRole.GUARDIAN, present=()),
        Outcome.ADMIT,
        ("admitted",),
        BOTH,
        id="guardian-without-adults",
    ),
    pytest.param(
        facts(PAT, SessionRole.VIEWER),
        Outcome.DENY,
        ("viewer_not_in_livestream",),
        NONE,
        id="viewer-in-tutoring",
    ),
    pytest.param(
        facts(PAT, SessionRole.VIEWER, sess=session(kind=SessionKind.GROUP)),
        Outcome.DENY,
        ("viewer_not_in_livestream",),
        NONE,
        id="viewer-in-group",
    ),
    pytest.param(
        facts(PAT, SessionRole.VIEWER, sess=LIVE),
        Outcome.ADMIT,
        ("admitted",),
        VIEW,
        id="guardian-viewer",
    ),
    # -- children
    pytest.param(
        facts(SAM, SessionRole.CHILD, consents=SAM_OK),
        Outcome.ADMIT,
        ("admitted", "supervised"),
        BOTH,
        id="child-supervised",
    ),
    pytest.param(
        facts(SAM, SessionRole.CHILD, consents=SAM_OK, present=TWO_ADULTS[:1]),
        Outcome.HOLD,
        ("awaiting_supervision",),
        NONE,
        id="child-one-adult-held",
    ),
    pytest.param(
        facts(SAM, SessionRole.CHILD, consents=SAM_OK, present=()),
        Outcome.HOLD,
        ("awaiting_supervision",),
        NONE,
        id="child-no-adults-held",
    ),
    pytest.param(
        facts(
            SAM,
            SessionRole.CHILD,
            consents=SAM_OK,
            present=(adult("a1"), adult("a1", SessionRole.OBSERVER)),
        ),
        Outcome.HOLD,
        ("awaiting_supervision",),
        NONE,
        id="same-adult-twice-counts-once",
    ),
    pytest.param(
        facts(
            SAM,
            SessionRole.CHILD,
            consents=SAM_OK,
            present=(adult("a1"), adult("a2", vetted=False)),
        ),
        Outcome.HOLD,
        ("awaiting_supervision",),
        NONE,
        id="unvetted-adult-not-counted",
    ),
    pytest.param(
        facts(
            SAM,
            SessionRole.CHILD,
            consents=SAM_OK,
            present=(adult("a1"), adult("a2", SessionRole.VIEWER)),
        ),
        Outcome.HOLD,
        ("awaiting_supervision",),
        NONE,
        id="viewer-adult-not-counted",
    ),
    pytest.param(
        facts(
            SAM,
            SessionRole.CHILD,
            consents=SAM_OK,
            present=(
                adult("a1"),
                Presence("a2", SessionRole.OBSERVER, PersonKind.STAFF, True, held=True),
            ),
        ),
        Outcome.HOLD,
        ("awaiting_supervision",),
        NONE,
        id="held-adult-not-counted",
    ),
    pytest.param(
        facts(SAM, SessionRole.CHILD, consents=SAM_OK, present=(*TWO_ADULTS, kid("k1"), kid("k2"))),
        Outcome.ADMIT,
        ("admitted", "supervised"),
        BOTH,
        id="with-other-children",
    ),
    pytest.param(
        facts(
            SAM,
            SessionRole.CHILD,
            consents=SAM_OK,
            present=(adult("a1"), adult("a2", SessionRole.OBSERVER), adult("a3")),
            policy=make_policy(supervision={"min_vetted_adults": 3}),
        ),
        Outcome.ADMIT,
        ("admitted", "supervised"),
        BOTH,
        id="three-required-three-present",
    ),
    pytest.param(
        facts(
            SAM,
            SessionRole.CHILD,
            consents=SAM_OK,
            policy=make_policy(supervision={"min_vetted_adults": 3}),
        ),
        Outcome.HOLD,
        ("awaiting_supervision",),
        NONE,
        id="three-required-two-present",
    ),
    pytest.param(
        facts(
            SAM,
            SessionRole.CHILD,
            consents=SAM_OK,
            present=(adult("a1"), adult("a2", SessionRole.OBSERVER)),
            policy=make_policy(supervision={"counting_roles": ["host"]}),
        ),
        Outcome.HOLD,
        ("awaiting_supervision",),
        NONE,
        id="observer-not-counting-per-policy",
    ),
    pytest.param(
        facts(SAM, SessionRole.CHILD),
        Outcome.DENY,
        ("no_participation_consent", "consent:no_guardian_consent"),
        NONE,
        id="child-no-consent",
    ),
    pytest.param(
        facts(SAM, SessionRole.CHILD, present=()),
        Outcome.DENY,
        ("no_participation_consent", "consent:no_guardian_consent"),
        NONE,
        id="no-consent-denied-not-held",
    ),
    pytest.param(
        facts(child(date_of_birth=date(2012, 1, 1)), SessionRole.CHILD, consents=SAM_OK),
        Outcome.DENY,
        ("no_participation_consent", "consent:guardian_consent", "consent:no_child_assent"),
        NONE,
        id="older-child-no-assent",
    ),
    pytest.param(
        facts(SAM, SessionRole.VIEWER, consents=SAM_OK, sess=LIVE),
        Outcome.ADMIT,
        ("admitted", "supervised"),
        VIEW,
        id="child-viewer",
    ),
    pytest.param(
        facts(SAM, SessionRole.VIEWER, consents=SAM_OK, sess=LIVE, present=()),
        Outcome.HOLD,
        ("awaiting_supervision",),
        NONE,
        id="child-viewer-held",
    ),
    pytest.param(
        facts(SAM, SessionRole.VIEWER, sess=LIVE),
        Outcome.DENY,
        ("no_participation_consent", "consent:no_guardian_consent"),
        NONE,
        id="child-viewer-no-consent",
    ),
    pytest.param(
        facts(SAM, SessionRole.CHILD, consents=SAM_OK, sess=LIVE),
        Outcome.ADMIT,
        ("admitted", "supervised"),
        BOTH,
        id="child-presenter-in-livestream",
    ),
    # -- timing
    pytest.param(
        facts(ROBIN, SessionRole.HOST, now=NOW - timedelta(hours=1)),
        Outcome.DENY,
        ("session_not_started",),
        NONE,
        id="too-early",
    ),
    pytest.param(
        facts(ROBIN, SessionRole.HOST, now=NOW + timedelta(hours=2)),
        Outcome.DENY,
        ("session_over",),
        NONE,
        id="too-late",
    ),
    pytest.param(
        facts(ROBIN, SessionRole.HOST, sess=session(ended_at=NOW)),
        Outcome.DENY,
        ("session_ended",),
        NONE,
        id="ended",
    ),
    pytest.param(
        facts(
            SAM,
            SessionRole.CHILD,
            consents=SAM_OK,
            sess=session(starts_at=NOW.replace(hour=21)),
            now=NOW.replace(hour=21),
        ),
        Outcome.DENY,
        ("outside_session_hours",),
        NONE,
        id="child-out-of-hours",
    ),
    pytest.param(
        facts(SAM, SessionRole.CHILD, sess=session(ended_at=NOW)),
        Outcome.DENY,
        ("session_ended", "no_participation_consent", "consent:no_guardian_consent"),
        NONE,
        id="reasons-accumulate",
    ),
    # -- identity binding
    pytest.param(
        facts(SAM, SessionRole.CHILD, consents=SAM_OK, sess=session(org_id="org_2")),
        Outcome.DENY,
        ("org_mismatch",),
        NONE,
        id="other-org",
    ),
    pytest.param(
        facts(SAM, SessionRole.CHILD, consents=SAM_OK, sess=session(id="session_2")),
        Outcome.DENY,
        ("participant_mismatch",),
        NONE,
        id="other-session",
    ),
]


@pytest.mark.parametrize(("join", "outcome", "reasons", "grants"), CASES)
def test_decide_join(
    join: JoinFacts, outcome: Outcome, reasons: tuple[str, ...], grants: Grants
) -> None:
    decision = decide_join(join)
    assert (decision.outcome, decision.reasons, decision.grants) == (outcome, reasons, grants)
    assert decision.policy_version == DEFAULT_POLICY.label


def test_participant_for_someone_else_is_denied() -> None:
    join = facts(SAM, SessionRole.CHILD, consents=SAM_OK)
    other = child("child_2", guardian_ids=frozenset({"guardian_1"}))
    mixed = JoinFacts(
        join.now, join.policy, join.session, join.participant, other, (record(other, by=PAT),), ()
    )
    decision = decide_join(mixed)
    assert decision.outcome is Outcome.DENY
    assert "participant_mismatch" in decision.reasons


def test_joiner_is_not_counted_as_their_own_supervisor() -> None:
    # The live state may already list the joiner (a reconnect); they never count for themselves.
    present = (adult("a1"), adult("part_child_1"))
    decision = decide_join(facts(SAM, SessionRole.CHILD, consents=SAM_OK, present=present))
    assert decision.outcome is Outcome.HOLD


def test_viewers_not_hidden_when_policy_says_so() -> None:
    policy = make_policy(livestream={"viewers_hidden_from_each_other": False})
    decision = decide_join(facts(PAT, SessionRole.VIEWER, sess=LIVE, policy=policy))
    assert decision.grants == Grants(can_publish=False, can_subscribe=True, hidden=False)


def test_out_of_hours_approved_session_admits() -> None:
    policy = make_policy(hours={"out_of_hours": "dsl_approval"})
    evening = NOW.replace(hour=21)
    sess = session(starts_at=evening, out_of_hours_approved_by="staff_dsl")
    decision = decide_join(facts(ROBIN, SessionRole.HOST, sess=sess, now=evening, policy=policy))
    assert decision.outcome is Outcome.ADMIT


def test_decision_as_dict() -> None:
    decision = decide_join(facts(SAM, SessionRole.CHILD, consents=SAM_OK, present=()))
    assert decision.as_dict() == {
        "outcome": "hold",
        "reasons": ["awaiting_supervision"],
        "grants": {"can_publish": False, "can_subscribe": False, "hidden": False},
        "policy_version": DEFAULT_POLICY.label,
    }


@pytest.mark.parametrize(
    ("person", "role", "expected"),
    [
        pytest.param(ROBIN, SessionRole.HOST, True, id="tutor-host"),
        pytest.param(OBS, SessionRole.OBSERVER, True, id="observer"),
        pytest.param(OBS, SessionRole.HOST, False, id="observer-as-host"),
        pytest.param(ROBIN, SessionRole.VIEWER, False, id="viewer-role-never-counts"),
        pytest.param(staff(vetting_=None), SessionRole.HOST, False, id="unvetted"),
        pytest.param(
            staff(vetting_=vetting(expires_on=TODAY)), SessionRole.HOST, False, id="expired"
        ),
    ],
)
def test_is_vetted_adult(person: Person, role: SessionRole, expected: bool) -> None:
    assert isinstance(person, type(ROBIN))
    assert is_vetted_adult(person, role, DEFAULT_POLICY, TODAY) is expected


def test_is_vetted_adult_follows_counting_roles() -> None:
    policy = make_policy(supervision={"counting_roles": ["host"]})
    assert is_vetted_adult(OBS, SessionRole.OBSERVER, policy, TODAY) is False
    assert is_vetted_adult(ROBIN, SessionRole.HOST, policy, TODAY) is True


def test_count_vetted_adults() -> None:
    present = (
        adult("a1"),
        adult("a1"),
        adult("a2", SessionRole.OBSERVER),
        adult("a3", vetted=False),
        adult("a4", SessionRole.VIEWER),
        kid("k1"),
        Presence("a5", SessionRole.HOST, PersonKind.STAFF, True, held=True),
    )
    assert count_vetted_adults(present, DEFAULT_POLICY) == 2
    assert count_vetted_adults(present, DEFAULT_POLICY, exclude_participant_id="a2") == 1


# -- properties --------------------------------------------------------------------------------

_presence = st.builds(
    Presence,
    participant_id=st.sampled_from([f"p{i}" for i in range(6)] + ["part_child_1"]),
    role=st.sampled_from(list(SessionRole)),
    person_kind=st.sampled_from(list(PersonKind)),
    vetted_adult=st.booleans(),
    held=st.booleans(),
)
_policies = st.sampled_from(
    [
        DEFAULT_POLICY,
        make_policy(supervision={"min_vetted_adults": 3}),
        make_policy(supervision={"counting_roles": ["host"]}),
    ]
)


def _independent_count(present: Sequence[Presence], policy: Policy, joiner: str) -> int:
    ids = set()
    for p in present:
        counts = p.role.value in policy.supervision.counting_roles
        if p.vetted_adult and counts and not p.held and p.participant_id != joiner:
            ids.add(p.participant_id)
    return len(ids)


@given(
    present=st.lists(_presence, max_size=8),
    policy=_policies,
    role=st.sampled_from([SessionRole.CHILD, SessionRole.VIEWER]),
    kind=st.sampled_from(list(SessionKind)),
    consented=st.booleans(),
)
def test_child_never_admitted_without_enough_vetted_adults(
    present: list[Presence],
    policy: Policy,
    role: SessionRole,
    kind: SessionKind,
    consented: bool,
) -> None:
    join = facts(
        SAM,
        role,
        present=present,
        consents=SAM_OK if consented else (),
        sess=session(kind=kind),
        policy=policy,
    )
    decision = decide_join(join)
    enough = _independent_count(present, policy, "part_child_1")
    if enough < policy.supervision.min_vetted_adults:
        assert decision.outcome is not Outcome.ADMIT
        assert decision.grants == Grants.none()
    if decision.outcome is not Outcome.ADMIT:
        assert decision.grants == Grants.none()


@given(
    who=st.sampled_from([SAM, PAT, ROBIN, OBS]),
    role=st.sampled_from(list(SessionRole)),
    present=st.lists(_presence, max_size=8),
    policy=_policies,
    kind=st.sampled_from(list(SessionKind)),
)
def test_a_join_that_does_not_read_presence_is_decided_alike_whoever_is_present(
    who: Person, role: SessionRole, present: list[Presence], policy: Policy, kind: SessionKind
) -> None:
    """The join skips the live-state read when `join_reads_presence` says no: only sound if
    the decision then never depends on who is present."""
    alone = facts(who, role, present=(), consents=SAM_OK, sess=session(kind=kind), policy=policy)
    if join_reads_presence(alone.participant, who):
        return
    crowded = facts(
        who, role, present=present, consents=SAM_OK, sess=session(kind=kind), policy=policy
    )
    assert decide_join(crowded) == decide_join(alone)


def test_children_and_viewers_are_decided_on_who_is_present() -> None:
    assert join_reads_presence(participant(SAM, SessionRole.CHILD), SAM)
    assert join_reads_presence(participant(PAT, SessionRole.VIEWER), PAT)
    assert join_reads_presence(participant(SAM, SessionRole.VIEWER), SAM)
    assert not join_reads_presence(participant(ROBIN, SessionRole.HOST), ROBIN)
    assert not join_reads_presence(participant(PAT, SessionRole.GUARDIAN), PAT)


@given(
    who=st.sampled_from([SAM, PAT, ROBIN, OBS]),
    present=st.lists(_presence, max_size=6),
    hidden=st.booleans(),
    offset_minutes=st.integers(min_value=-30, max_value=90),
)
def test_viewer_never_granted_publish(
    who: Person, present: list[Presence], hidden: bool, offset_minutes: int
) -> None:
    policy = make_policy(livestream={"viewers_hidden_from_each_other": hidden})
    join = facts(
        who,
        SessionRole.VIEWER,
        present=present,
        consents=SAM_OK,
        sess=LIVE,
        policy=policy,
        now=NOW + timedelta(minutes=offset_minutes),
    )
    decision = decide_join(join)
    assert decision.grants.can_publish is False
    if decision.outcome is Outcome.ADMIT:
        assert decision.grants == Grants(can_publish=False, can_subscribe=True, hidden=hidden)


# The one standing check and the confirmed admission ---------------------------------------
def _standing(
    person: Person = SAM,
    *,
    consents: Sequence[ConsentRecord] = SAM_OK,
    revoked: bool = False,
    expired: bool = False,
    ended: bool = False,
    removed: bool = False,
) -> Standing:
    base = session()
    return Standing(
        now=NOW,
        policy=DEFAULT_POLICY,
        invite=Invite(
            id="inv_1",
            org_id=base.org_id,
            session_id=base.id,
            participant_id="p_1",
            expires_at=NOW - timedelta(seconds=1) if expired else NOW + timedelta(hours=1),
            revoked_at=NOW if revoked else None,
            device_hash="d" * 64,
            created_at=NOW - timedelta(hours=1),
        ),
        session=replace(base, ended_at=NOW) if ended else base,
        person=person,
        consents=consents,
        removed_at=NOW if removed else None,
    )


STANDING_CASES = [
    pytest.param(_standing(), (), id="stands"),
    pytest.param(_standing(ROBIN, consents=()), (), id="staff-need-no-consent"),
    pytest.param(_standing(removed=True, revoked=True), ("participant_removed",), id="removed"),
    pytest.param(_standing(revoked=True), ("invite_revoked",), id="revoked"),
    pytest.param(_standing(expired=True), ("invite_expired",), id="expired"),
    pytest.param(_standing(ended=True), ("session_ended",), id="ended"),
    pytest.param(
        _standing(consents=()),
        ("no_participation_consent", "consent:no_guardian_consent"),
        id="no-consent",
    ),
]


@pytest.mark.parametrize(("facts_", "expected"), STANDING_CASES)
def test_standing_reasons(facts_: Standing, expected: tuple[str, ...]) -> None:
    assert standing_reasons(facts_) == expected


def test_withdrawn_consent_loses_standing() -> None:
    withdrawn = (
        *SAM_OK,
        record(
            SAM,
            by=PAT,
            action=ConsentAction.WITHDRAW,
            evidence_=None,
            at=NOW - timedelta(minutes=1),
        ),
    )
    assert standing_reasons(_standing(consents=withdrawn))[0] == "no_participation_consent"


CONFIRM_CASES = [
    pytest.param((*TWO_ADULTS,), Outcome.ADMIT, id="adults-still-there"),
    pytest.param(TWO_ADULTS[:1], Outcome.HOLD, id="an-adult-left-meanwhile"),
    pytest.param((adult("a_host"), adult("a_obs", vetted=False)), Outcome.HOLD, id="unvetted"),
]


@pytest.mark.parametrize(("present", "outcome"), CONFIRM_CASES)
def test_confirm_supervised(present: Sequence[Presence], outcome: Outcome) -> None:
    admitted = decide_join(facts(SAM, SessionRole.CHILD, consents=SAM_OK))
    assert admitted.outcome is Outcome.ADMIT
    after = (*present, kid(admitted_id := "participant_1"))
    confirmed = confirm_supervised(admitted, SAM, admitted_id, after, DEFAULT_POLICY)
    assert confirmed.outcome is outcome
    if outcome is Outcome.HOLD:
        assert confirmed.reasons == ("awaiting_supervision",) and confirmed.grants == NONE


def test_confirm_leaves_adults_and_holds_alone() -> None:
    host = decide_join(facts(ROBIN, SessionRole.HOST, present=()))
    assert confirm_supervised(host, ROBIN, "x", (), DEFAULT_POLICY) is host


@pytest.mark.parametrize(
    ("max_viewers", "viewers_present", "outcome"),
    [(2, 0, Outcome.ADMIT), (2, 1, Outcome.ADMIT), (2, 2, Outcome.DENY), (1, 3, Outcome.DENY)],
)
def test_a_full_livestream_refuses_more_viewers(
    max_viewers: int, viewers_present: int, outcome: Outcome
) -> None:
    """`livestream.max_viewers`: past it a viewer is refused (adults on stage do not count)."""
    policy = make_policy(livestream={"max_viewers": max_viewers})
    present = (
        *TWO_ADULTS,
        *(adult(f"viewer_{i}", SessionRole.VIEWER) for i in range(viewers_present)),
    )
    decision = decide_join(
        facts(PAT, SessionRole.VIEWER, sess=LIVE, policy=policy, present=present)
    )
    assert decision.outcome is outcome
    assert ("livestream_full" in decision.reasons) is (outcome is Outcome.DENY)


def test_a_policy_cannot_let_viewers_broadcast() -> None:
    """`livestream.viewers_can_publish` is read at load: a policy saying true is refused (R18)."""
    with pytest.raises(ValueError, match="viewers_can_publish"):
        make_policy(livestream={"viewers_can_publish": True})
