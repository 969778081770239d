"""Redeeming an invite: verify it, bind it to a device, check the password, decide, audit.

The decision itself is `domain.admission.decide_join`; this service only gathers its facts and
carries out what it says (R1, R2, R3, R4, R6, R16, R18).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from gateway.clock import Clock
from gateway.domain.admission import (
    JoinFacts,
    Standing,
    confirm_supervised,
    counts_as_vetted_adult,
    decide_join,
    invite_reasons,
    join_reads_presence,
    standing_reasons,
)
from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal, Unavailable
from gateway.domain.hours import local_date
from gateway.domain.invite_token import InviteClaims, device_hash
from gateway.domain.models import (
    Decision,
    Outcome,
    Participant,
    Person,
    Presence,
    Session,
    SessionRole,
)
from gateway.domain.policy import Policy
from gateway.services.attempts import AttemptGuard
from gateway.services.policies import PolicyBook
from gateway.services.ports import (
    Alerts,
    InviteTokenCodec,
    JoinRecord,
    LiveState,
    PasswordHasher,
    Store,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JoinResult:
    decision: Decision
    session: Session
    participant: Participant
    device_secret: str | None  # set when this join bound the invite to a new device
    record: JoinRecord
    policy: Policy
    # The masked name of the session's host (its tutor), shown on "Before you go in" (R3).
    host_display_name: str | None = None
    # Whether this join entered a presence in the live state (anyone but a counting adult,
    # who is entered once their media is connected): then supervision has something new to see.
    entered: bool = False


DeviceOf = Callable[[str], str | None]


class AdmissionService:
    def __init__(
        self,
        store: Store,
        live: LiveState,
        policies: PolicyBook,
        tokens: InviteTokenCodec,
        hasher: PasswordHasher,
        attempts: AttemptGuard,
        alerts: Alerts,
        clock: Clock,
    ) -> None:
        self._store = store
        self._live = live
        self._policies = policies
        self._tokens = tokens
        self._hasher = hasher
        self._attempts = attempts  # abuse limits: services/attempts.py
        self._alerts = alerts
        self._clock = clock
        self._policy_paths: dict[str, str] = {}

    async def policy_of(self, org_id: str) -> Policy:
        """The organisation's policy (read once per process)."""
        return await self._policy_of(org_id)

    async def _policy_of(self, org_id: str) -> Policy:
        # An organisation's policy file is fixed when it is created, so one read per process
        # is enough; the join path stays a single query.
        path = self._policy_paths.get(org_id)
        if path is None:
            org = await self._store.organisation(org_id)
            if org is None:
                raise Refusal(ErrorCode.INVITE_INVALID, "This invite is not valid.")
            path = self._policy_paths[org_id] = org.policy_path or ""
        return self._policies.for_path(path or None)

    async def join(
        self, token: str, password: str | None, device_of: DeviceOf, source: str
    ) -> JoinResult:
        """`device_of(invite_id)`: the device secret this browser presents for that invite (its
        cookie is named after the invite, which is known only once the token is verified)."""
        return await self.join_verified(self.verify(token), password, device_of, source)

    async def join_verified(
        self, claims: InviteClaims, password: str | None, device_of: DeviceOf, source: str
    ) -> JoinResult:
        """`join` for claims `verify` returned moments ago (the live service verifies the
        token once, to find the session's owner, and passes the claims on)."""
        now = self._clock.now()
        device_secret = device_of(claims.invite_id)
        record = await self._store.join_record(claims.invite_id)
        if (
            record is None
            or record.invite.org_id != claims.org_id
            or record.invite.session_id != claims.session_id
        ):
            raise Refusal(ErrorCode.INVITE_INVALID, "This invite is not valid.")
        invite = record.invite
        policy = await self._policy_of(invite.org_id)
        # Removed, revoked or expired: refused before anything of this join is recorded.
        _refuse_for(invite_reasons(invite, record.removed_at, now))
        if invite.device_hash is not None and (
            device_secret is None
            or not secrets.compare_digest(device_hash(device_secret), invite.device_hash)
        ):
            await self._other_device(record)
        # Past the check above, a bound invite is bound to this device (it proved the password
        # when it was bound); while the session runs, a reload is not asked it again.
        device_proven = (
            invite.device_hash is not None
            and record.session.ended_at is None
            and now < record.session.ends_at
        )
        await self._check_password(record, policy, password, source, device_proven)

        try:
            present = (
                [
                    p
                    for p in await self._live.present(invite.session_id)
                    if p.participant_id != invite.participant_id
                ]
                if join_reads_presence(record.participant, record.person)
                else []
            )
        except Exception as exc:  # fail closed: nobody is admitted on a guess
            log.warning("live state unavailable; refusing admission")
            raise Unavailable(
                ErrorCode.LIVE_STATE_UNAVAILABLE,
                "The gateway cannot check who is in the session right now; try again shortly.",
            ) from exc
        decision = decide_join(
            JoinFacts(
                now=now,
                policy=policy,
                session=record.session,
                participant=record.participant,
                person=record.person,
                consents=record.consents,
                present=present,
            )
        )
        entered = False
        if decision.outcome is not Outcome.DENY:
            presence = presence_of(
                record.participant, record.person, policy, local_date(now, policy), decision
            )
            # An adult who counts is entered only once their media is connected (the live
            # service does it): an adult who joined over HTTP and never connected is not there.
            if not presence.vetted_adult:
                try:
                    now_present = await self._live.enter(invite.session_id, presence)
                except Exception as exc:  # unseen by supervision means not admitted at all
                    raise Unavailable(
                        ErrorCode.LIVE_STATE_UNAVAILABLE,
                        "The gateway cannot record who is in the session right now; try again.",
                    ) from exc
                entered = True
                decision = await self._confirm(decision, record, policy, now_present)
        event = AuditEvent(
            "join.decision",
            actor=record.participant.masked_identity,
            org_id=invite.org_id,
            session_id=invite.session_id,
            person_id=record.participant.person_id,
            data={"invite": invite.id, "participant": record.participant.id, **decision.as_dict()},
        )
        # The device is bound (and the decision audited) only once the whole admission has
        # succeeded: a live-state failure above burns nothing, so a retry is no "other device".
        new_secret = None
        try:
            if decision.outcome is not Outcome.DENY and invite.device_hash is None:
                new_secret = secrets.token_urlsafe(32)
                bound = await self._store.bind_device(
                    invite.id, device_hash(new_secret), now, [event]
                )
                if bound != device_hash(new_secret):  # another device won the race
                    await self._undo_entry(invite.session_id, invite.participant_id, entered)
                    entered = False
                    await self._other_device(record)
            else:
                await self._store.record([event])
        except BaseException:
            await self._undo_entry(invite.session_id, invite.participant_id, entered)
            raise
        # The host's masked display name (never the real name), for the join page: read with
        # the join record, no read of its own.
        host = (
            record.participant.display_name
            if record.participant.role is SessionRole.HOST
            else record.host_display_name
        )
        return JoinResult(
            decision, record.session, record.participant, new_secret, record, policy, host, entered
        )

    async def _confirm(
        self,
        decision: Decision,
        record: JoinRecord,
        policy: Policy,
        present: Sequence[Presence],
    ) -> Decision:
        """The child is in: count the adults again (see `confirm_supervised`), in who was
        present at the moment of the entry (`enter` reads it in the same atomic step)."""
        if decision.outcome is not Outcome.ADMIT:
            return decision
        session_id, participant_id = record.invite.session_id, record.participant.id
        try:
            confirmed = confirm_supervised(decision, record.person, participant_id, present, policy)
            if confirmed.outcome is Outcome.HOLD:
                await self._live.set_held(session_id, participant_id, True)
        except Exception as exc:
            await self._undo_entry(session_id, participant_id, True)
            raise Unavailable(
                ErrorCode.LIVE_STATE_UNAVAILABLE,
                "The gateway cannot check who is in the session right now; try again shortly.",
            ) from exc
        return confirmed

    async def _undo_entry(self, session_id: str, participant_id: str, entered: bool) -> None:
        if not entered:
            return
        try:
            await self._live.leave(session_id, participant_id)
        except Exception:
            log.exception("live state unavailable while undoing an unaudited entry")

    def verify(self, token: str) -> InviteClaims:
        """The claims of a genuine, current invite token (signature and expiry checked; no
        I/O), else Refusal."""
        return self._tokens.verify(token, self._clock.now())

    async def participant(self, token: str, device_of: DeviceOf) -> JoinRecord:
        """Who is calling, if they still stand in the session: a redeemed invite on the device
        it is bound to, and the one standing check (not removed, invite neither revoked nor
        expired, session not ended, a child's consent still valid) over current SQL facts.
        Every participant path but leaving passes here."""
        record = await self.bound(token, device_of)
        _refuse_for(await self.standing(record))
        return record

    async def standing(self, record: JoinRecord) -> tuple[str, ...]:
        """Why this participant may no longer act or stay (empty: they may)."""
        return standing_reasons(
            Standing(
                now=self._clock.now(),
                policy=await self._policy_of(record.invite.org_id),
                invite=record.invite,
                session=record.session,
                person=record.person,
                consents=record.consents,
                removed_at=record.removed_at,
            )
        )

    async def bound(self, token: str, device_of: DeviceOf) -> JoinRecord:
        """A redeemed invite and the device it is bound to; nothing else is checked."""
        claims = self._tokens.verify(token, self._clock.now())
        device_secret = device_of(claims.invite_id)
        record = await self._store.join_record(claims.invite_id)
        if record is None or record.invite.device_hash is None or device_secret is None:
            raise Refusal(ErrorCode.INVITE_INVALID, "This invite is not valid.")
        if not secrets.compare_digest(device_hash(device_secret), record.invite.device_hash):
            raise Refusal(ErrorCode.INVITE_OTHER_DEVICE, "This invite belongs to another device.")
        return record

    async def leave(self, token: str, device_of: DeviceOf) -> JoinRecord:
        """Leaving always works for the device the invite is bound to, removed or not. The
        departure is written to SQL first, so the process holding the media lets go too."""
        record = await self.bound(token, device_of)
        await self._store.record_departure(
            record.invite.org_id,
            record.participant.id,
            [
                AuditEvent(
                    "participant.left",
                    record.participant.masked_identity,
                    record.invite.org_id,
                    session_id=record.invite.session_id,
                    person_id=record.participant.person_id,
                )
            ],
        )
        try:
            await self._live.leave(record.invite.session_id, record.participant.id)
        except Exception:  # leaving is never blocked; reconciliation tidies up later
            log.exception("live state unavailable while leaving")
        return record

    async def _other_device(self, record: JoinRecord) -> None:
        policy = await self._policy_of(record.invite.org_id)
        raise await self._attempts.other_device(record, policy)

    async def _check_password(
        self,
        record: JoinRecord,
        policy: Policy,
        password: str | None,
        source: str,
        device_proven: bool,
    ) -> None:
        await self._attempts.check_join(
            record, policy, password, source, device_proven=device_proven
        )


# What each standing reason tells the participant (the first reason wins).
_REFUSALS: dict[str, tuple[ErrorCode, str]] = {
    "participant_removed": (ErrorCode.INVITE_REVOKED, "You were removed from this session."),
    "invite_revoked": (ErrorCode.INVITE_REVOKED, "This invite has been withdrawn."),
    "invite_expired": (ErrorCode.INVITE_EXPIRED, "This invite has expired."),
    "session_ended": (ErrorCode.SESSION_ENDED, "This session has ended."),
    "no_participation_consent": (
        ErrorCode.FORBIDDEN,
        "Taking part needs a parent's or carer's written agreement, which is not in place.",
    ),
}


def _refuse_for(reasons: tuple[str, ...]) -> None:
    if reasons:
        code, message = _REFUSALS[reasons[0]]
        raise Refusal(code, message)


def presence_of(
    participant: Participant, person: Person, policy: Policy, today: date, decision: Decision
) -> Presence:
    return Presence(
        participant_id=participant.id,
        role=participant.role,
        person_kind=participant.person_kind,
        vetted_adult=counts_as_vetted_adult(person, participant.role, policy, today),
        held=decision.outcome is Outcome.HOLD,
    )
