"""Abuse limits on joining (R1): wrong passwords, second devices, floods, bad invites.

What is counted, where, and why there:

* **Wrong passwords**, per invite holder, per source address and per organisation, in SQL
  (`SqlFailureLedger`): durable, shared by every process, counted in the transaction that
  audits the failure. Password joins are few and each already costs an argon2 hash (tens of
  milliseconds), so one indexed read per password join and one write per failure cost little,
  and a single truth cannot drift (the alternative, Redis counters re-seeded from SQL when
  missing, keeps two copies that disagree after every flush). Nothing of this path needs Redis.
* **Second-device attempts**, per invite holder, in SQL as well: the first in a window alerts
  the host, later ones only count; past a limit they are answered 429.
* **Floods** (joins per invite and per source, refused bad invites per source) in this process
  only (`InProcessAttemptLimiter`): they protect this process's own time, so a per-process
  count is the right one, and it costs no round trip on the join path.

The per-invite limit is a *lock*, soft: the host (`readmit`, from the session page) or an admin
(`unlock`, over the API) lifts it, audited; the host is alerted once when it closes. The
per-source and per-organisation limits are not locks (one school's children share an address):
past them a right password still gets in, but checks go one at a time per source after a pause
and a wrong answer is 429, so guessing slows to a crawl (see `domain.attempts`).

Every refused bad invite (forged, expired, revoked, unknown, another session's) gets one answer,
INVITE_INVALID with one message, after spending one password check's time, so neither the
answer nor its time says which it was; the audit log records the real reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from gateway.clock import Clock
from gateway.domain.attempts import (
    Limits,
    PasswordVerdict,
    Tally,
    after_wrong_password,
    before_password,
)
from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.models import SessionRole
from gateway.domain.outbox import OutboxMessage
from gateway.domain.policy import Policy
from gateway.services.ports import Alerts, AttemptLimiter, JoinRecord, Store

log = logging.getLogger(__name__)

__all__ = [
    "BAD_INVITE_MESSAGE",
    "AttemptGuard",
    "FailureLedger",
    "PasswordChecker",
    "TooManyAttempts",
]

BAD_INVITE_MESSAGE = "This invite is not valid. Ask the person who invited you for a new link."
BAD_INVITE_CODES = frozenset(
    {ErrorCode.INVITE_INVALID, ErrorCode.INVITE_EXPIRED, ErrorCode.INVITE_REVOKED}
)

# Floods, per process and per minute (joins: the policy's `invites.joins_per_minute_*`; a class
# of thirty behind one school address, each reloading a few times, stays far below the default
# per-source figure).
FLOOD_WINDOW_SECONDS = 60
BAD_INVITES_PER_SOURCE = 60
# Second-device attempts per invite holder within the policy's attempt window, before 429.
OTHER_DEVICE_ATTEMPTS = 10
# Concerns per participant: the first in a window opens an incident, the next ones in it are
# added to that incident (one alert), past the limit 429.
CONCERN_WINDOW = timedelta(minutes=10)
CONCERNS_PER_WINDOW = 5
# Past the source or organisation limit: the pause before each check, and how many checks
# from one source may wait for their turn before the next is refused outright.
SLOW_LANE_SECONDS = 1.0
SLOW_LANE_WAITING = 4


class FailureLedger(Protocol):
    """Durable failure tallies (`adapters/sql/attempts.py`)."""

    async def tallies(self, keys: Collection[str]) -> dict[str, Tally]: ...
    async def fail(
        self,
        keys: Collection[str],
        window: timedelta,
        now: datetime,
        events: Callable[[Mapping[str, Tally]], Sequence[AuditEvent]],
        ref: str | None = None,
        messages: Callable[[Mapping[str, Tally]], Sequence[OutboxMessage]] | None = None,
    ) -> dict[str, Tally]: ...
    async def clear(self, keys: Collection[str], events: Sequence[AuditEvent]) -> None: ...


class LockNotices(Protocol):
    """Who is told of a locked invite (services/notifications.py): the host and the DSL."""

    def invite_locked(
        self, org_id: str, session_id: str, participant_display_name: str
    ) -> list[OutboxMessage]: ...


class PasswordChecker(Protocol):
    async def verify(self, stored_hash: str, password: str) -> bool: ...
    async def equalise(self, password: str | None = None) -> None: ...


class TooManyAttempts(Refusal):
    def __init__(self, retry_after: float) -> None:
        super().__init__(
            ErrorCode.TOO_MANY_ATTEMPTS, "Too many attempts; wait and try again.", retry_after
        )


def _invite_key(participant_id: str) -> str:
    # Per invite holder: a re-issued link does not reset a lock, only the host or an admin does.
    return f"invite:{participant_id}"


def _source_key(source: str) -> str:
    # Addresses are stored only hashed (they identify people's homes and schools).
    return "source:" + hashlib.sha256(source.encode("utf-8")).hexdigest()[:40]


def _org_key(org_id: str) -> str:
    return f"org:{org_id}"


def _device_key(participant_id: str) -> str:
    return f"device:{participant_id}"


class _Lanes:
    """One check at a time per key, with a bounded queue (this process)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def one_at_a_time(self, key: str, max_waiting: int) -> AsyncIterator[None]:
        if self._waiting.get(key, 0) >= max_waiting:
            raise TooManyAttempts(SLOW_LANE_SECONDS * (max_waiting + 1))
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._waiting[key] -= 1
            if self._waiting[key] == 0:
                del self._waiting[key]
                del self._locks[key]


class AttemptGuard:
    def __init__(
        self,
        ledger: FailureLedger,
        floods: AttemptLimiter,
        passwords: PasswordChecker,
        alerts: Alerts,
        store: Store,
        clock: Clock,
        *,
        notifications: LockNotices | None = None,
        slow_lane_seconds: float = SLOW_LANE_SECONDS,
    ) -> None:
        self._ledger = ledger
        self._notifications = notifications
        self._floods = floods
        self._passwords = passwords
        self._alerts = alerts
        self._store = store
        self._clock = clock
        self._slow_lane_seconds = slow_lane_seconds
        self._invite_lanes = _Lanes()
        self._source_lanes = _Lanes()

    # joining ------------------------------------------------------------------------------------
    async def check_join(
        self,
        record: JoinRecord,
        policy: Policy,
        password: str | None,
        source: str,
        *,
        device_proven: bool = False,
    ) -> None:
        """Flood limits, then the session password (when it has one) under the limits above.

        `device_proven`: the invite is bound to this very device, which happens only after a
        join that gave the right password, and the session still runs: a reload on the same
        device that gives no password is not asked it again (the device cookie is the proof).
        A password it does give is checked and counted as ever."""
        now = self._clock.now()
        invites = policy.invites
        await self._flood(
            f"join:invite:{record.participant.id}", invites.joins_per_minute_per_invite, now
        )
        await self._flood(f"join:{_source_key(source)}", invites.joins_per_minute_per_source, now)
        stored_hash = record.session_password_hash
        if stored_hash is None or (device_proven and not password):
            return
        limits = _limits(policy)
        keys = (
            _invite_key(record.participant.id),
            _source_key(source),
            _org_key(record.invite.org_id),
        )
        # Concurrent guesses at one invite in this process wait for each other, so they cannot
        # all read the tally before any of them has counted.
        async with self._invite_lanes.one_at_a_time(keys[0], SLOW_LANE_WAITING):
            tallies = await self._ledger.tallies(keys)
            before = before_password(*_three(tallies, keys), limits, now)
            if before.locked_for is not None:
                raise TooManyAttempts(before.locked_for)
            if not password:
                raise Refusal(ErrorCode.PASSWORD_REQUIRED, "This session needs its password.")
            if before.slowed:
                async with self._source_lanes.one_at_a_time(keys[1], SLOW_LANE_WAITING):
                    await asyncio.sleep(self._slow_lane_seconds)
                    right = await self._passwords.verify(stored_hash, password)
            else:
                right = await self._passwords.verify(stored_hash, password)
            if right:
                if tallies[keys[0]].current(now) > 0:
                    await self._ledger.clear([keys[0]], [])
                return
            await self._wrong_password(record, keys, limits, now)

    async def _wrong_password(
        self, record: JoinRecord, keys: tuple[str, str, str], limits: Limits, now: datetime
    ) -> None:
        verdicts: list[PasswordVerdict] = []

        def events(after: Mapping[str, Tally]) -> list[AuditEvent]:
            verdict = after_wrong_password(*_three(after, keys), limits, now)
            verdicts.append(verdict)
            found = [
                self._event(
                    record,
                    "join.password_wrong",
                    {
                        "invite_failures": after[keys[0]].current(now),
                        "source_failures": after[keys[1]].current(now),
                        "org_failures": after[keys[2]].current(now),
                    },
                )
            ]
            if verdict.locked_now:
                found.append(self._event(record, "invite.locked", {"limit": limits.per_invite}))
            if verdict.source_limited_now:
                found.append(self._event(record, "source.slowed", {"limit": limits.per_source}))
            if verdict.org_limited_now:
                found.append(self._event(record, "org.slowed", {"limit": limits.per_org}))
            return found

        def messages(after: Mapping[str, Tally]) -> list[OutboxMessage]:
            # The host and the DSL are told by the outbox, queued with the lock's audit event:
            # only the failure that reached the limit (locked_now) queues them, so once a lock.
            if self._notifications is None or not verdicts[-1].locked_now:
                return []
            return self._notifications.invite_locked(
                record.invite.org_id,
                record.invite.session_id,
                record.participant.display_name,
            )

        await self._ledger.fail(keys, limits.window, now, events, messages=messages)
        verdict = verdicts[-1]
        if verdict.locked_now:
            # One alert per lock: only the failure that reached the limit sees locked_now.
            await self._alert(
                record,
                {
                    "kind": "invite_locked",
                    "participant": record.participant.masked_identity,
                    "display_name": record.participant.display_name,
                    "retry_after": int(verdict.locked_for or 0),
                },
            )
        if verdict.locked_for is not None:
            raise TooManyAttempts(verdict.locked_for)
        if verdict.slowed:
            raise TooManyAttempts(self._slow_lane_seconds)
        raise Refusal(ErrorCode.PASSWORD_WRONG, "That password is not right.")

    async def other_device(self, record: JoinRecord, policy: Policy) -> Refusal:
        """An invite already bound to another device: count it, alert the host on the first
        attempt in a window only, and answer INVITE_OTHER_DEVICE (429 past a limit)."""
        now = self._clock.now()
        key = _device_key(record.participant.id)
        window = timedelta(minutes=policy.invites.attempt_window_minutes)

        def events(after: Mapping[str, Tally]) -> list[AuditEvent]:
            return [
                self._event(record, "invite.other_device", {"attempts": after[key].current(now)})
            ]

        tally = (await self._ledger.fail([key], window, now, events))[key]
        if tally.current(now) == 1:
            await self._alert(
                record,
                {
                    "kind": "invite_other_device",
                    "participant": record.participant.masked_identity,
                    "display_name": record.participant.display_name,
                },
            )
        if tally.current(now) > OTHER_DEVICE_ATTEMPTS:
            return TooManyAttempts(tally.wait(now))
        return Refusal(
            ErrorCode.INVITE_OTHER_DEVICE, "This invite is already in use on another device."
        )

    async def refused_join(self, refusal: Refusal, source: str) -> Refusal:
        """The answer to a refused join. Bad invites of every kind get one answer, in one
        time; the audit keeps the real reason. Other refusals pass unchanged."""
        if refusal.code not in BAD_INVITE_CODES:
            return refusal
        now = self._clock.now()
        key = f"bad:{_source_key(source)}"
        wait = await self._floods.check(key, BAD_INVITES_PER_SOURCE, FLOOD_WINDOW_SECONDS, now)
        if wait is not None:  # a flood: neither hashed nor audited one by one
            return TooManyAttempts(wait)
        await self._floods.fail(key, FLOOD_WINDOW_SECONDS, now)
        await self._passwords.equalise()
        await self._store.record(
            [
                AuditEvent(
                    "join.invite_refused",
                    "anonymous",
                    None,
                    data={"reason": refusal.code.value, "detail": refusal.message},
                )
            ]
        )
        return Refusal(ErrorCode.INVITE_INVALID, BAD_INVITE_MESSAGE)

    # concerns -----------------------------------------------------------------------------------
    async def concern(
        self, record: JoinRecord, note: str | None, report: Callable[[], Awaitable[str]]
    ) -> str:
        """`report()` opens an incident (and alerts) for the first concern of a participant in
        a window; later ones in the window go to that incident (audited, no new alert), and
        past CONCERNS_PER_WINDOW the answer is 429. The incident's id either way."""
        now = self._clock.now()
        key = f"concern:{record.participant.id}"
        tally = (await self._ledger.tallies([key]))[key]
        if tally.current(now) >= CONCERNS_PER_WINDOW:
            raise TooManyAttempts(tally.wait(now))
        if tally.current(now) == 0 or tally.ref is None:
            incident_id = await report()
            await self._ledger.fail([key], CONCERN_WINDOW, now, lambda _: [], ref=incident_id)
            return incident_id
        incident_id = tally.ref

        def events(after: Mapping[str, Tally]) -> list[AuditEvent]:
            return [
                self._event(
                    record,
                    "incident.concern_repeated",
                    {
                        "incident": incident_id,
                        "concerns": after[key].current(now),
                        "note": note is not None,
                    },
                )
            ]

        await self._ledger.fail([key], CONCERN_WINDOW, now, events)
        return incident_id

    # lifting a lock -----------------------------------------------------------------------------
    async def readmit(self, host: JoinRecord, identity: str) -> None:
        """The host lets a locked-out participant of their session try again."""
        if host.participant.role is not SessionRole.HOST:
            raise Refusal(ErrorCode.FORBIDDEN, "Only the session's host can do that.")
        invite = host.invite
        found = [
            p
            for p in await self._store.participants(invite.org_id, invite.session_id)
            if p.masked_identity == identity
        ]
        if not found:
            raise Refusal(ErrorCode.NOT_FOUND, "No such participant in this session.")
        participant = found[0]
        await self._ledger.clear(
            [_invite_key(participant.id), _device_key(participant.id)],
            [
                AuditEvent(
                    "invite.readmitted",
                    host.participant.masked_identity,
                    invite.org_id,
                    session_id=invite.session_id,
                    person_id=participant.person_id,
                    data={"participant": participant.id, "by": "host"},
                )
            ],
        )

    async def unlock(self, org_id: str, invite_id: str, actor: str) -> None:
        """An admin lifts an invite's lock (API key of the invite's organisation)."""
        invite = await self._store.invite(org_id, invite_id)
        if invite is None:
            raise Refusal(ErrorCode.NOT_FOUND, "No such invite.")
        await self._ledger.clear(
            [_invite_key(invite.participant_id), _device_key(invite.participant_id)],
            [
                AuditEvent(
                    "invite.readmitted",
                    actor,
                    org_id,
                    session_id=invite.session_id,
                    data={
                        "invite": invite.id,
                        "participant": invite.participant_id,
                        "by": "admin",
                    },
                )
            ],
        )

    # helpers ------------------------------------------------------------------------------------
    async def _flood(self, key: str, limit: int, now: datetime) -> None:
        wait = await self._floods.check(key, limit, FLOOD_WINDOW_SECONDS, now)
        if wait is not None:
            raise TooManyAttempts(wait)
        await self._floods.fail(key, FLOOD_WINDOW_SECONDS, now)

    async def _alert(self, record: JoinRecord, alert: Mapping[str, object]) -> None:
        try:
            await self._alerts.publish(record.invite.org_id, record.invite.session_id, alert)
        except Exception:  # the refusal stands and is audited; the alert is best effort here
            log.exception("alert could not be published")

    def _event(self, record: JoinRecord, kind: str, data: Mapping[str, object]) -> AuditEvent:
        return AuditEvent(
            kind,
            record.participant.masked_identity,
            record.invite.org_id,
            session_id=record.invite.session_id,
            person_id=record.participant.person_id,
            data={"invite": record.invite.id, "participant": record.participant.id, **data},
        )


def _limits(policy: Policy) -> Limits:
    invites = policy.invites
    return Limits(
        per_invite=invites.password_max_attempts,
        per_source=invites.source_max_attempts,
        per_org=invites.org_max_attempts,
        window=timedelta(minutes=invites.attempt_window_minutes),
    )


def _three(tallies: Mapping[str, Tally], keys: tuple[str, str, str]) -> tuple[Tally, Tally, Tally]:
    return tallies[keys[0]], tallies[keys[1]], tallies[keys[2]]
