"""Redeeming an invite: verify it, bind it to a device, check the password, decide, audit.

The decision itself is `domain.admission.decide_join`; this service only gathers its facts and
carries out what it says (R1, R2, R3, R4, R6, R16, R18).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from gateway.clock import Clock
from gateway.domain.admission import JoinFacts, decide_join, is_vetted_adult
from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal, Unavailable
from gateway.domain.hours import local_date
from gateway.domain.invite_token import device_hash
from gateway.domain.models import Decision, Outcome, Participant, Person, Presence, Session, Staff
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
        now = self._clock.now()
        claims = self._tokens.verify(token, now)
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
        if invite.revoked_at is not None:
            raise Refusal(ErrorCode.INVITE_REVOKED, "This invite has been withdrawn.")
        if invite.expires_at <= now:
            raise Refusal(ErrorCode.INVITE_EXPIRED, "This invite has expired.")
        if invite.device_hash is not None and (
            device_secret is None
            or not secrets.compare_digest(device_hash(device_secret), invite.device_hash)
        ):
            await self._other_device(record)
        await self._check_password(record, policy, password, source)

        try:
            present = [
                p
                for p in await self._live.present(invite.session_id)
                if p.participant_id != invite.participant_id
            ]
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
        event = AuditEvent(
            "join.decision",
            actor=record.participant.masked_identity,
            org_id=invite.org_id,
            session_id=invite.session_id,
            person_id=record.participant.person_id,
            data={"invite": invite.id, "participant": record.participant.id, **decision.as_dict()},
        )
        new_secret = None
        if decision.outcome is not Outcome.DENY and invite.device_hash is None:
            new_secret = secrets.token_urlsafe(32)
            bound = await self._store.bind_device(invite.id, device_hash(new_secret), now, [event])
            if bound != device_hash(new_secret):  # another device won the race
                await self._other_device(record)
        else:
            await self._store.record([event])
        if decision.outcome is not Outcome.DENY:
            presence = presence_of(
                record.participant, record.person, policy, local_date(now, policy), decision
            )
            try:
                await self._live.enter(invite.session_id, presence)
            except Exception as exc:  # unseen by supervision means not admitted at all
                raise Unavailable(
                    ErrorCode.LIVE_STATE_UNAVAILABLE,
                    "The gateway cannot record who is in the session right now; try again.",
                ) from exc
        return JoinResult(decision, record.session, record.participant, new_secret, record, policy)

    async def participant(self, token: str, device_of: DeviceOf) -> JoinRecord:
        """Who is calling, from a redeemed invite and the device it is bound to."""
        claims = self._tokens.verify(token, self._clock.now())
        device_secret = device_of(claims.invite_id)
        record = await self._store.join_record(claims.invite_id)
        if record is None or record.invite.device_hash is None or device_secret is None:
            raise Refusal(ErrorCode.INVITE_INVALID, "This invite is not valid.")
        if not secrets.compare_digest(device_hash(device_secret), record.invite.device_hash):
            raise Refusal(ErrorCode.INVITE_OTHER_DEVICE, "This invite belongs to another device.")
        return record

    async def leave(self, token: str, device_of: DeviceOf) -> JoinRecord:
        """Leaving always works for the device the invite is bound to."""
        record = await self.participant(token, device_of)
        try:
            await self._live.leave(record.invite.session_id, record.participant.id)
        except Exception:  # leaving is never blocked; reconciliation tidies up later
            log.exception("live state unavailable while leaving")
        await self._store.record(
            [
                AuditEvent(
                    "participant.left",
                    record.participant.masked_identity,
                    record.invite.org_id,
                    session_id=record.invite.session_id,
                    person_id=record.participant.person_id,
                )
            ]
        )
        return record

    async def _other_device(self, record: JoinRecord) -> None:
        policy = await self._policy_of(record.invite.org_id)
        raise await self._attempts.other_device(record, policy)

    async def _check_password(
        self, record: JoinRecord, policy: Policy, password: str | None, source: str
    ) -> None:
        await self._attempts.check_join(record, policy, password, source)


def presence_of(
    participant: Participant, person: Person, policy: Policy, today: date, decision: Decision
) -> Presence:
    return Presence(
        participant_id=participant.id,
        role=participant.role,
        person_kind=participant.person_kind,
        vetted_adult=isinstance(person, Staff)
        and is_vetted_adult(person, participant.role, policy, today),
        held=decision.outcome is Outcome.HOLD,
    )
