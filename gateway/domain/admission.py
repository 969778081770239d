"""The admit / hold / deny decision for a join (R1, R3, R4, R5, R6, R16, R18).

Checks, in order, each adding its reasons (a join is denied when any check denies):
  1. identity: the participant is this person, on this session, of this organisation
     ("participant_mismatch", "org_mismatch");
  2. timing (R16): "session_ended", "session_not_started", "session_over",
     "outside_session_hours" (see `hours.session_hours_reasons`);
  3. role sanity: child -> a Child; host/observer -> Staff; guardian -> a Guardian; viewer ->
     anyone, but only in a livestream ("role_mismatch", "viewer_not_in_livestream");
  4. host/observer (R5): vetting of an accepted kind, valid today (checked_on <= today <
     expires_on: a check has lapsed on its expiry date) -> "vetting_missing",
     "vetting_kind_not_accepted", "vetting_not_yet_valid", "vetting_expired"; and a staff role
     that may take the session role -> "staff_role_not_allowed". A host must be a TUTOR or the
     DSL; an observer must be an OBSERVER, the DSL or a TUTOR. ADMIN alone does not qualify:
     it is an office role, not a safer-recruitment one;
  5. any Child (as child or viewer, R6): valid participation consent, else
     "no_participation_consent" plus the consent reasons prefixed "consent:".
Then a Child who passed is HELD ("awaiting_supervision") while fewer than
`supervision.min_vetted_adults` vetted adults (not counting the joiner) are present (R4).
Adults are admitted even when alone: they are the ones who must be there first.

`standing_reasons` is the one check every later step of a participant passes (media offer,
event stream, remove, end, concern, and each reconciliation round for whoever is connected):
the same durable facts, re-read each time, so a removal, a revocation, an end or a withdrawn
consent takes every power and every stream away, whichever process holds them. Leaving never
passes it: leaving always works.

Grants are explicit: admitted host, observer, child and guardian publish and subscribe; a
viewer only subscribes, hidden from other viewers per policy (R18); held and denied joins get
no grants at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from gateway.domain.consent import consent_state
from gateway.domain.hours import local_date, session_hours_reasons
from gateway.domain.models import (
    PARTICIPATION,
    Child,
    ConsentRecord,
    Decision,
    Grants,
    Guardian,
    Invite,
    Outcome,
    Participant,
    Person,
    Presence,
    Session,
    SessionKind,
    SessionRole,
    Staff,
    StaffRole,
    person_kind,
)
from gateway.domain.policy import Policy
from gateway.domain.supervision import count_vetted_adults

__all__ = [
    "STAFF_ROLES_FOR",
    "JoinFacts",
    "Standing",
    "confirm_supervised",
    "count_vetted_adults",
    "decide_join",
    "grants_for",
    "invite_reasons",
    "is_vetted_adult",
    "staff_role_allowed",
    "standing_reasons",
    "vetting_reasons",
]

# Which organisational roles may take each adult session role.
STAFF_ROLES_FOR: dict[SessionRole, frozenset[StaffRole]] = {
    SessionRole.HOST: frozenset({StaffRole.TUTOR, StaffRole.DSL}),
    SessionRole.OBSERVER: frozenset({StaffRole.OBSERVER, StaffRole.DSL, StaffRole.TUTOR}),
}


@dataclass(frozen=True, slots=True)
class JoinFacts:
    now: datetime
    policy: Policy
    session: Session
    participant: Participant
    person: Person
    consents: Sequence[ConsentRecord]  # the joining person's consent history
    present: Sequence[Presence]  # everyone the live state says is in the session now


@dataclass(frozen=True, slots=True)
class Standing:
    """The durable facts that give a participant any power in a live session."""

    now: datetime
    policy: Policy
    invite: Invite
    session: Session
    person: Person
    consents: Sequence[ConsentRecord]
    removed_at: datetime | None


def invite_reasons(invite: Invite, removed_at: datetime | None, now: datetime) -> tuple[str, ...]:
    """Why this invite gives no entry at all (checked before anything of a join is recorded)."""
    if removed_at is not None:
        return ("participant_removed",)
    if invite.revoked_at is not None:
        return ("invite_revoked",)
    if invite.expires_at <= now:
        return ("invite_expired",)
    return ()


def standing_reasons(facts: Standing) -> tuple[str, ...]:
    """Why this participant may no longer act or stay in the session; empty when they may.
    The first reason is the one to tell them."""
    reasons = list(invite_reasons(facts.invite, facts.removed_at, facts.now))
    if facts.session.ended_at is not None:
        reasons.append("session_ended")
    if isinstance(facts.person, Child):
        reasons.extend(_consent_reasons(facts.person, facts.consents, facts.policy, facts.now))
    return tuple(reasons)


def _consent_reasons(
    child: Child, consents: Sequence[ConsentRecord], policy: Policy, now: datetime
) -> tuple[str, ...]:
    consent = consent_state(child, consents, PARTICIPATION, policy, local_date(now, policy))
    if consent.valid:
        return ()
    return ("no_participation_consent", *(f"consent:{reason}" for reason in consent.reasons))


def vetting_reasons(staff: Staff, policy: Policy, today: date) -> tuple[str, ...]:
    """Why this member of staff's vetting does not count today; empty when it does."""
    vetting = staff.vetting
    if vetting is None:
        return ("vetting_missing",)
    if vetting.kind not in policy.staff.accepted_vetting_kinds:
        return ("vetting_kind_not_accepted",)
    if today < vetting.checked_on:
        return ("vetting_not_yet_valid",)
    if today >= vetting.expires_on:
        return ("vetting_expired",)
    return ()


def staff_role_allowed(staff: Staff, role: SessionRole) -> bool:
    """Whether the staff member's organisational roles allow this session role."""
    return bool(staff.roles & STAFF_ROLES_FOR.get(role, frozenset()))


def is_vetted_adult(staff: Staff, role: SessionRole, policy: Policy, today: date) -> bool:
    """Whether this member of staff, in this session role, counts towards supervision (R4)."""
    return (
        role.value in policy.supervision.counting_roles
        and staff_role_allowed(staff, role)
        and not vetting_reasons(staff, policy, today)
    )


def counts_as_vetted_adult(person: Person, role: SessionRole, policy: Policy, today: date) -> bool:
    """Whether this person, in this session role, counts towards supervision: only vetted
    staff do (R4)."""
    return isinstance(person, Staff) and is_vetted_adult(person, role, policy, today)


def grants_for(role: SessionRole, policy: Policy) -> Grants:
    """The media grants of an admitted participant in this role."""
    if role is SessionRole.VIEWER:
        # R18: audiences never broadcast, whatever else the policy says.
        return Grants(
            can_publish=False,
            can_subscribe=True,
            hidden=policy.livestream.viewers_hidden_from_each_other,
        )
    return Grants(can_publish=True, can_subscribe=True)


def _role_reasons(role: SessionRole, person: Person, session: Session) -> tuple[str, ...]:
    if role is SessionRole.CHILD and not isinstance(person, Child):
        return ("role_mismatch",)
    if role in (SessionRole.HOST, SessionRole.OBSERVER) and not isinstance(person, Staff):
        return ("role_mismatch",)
    if role is SessionRole.GUARDIAN and not isinstance(person, Guardian):
        return ("role_mismatch",)
    if role is SessionRole.VIEWER and session.kind is not SessionKind.LIVESTREAM:
        return ("viewer_not_in_livestream",)
    return ()


def join_reads_presence(participant: Participant, person: Person) -> bool:
    """Whether `decide_join` looks at who is present for this joiner: a child (are enough
    vetted adults there?) and a livestream viewer (is it full?). Anyone else's decision is the
    same whoever is present, so their join does not read the live state for it (an adult's
    join changes nothing there either: they count once their media is connected)."""
    return isinstance(person, Child) or participant.role is SessionRole.VIEWER


def decide_join(facts: JoinFacts) -> Decision:
    """Admit, hold or deny this join, with reasons and explicit grants."""
    policy, session, participant, person = (
        facts.policy,
        facts.session,
        facts.participant,
        facts.person,
    )
    role = participant.role
    today = local_date(facts.now, policy)
    deny: list[str] = []

    if (
        participant.person_id != person.id
        or participant.person_kind is not person_kind(person)
        or participant.session_id != session.id
    ):
        deny.append("participant_mismatch")
    if person.org_id != session.org_id:
        deny.append("org_mismatch")

    deny.extend(session_hours_reasons(session, policy, facts.now))

    role_reasons = _role_reasons(role, person, session)
    deny.extend(role_reasons)

    if not role_reasons and isinstance(person, Staff) and role in STAFF_ROLES_FOR:
        deny.extend(vetting_reasons(person, policy, today))
        if not staff_role_allowed(person, role):
            deny.append("staff_role_not_allowed")

    if isinstance(person, Child) and not role_reasons:
        deny.extend(_consent_reasons(person, facts.consents, policy, facts.now))

    if role is SessionRole.VIEWER and not role_reasons:
        viewers = sum(
            1
            for p in facts.present
            if p.role is SessionRole.VIEWER and p.participant_id != participant.id
        )
        if viewers >= policy.livestream.max_viewers:
            deny.append("livestream_full")

    if deny:
        return Decision(Outcome.DENY, tuple(dict.fromkeys(deny)), Grants.none(), policy.label)

    if isinstance(person, Child):
        adults = count_vetted_adults(facts.present, policy, participant.id)
        if adults < policy.supervision.min_vetted_adults:
            return Decision(Outcome.HOLD, ("awaiting_supervision",), Grants.none(), policy.label)
        return Decision(
            Outcome.ADMIT, ("admitted", "supervised"), grants_for(role, policy), policy.label
        )
    return Decision(Outcome.ADMIT, ("admitted",), grants_for(role, policy), policy.label)


def confirm_supervised(
    decision: Decision,
    person: Person,
    participant_id: str,
    present: Sequence[Presence],
    policy: Policy,
) -> Decision:
    """Admitting a child and the count it relied on, made one step across processes: the
    child's presence is entered first, then the count is read again. If an adult left between
    the first count and the entry, the child is held now; if one leaves after this second read,
    their process's evaluation already sees the child and holds them. `present` is the second
    read (the child included)."""
    if decision.outcome is not Outcome.ADMIT or not isinstance(person, Child):
        return decision
    if count_vetted_adults(present, policy, participant_id) >= policy.supervision.min_vetted_adults:
        return decision
    return Decision(Outcome.HOLD, ("awaiting_supervision",), Grants.none(), policy.label)
