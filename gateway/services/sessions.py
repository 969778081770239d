"""Sessions, their rosters and personal invites (R1, R2, R16)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from gateway.clock import Clock, to_us
from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.hours import local_date, schedule_reasons
from gateway.domain.masking import new_masked_identity, session_display_name
from gateway.domain.models import (
    Invite,
    Participant,
    Person,
    PersonKind,
    Session,
    SessionKind,
    SessionRole,
    Staff,
    StaffRole,
    person_kind,
)
from gateway.domain.policy import Policy
from gateway.domain.registry_rules import (
    check_adult_role,
    check_plain_text,
    check_roster_role,
    one_of,
    schedule_status,
)
from gateway.services.organisations import new_id
from gateway.services.policies import PolicyBook
from gateway.services.ports import (
    DurableFactsChanged,
    InviteTokenCodec,
    Organisation,
    PasswordHasher,
    SessionQuery,
    Store,
)
from gateway.services.registry import RegistryService


@dataclass(frozen=True, slots=True)
class NewSession:
    session: Session
    title: str
    password: str | None  # shown once, when the gateway generated it


@dataclass(frozen=True, slots=True)
class IssuedInvite:
    invite: Invite
    token: str


class SessionService:
    def __init__(
        self,
        store: Store,
        registry: RegistryService,
        policies: PolicyBook,
        clock: Clock,
        hasher: PasswordHasher,
        minter: InviteTokenCodec,
        *,
        changed: DurableFactsChanged | None = None,
    ) -> None:
        self._changed = changed  # nudges live sessions: a revoked invite's holder goes at once
        self._store = store
        self._registry = registry
        self._policies = policies
        self._clock = clock
        self._hasher = hasher
        self._minter = minter

    async def create(
        self,
        org: Organisation,
        actor: str,
        kind: SessionKind,
        title: str,
        host_staff_id: str,
        starts_at: datetime,
        ends_at: datetime,
        recording_purpose: str | None,
        password: str | None,
        out_of_hours_approved_by: str | None,
    ) -> NewSession:
        policy = self._policies.for_path(org.policy_path)
        title = check_plain_text(title, "A session title", 1, 200)
        host = await self._registry.get(org, PersonKind.STAFF, host_staff_id)
        if recording_purpose is not None and recording_purpose not in policy.recording.purposes:
            raise Refusal(
                ErrorCode.PURPOSE_UNKNOWN,
                "That recording purpose is not in the policy: the purpose must be one of: "
                + one_of(policy.recording.purposes)
                + ".",
            )
        assert isinstance(host, Staff)
        # The host needs vetting valid for the whole session, checked now, not only when they
        # come to join (R4, R5).
        check_adult_role(host, SessionRole.HOST, policy, self._vetting_day(ends_at, policy))
        if out_of_hours_approved_by is not None:
            approver = await self._registry.get(org, PersonKind.STAFF, out_of_hours_approved_by)
            assert isinstance(approver, Staff)
            if StaffRole.DSL not in approver.roles:
                raise Refusal(
                    ErrorCode.FORBIDDEN, "Only the safeguarding lead can approve out-of-hours."
                )
        reasons = schedule_reasons(starts_at, ends_at, policy, out_of_hours_approved_by is not None)
        if reasons:
            raise Refusal(
                ErrorCode.SCHEDULE_NOT_ALLOWED,
                "The session cannot be scheduled then: " + reasons[0],
            )
        generated = None
        if password is None and policy.invites.password_required:
            generated = password = secrets.token_urlsafe(6)
        if password is not None and not 6 <= len(password) <= 128:
            raise Refusal(ErrorCode.BODY_INVALID, "A session password is 6 to 128 characters.")
        password_hash = await self._hasher.hash(password) if password is not None else None
        session = Session(
            id=new_id(),
            org_id=org.id,
            kind=kind,
            host_staff_id=host.id,
            starts_at=starts_at,
            ends_at=ends_at,
            recording_purpose=recording_purpose,
            password_required=password_hash is not None,
            out_of_hours_approved_by=out_of_hours_approved_by,
        )
        await self._store.add_session(
            session,
            title,
            password_hash,
            [
                AuditEvent(
                    "session.created",
                    actor,
                    org.id,
                    session_id=session.id,
                    person_id=host.id,
                    data={
                        "kind": kind.value,
                        "starts_at": starts_at.isoformat(),
                        "ends_at": ends_at.isoformat(),
                        "recording_purpose": recording_purpose,
                        "password": password_hash is not None,
                        "out_of_hours_approved_by": out_of_hours_approved_by,
                        "policy": policy.label,
                    },
                )
            ],
        )
        await self._enrol(org, actor, session, host, SessionRole.HOST)
        return NewSession(session, title, generated)

    async def listing(
        self,
        org: Organisation,
        status: str | None,
        starts_from: datetime | None,
        starts_to: datetime | None,
        after: tuple[int, str] | None,
        limit: int,
    ) -> tuple[list[tuple[Session, str, str]], tuple[int, str] | None]:
        """A page of the organisation's sessions with each one's status now, and where the
        next page starts (None on the last page)."""
        now = self._clock.now()
        page = await self._store.sessions_page(
            SessionQuery(
                org_id=org.id,
                now_us=to_us(now),
                status=status,
                starts_from_us=to_us(starts_from) if starts_from else None,
                starts_to_us=to_us(starts_to) if starts_to else None,
                after=after,
                limit=limit,
            )
        )
        items = [(session, title, schedule_status(session, now)) for session, title in page]
        last = page[-1][0] if len(page) == limit else None
        return items, (to_us(last.starts_at), last.id) if last else None

    async def get(self, org: Organisation, session_id: str) -> Session:
        session = await self._store.session(org.id, session_id)
        if session is None:
            raise Refusal(ErrorCode.NOT_FOUND, "No such session.")
        return session

    async def titled(self, org: Organisation, session_id: str) -> tuple[Session, str | None]:
        """The session and its title (kept apart from the session row)."""
        session = await self.get(org, session_id)
        return session, await self._store.session_title(org.id, session.id)

    async def add_participant(
        self,
        org: Organisation,
        actor: str,
        session_id: str,
        kind: PersonKind,
        person_id: str,
        role: SessionRole,
    ) -> Participant:
        session = await self.get(org, session_id)
        if session.ended_at is not None:
            raise Refusal(ErrorCode.SESSION_ENDED, "The session has ended.")
        person = await self._registry.get(org, kind, person_id)
        policy = self._policies.for_path(org.policy_path)
        check_roster_role(
            person, role, session.kind, policy, self._vetting_day(session.ends_at, policy)
        )
        return await self._enrol(org, actor, session, person, role)

    def _vetting_day(self, ends_at: datetime, policy: Policy) -> date:
        """The day an adult's vetting is checked for at roster time: the session's last day
        (or today, if later), so vetting that lapses before the session ends is refused."""
        return max(local_date(self._clock.now(), policy), local_date(ends_at, policy))

    async def _enrol(
        self, org: Organisation, actor: str, session: Session, person: Person, role: SessionRole
    ) -> Participant:
        policy = self._policies.for_path(org.policy_path)
        roster = await self._store.participants(org.id, session.id)
        ordinal = 1 + sum(1 for p in roster if p.role is role)
        kind = person_kind(person)
        participant = Participant(
            id=new_id(),
            session_id=session.id,
            person_kind=kind,
            person_id=person.id,
            role=role,
            masked_identity=new_masked_identity(os.urandom(10)),
            # Distinct from everyone already on the roster whose name looks alike.
            display_name=session_display_name(
                person, role, policy, ordinal, (p.display_name for p in roster)
            ),
        )
        await self._store.add_participant(
            org.id,
            participant,
            [
                AuditEvent(
                    "roster.added",
                    actor,
                    org.id,
                    session_id=session.id,
                    person_id=person.id,
                    data={"participant": participant.id, "role": role.value},
                )
            ],
        )
        return participant

    async def roster(self, org: Organisation, session_id: str) -> Sequence[Participant]:
        await self.get(org, session_id)
        return await self._store.participants(org.id, session_id)

    async def issue_invite(
        self, org: Organisation, actor: str, session_id: str, participant_id: str
    ) -> IssuedInvite:
        """One personal invite per participant: issuing a new one revokes the old (R1, R2)."""
        policy = self._policies.for_path(org.policy_path)
        session = await self.get(org, session_id)
        participant = await self._store.participant(org.id, participant_id)
        if participant is None or participant.session_id != session.id:
            raise Refusal(ErrorCode.NOT_FOUND, "No such participant.")
        if session.ended_at is not None:
            raise Refusal(ErrorCode.SESSION_ENDED, "The session has ended.")
        now = self._clock.now()
        expires_at = min(now + timedelta(hours=policy.invites.ttl_hours), session.ends_at)
        if expires_at <= now:
            raise Refusal(ErrorCode.SESSION_ENDED, "The session is over.")
        invite = Invite(
            id=new_id(),
            org_id=org.id,
            session_id=session.id,
            participant_id=participant.id,
            expires_at=expires_at,
            revoked_at=None,
            device_hash=None,
            created_at=now,
        )
        token = self._minter.mint(invite.id, session.id, org.id, expires_at, now)
        # The earlier invite stops working first: a copy of the old link left in a mailbox or
        # a browser history admits nobody (and a device holding it is disconnected live).
        await self._store.revoke_participant_invites(
            org.id,
            participant.id,
            now,
            [
                AuditEvent(
                    "invite.revoked",
                    actor,
                    org.id,
                    session_id=session.id,
                    person_id=participant.person_id,
                    data={"participant": participant.id, "reason": "reissued"},
                )
            ],
        )
        await self._store.add_invite(
            invite,
            [
                AuditEvent(
                    "invite.issued",
                    actor,
                    org.id,
                    session_id=session.id,
                    person_id=participant.person_id,
                    data={
                        "invite": invite.id,
                        "participant": participant.id,
                        "expires_at": expires_at.isoformat(),
                    },
                )
            ],
        )
        if self._changed is not None:  # an earlier invite may have been revoked above
            await self._changed()
        return IssuedInvite(invite, token)

    async def revoke_invite(self, org: Organisation, actor: str, invite_id: str) -> Invite:
        invite = await self._store.invite(org.id, invite_id)
        if invite is None:
            raise Refusal(ErrorCode.NOT_FOUND, "No such invite.")
        event = AuditEvent(
            "invite.revoked",
            actor,
            org.id,
            session_id=invite.session_id,
            data={"invite": invite.id},
        )
        await self._store.revoke_invite(org.id, invite_id, self._clock.now(), [event])
        if self._changed is not None:
            await self._changed()
        revoked = await self._store.invite(org.id, invite_id)
        assert revoked is not None
        return revoked

    async def end(self, org: Organisation, actor: str, session_id: str) -> Session:
        """Ending a session always works, whatever else is failing."""
        await self.get(org, session_id)
        event = AuditEvent("session.ended", actor, org.id, session_id=session_id)
        await self._store.end_session(org.id, session_id, self._clock.now(), [event])
        if self._changed is not None:  # the session's owner disconnects everyone now
            await self._changed()
        return await self.get(org, session_id)
