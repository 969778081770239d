"""Recording a live session (R7, R8, R9, R10, R12): start, stop, and keeping its scope right.

A recording run belongs to one session and runs on the session's authority (the process whose
relay carries the media, authority.py); at most one runs per session (the run is opened in SQL
under a unique key, so two starts racing, in one process or two, leave exactly one run). Who is
recorded is decided in `domain.recording_scope`; this module carries it out, one catalogue
recording per person's own tracks (`RecordingsService.start`, then the `ParticipantRecorder`):

  start      the host (or the API) names a purpose; everyone connected who publishes must have
             valid consent for it, else the refusal lists who lacks what (masked names) and
             nothing is recorded. Each person is catalogued, then their consent is read again
             before the recorder attaches: a withdrawal racing the start is never recorded.
  newcomer   someone whose media connects while a run goes on is recorded, left out, or the
             run stops, as the policy says (`recording.child_declines`);
  leaving    whoever leaves or is taken out: their recording is sealed at once;
  facts      every re-read of the durable facts (a nudge within seconds of a withdrawal, and
             every reconciliation round) checks the consent of everyone recorded: someone
             whose consent went stops being recorded at once (the withdrawal's destruction then
             destroys what was made);
  failure    the recorder failing (disk full) seals that recording as incomplete, the host is
             told, the session goes on;
  lapse      this process unable to renew its registration in time (SQL unreachable, the
             machine stalled): its writers refuse every batch from the moment the registration
             could lapse (another process's recovery may then seal them), every run stops, the
             host is told, and the recordings are sealed as incomplete once SQL answers again
             (or by that recovery, once and only once);
  ending     the session ending, or this process losing its authority, stops the run.

Every change of scope is audited (`recording.*`), ids and masked identities only; every
participant's stream hears whether a recording runs and whether they are in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal, Unavailable
from gateway.domain.hours import local_date
from gateway.domain.models import ConsentRecord, PersonKind, SessionRole
from gateway.domain.policy import Policy
from gateway.domain.recording_scope import (
    DAY_ANSWERS,
    Candidate,
    Lack,
    NewcomerAction,
    StartDecision,
    check_recording_purpose,
    decide_newcomer,
    decide_start,
)
from gateway.services.admission import DeviceOf
from gateway.services.live.authority import SessionAuthority
from gateway.services.live.state import Event, LivePorts, LiveRegistry, Seat, SessionLocks
from gateway.services.live.streams import Streams
from gateway.services.organisations import new_id
from gateway.services.ports import JoinRecord, Organisation
from gateway.services.recording_ports import ParticipantRecorder
from gateway.services.recordings import RecordingHandle, RecordingsService, RegistrationLapsed

__all__ = ["LiveRecording", "RecordingRefused", "RecordingRuns"]

log = logging.getLogger(__name__)
# Reasons someone stays out for the rest of a run (a viewer; a recorder that failed on them).
PERMANENT = frozenset({"does_not_publish", "recorder_failed"})
# Why every run of a process stops when its registration could not be renewed in time.
REGISTRATION_LAPSED = "registration_lapsed"


class RecordingRuns(Protocol):
    """Runs and the day's answers in SQL (adapters/sql/recording_runs.py)."""

    async def open(
        self,
        run_id: str,
        org_id: str,
        session_id: str,
        purpose: str,
        started_by: str,
        events: Sequence[AuditEvent],
    ) -> int: ...
    async def close(self, run_id: str, reason: str, events: Sequence[AuditEvent]) -> bool: ...
    async def running_id(self, session_id: str) -> str | None: ...
    async def running_purpose(self, session_id: str) -> str | None: ...
    async def set_day_answer(
        self,
        org_id: str,
        session_id: str,
        participant_id: str,
        answer: str,
        events: Sequence[AuditEvent],
    ) -> None: ...
    async def day_answers(self, session_id: str) -> Mapping[str, str]: ...


class RecordingRefused(Refusal):
    """Not everyone who would be recorded may be: who (masked) lacks what."""

    def __init__(self, lacking: Sequence[Lack]) -> None:
        who = "; ".join(str(lack.as_dict()["says"]) for lack in lacking)
        super().__init__(
            ErrorCode.RECORDING_CONSENT_MISSING,
            "Recording cannot start: not everyone who would be recorded has agreed. " + who
            if lacking
            else "Recording cannot start: nobody in the session can be recorded yet.",
        )
        self.lacking = [lack.as_dict() for lack in lacking]


@dataclass
class _Person:
    identity: str
    participant_id: str
    handle: RecordingHandle


@dataclass
class _Run:
    id: str
    org: Organisation
    session_id: str
    purpose: str
    audio_only: bool
    actor: str
    people: dict[str, _Person] = field(default_factory=dict)  # by identity
    excluded: dict[str, str] = field(default_factory=dict)  # identity -> why left out
    stopping: bool = False


class LiveRecording:
    def __init__(
        self,
        ports: LivePorts,
        registry: LiveRegistry,
        streams: Streams,
        authority: SessionAuthority,
    ) -> None:
        self._ports = ports
        self._registry = registry
        self._streams = streams
        self._authority = authority
        # Wired by the composition root (app.py); without them nothing can be recorded.
        self.runs: RecordingRuns | None = None
        self.recordings: RecordingsService | None = None
        self.recorder: ParticipantRecorder | None = None
        self._runs: dict[str, _Run] = {}  # by session id: the runs of sessions owned here
        self._locks = SessionLocks()  # held only while in use: bounded by what is live
        self._tasks: set[asyncio.Task[None]] = set()

    def _lock(self, session_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self._locks.hold(session_id)

    def held_sizes(self) -> Mapping[str, int]:
        """How many runs and session locks this process holds (bounded by what is live)."""
        return {"runs": len(self._runs), "locks": len(self._locks)}

    # what people see ---------------------------------------------------------------------------
    def status(self, session_id: str, identity: str | None = None) -> Event:
        """The recording indicator for one participant (or the session)."""
        run = self._runs.get(session_id)
        event: Event = {"type": "recording", "active": run is not None and not run.stopping}
        if run is not None and not run.stopping:
            event["purpose"] = run.purpose
            event["audio_only"] = run.audio_only
            if identity is not None:
                event["you"] = (
                    "recorded"
                    if identity in run.people
                    else ("excluded" if identity in run.excluded else "not_recorded")
                )
        return event

    def held_here(self, session_id: str) -> bool:
        """Whether this process holds the session's recording state (a run here, or the
        session's authority, where any run would be): then `status` is the truth."""
        return session_id in self._runs or self._authority.fence(session_id) is not None

    async def status_anywhere(self, session_id: str, identity: str | None = None) -> Event:
        """The indicator on whichever process asks. A run lives in the memory of the
        session's authority (`status`); an event stream or page served by another process
        reads the durable run (SQL) instead: an open run there shows as recording (who is in
        it is not known here: "you" is "unknown"), and when SQL cannot be read the answer is
        "unknown" (`active` null). A false "nobody is recording" is never said."""
        if self.held_here(session_id):
            return self.status(session_id, identity)
        if self.runs is None:  # recording is not wired on this gateway: no process records
            return self.status(session_id, identity)
        try:
            purpose = await self.runs.running_purpose(session_id)
        except Exception:
            log.warning("recording state unreadable; the indicator says unknown")
            return {"type": "recording", "active": None, "state": "unknown"}
        if purpose is None:
            return {"type": "recording", "active": False}
        event: Event = {"type": "recording", "active": True, "purpose": purpose}
        if identity is not None:
            event["you"] = "unknown"
        return event

    def _tell_everyone(self, session_id: str) -> None:
        for watcher in self._streams.watchers():
            if watcher.session_id == session_id:
                self._streams.push(watcher.identity, self.status(session_id, watcher.identity))

    async def _alert(self, run: _Run, alert: Mapping[str, object]) -> None:
        try:
            await self._ports.alerts.publish(run.org.id, run.session_id, dict(alert))
        except Exception:
            log.warning("a recording alert could not be sent to the host")

    async def _audit(
        self, org_id: str, session_id: str, kind: str, actor: str, data: Mapping[str, object]
    ) -> None:
        await self._ports.store.record(
            [AuditEvent(kind, actor, org_id, session_id=session_id, data=dict(data))]
        )

    # the day's answer (R8) ---------------------------------------------------------------------
    async def answer_today(self, token: str, device_of: DeviceOf, answer: str) -> Event:
        """A child says whether they are happy to be recorded today; stored with their place in
        the session, audited, and applied at once if a recording runs."""
        if answer not in DAY_ANSWERS:
            raise Refusal(ErrorCode.BODY_INVALID, "The answer must be yes or no.")
        record = await self._ports.admission.participant(token, device_of)
        if record.participant.role is not SessionRole.CHILD:
            raise Refusal(ErrorCode.FORBIDDEN, "Only children are asked this.")
        runs = self._need_runs()
        session_id = record.invite.session_id
        await runs.set_day_answer(
            record.invite.org_id,
            session_id,
            record.participant.id,
            answer,
            [
                AuditEvent(
                    "recording.day_answer",
                    record.participant.masked_identity,
                    record.invite.org_id,
                    session_id=session_id,
                    data={"participant": record.participant.id, "answer": answer},
                )
            ],
        )
        await self.recheck_session(session_id)
        return await self.status_anywhere(session_id, record.participant.masked_identity)

    # start and stop ----------------------------------------------------------------------------
    async def start_by_host(self, token: str, device_of: DeviceOf, purpose: str) -> Event:
        host = await self._host(token, device_of)
        return await self.start(
            host.invite.org_id, host.invite.session_id, purpose, host.participant.masked_identity
        )

    async def stop_by_host(self, token: str, device_of: DeviceOf) -> Event:
        host = await self._host(token, device_of)
        return await self.stop(
            host.invite.org_id, host.invite.session_id, host.participant.masked_identity
        )

    async def start(self, org_id: str, session_id: str, purpose: str, actor: str) -> Event:
        ports = self._ports
        org = await ports.store.organisation(org_id)
        session = await ports.store.session(org_id, session_id)
        if org is None or session is None:
            raise Refusal(ErrorCode.NOT_FOUND, "No such session.")
        if session.ended_at is not None:
            raise Refusal(ErrorCode.SESSION_ENDED, "This session has ended.")
        policy = await self._policy(org)
        try:
            check_recording_purpose(purpose, policy)
        except Refusal:
            await self._audit(
                org_id, session_id, "recording.refused", actor, {"reason": "purpose_unknown"}
            )
            raise
        recordings, recorder, runs = self._need_recorder()
        # Recording runs where the media is: the session's one authority.
        await self._authority.claim(session_id)
        async with self._lock(session_id):
            if session_id in self._runs:
                raise Refusal(ErrorCode.CONFLICT, "This session is being recorded already.")
            candidates, records = await self._candidates(session_id, policy)
            today = local_date(ports.clock.now(), policy)
            decision = decide_start(candidates, records, purpose, policy, today)
            if not decision.allowed:
                await self._audit(
                    org_id, session_id, "recording.refused", actor, decision.as_dict()
                )
                raise RecordingRefused(decision.lacking)
            await self._close_stale(org_id, session_id, runs)
            run = _Run(new_id(), org, session_id, purpose, decision.audio_only, actor)
            await runs.open(
                run.id,
                org_id,
                session_id,
                purpose,
                actor,
                [
                    AuditEvent(
                        "recording.run_started",
                        actor,
                        org_id,
                        session_id=session_id,
                        data={"run": run.id, **decision.as_dict()},
                    )
                ],
            )
            self._runs[session_id] = run
            run.excluded.update(dict(decision.excluded))
            for identity in decision.recorded:
                seat = self._registry.seat_in(identity)
                if seat is not None:
                    await self._record(run, seat, recordings, recorder)
            self._tell_everyone(session_id)
            return self._summary(run, decision)

    async def _close_stale(self, org_id: str, session_id: str, runs: RecordingRuns) -> None:
        """A run open in SQL that this process, the session's authority, does not hold was
        left by a process that died or lost the session (its recordings are sealed by crash
        recovery): closed, so it does not block the session for ever."""
        stale = await runs.running_id(session_id)
        if stale is not None and session_id not in self._runs:
            await runs.close(
                stale,
                "authority_lost",
                [
                    AuditEvent(
                        "recording.run_stopped",
                        "gateway",
                        org_id,
                        session_id=session_id,
                        data={"run": stale, "reason": "authority_lost"},
                    )
                ],
            )

    async def stop(
        self, org_id: str, session_id: str, actor: str, reason: str = "stopped"
    ) -> Event:
        # Stopping is an exit: no master key, recorder or consent check stands in its way.
        if session_id not in self._runs:
            # Not recorded here: it may be on the session's authority elsewhere (421 there),
            # never a false "not being recorded".
            await self._authority.claim(session_id)
        async with self._lock(session_id):
            run = self._runs.get(session_id)
            if run is None or run.org.id != org_id:
                raise Refusal(
                    ErrorCode.RECORDING_NOT_RUNNING, "This session is not being recorded."
                )
            await self._stop_run(run, actor, reason)
            return {"type": "recording", "active": False, "run": run.id}

    async def _stop_run(self, run: _Run, actor: str, reason: str) -> None:
        run.stopping = True
        lapsed = reason == REGISTRATION_LAPSED
        if lapsed:  # told at once: what follows waits on a database that may not answer
            self._tell_everyone(run.session_id)
            await self._alert(run, {"kind": "recording", "state": "stopped", "reason": reason})
        for identity in list(run.people):
            await self._stop_person(run, identity, actor, "run_stopped")
        self._runs.pop(run.session_id, None)
        if self.runs is not None:
            try:
                await self.runs.close(
                    run.id,
                    reason,
                    [
                        AuditEvent(
                            "recording.run_stopped",
                            actor,
                            run.org.id,
                            session_id=run.session_id,
                            data={"run": run.id, "reason": reason},
                        )
                    ],
                )
            except Exception:
                log.exception("the end of a recording run could not be stored yet")
        self._tell_everyone(run.session_id)
        if not lapsed:
            await self._alert(run, {"kind": "recording", "state": "stopped", "reason": reason})

    # one person's recording --------------------------------------------------------------------
    async def _record(
        self,
        run: _Run,
        seat: Seat,
        recordings: RecordingsService,
        recorder: ParticipantRecorder,
    ) -> None:
        """Catalogue, check consent again, then attach the recorder (never the other way)."""
        action, reasons, ids = await self._decide(run, seat)
        handle: RecordingHandle | None = None
        if action is NewcomerAction.RECORD:
            record = await self._ports.store.join_record(seat.invite_id)
            if record is None:
                return
            handle = await recordings.start(
                run.org,
                run.actor,
                run.session_id,
                run.purpose,
                [(seat.person_kind.value, record.person.id)],
                ids,
            )
            # The consent as it stands now that the catalogue entry exists: a withdrawal that
            # landed meanwhile (its destruction may have missed this new entry) is honoured
            # here, before the first frame.
            action, reasons, _ = await self._decide(run, seat)
        if action is not NewcomerAction.RECORD or handle is None or seat.left or run.stopping:
            why = reasons[0] if reasons else "left"
            if handle is not None:
                await recordings.discard(handle, run.actor, why)
            await self._exclude(run, seat, reasons or (why,))
            if action is NewcomerAction.STOP and not run.stopping:
                await self._stop_run(run, "gateway", why)
            return
        person = _Person(seat.identity, seat.participant_id, handle)
        run.people[seat.identity] = person
        run.excluded.pop(seat.identity, None)

        def failed(exc: BaseException) -> None:
            self._spawn(self._failed(run, seat.identity, handle, exc))

        try:
            await recorder.start(
                run.session_id,
                seat.identity,
                handle.writer,
                audio_only=run.audio_only,
                on_failure=failed,
            )
        except Exception as exc:
            run.people.pop(seat.identity, None)
            await self._failed(run, seat.identity, handle, exc)
            return
        await self._audit(
            run.org.id,
            run.session_id,
            "recording.scope_added",
            run.actor,
            {"run": run.id, "identity": seat.identity, "recording": handle.entry.id},
        )

    async def _exclude(self, run: _Run, seat: Seat, reasons: Sequence[str]) -> None:
        """Left out of this run (never captured): audited, and the host told by masked name."""
        run.excluded[seat.identity] = reasons[0]
        if reasons[0] == "does_not_publish":
            return  # a viewer: nothing of theirs could be recorded
        await self._audit(
            run.org.id,
            run.session_id,
            "recording.scope_excluded",
            "gateway",
            {"run": run.id, "identity": seat.identity, "reasons": list(reasons)},
        )
        await self._alert(
            run,
            {
                "kind": "recording",
                "state": "excluded",
                "identity": seat.identity,
                "display_name": seat.display_name,
                "reason": reasons[0],
            },
        )

    async def _stop_person(self, run: _Run, identity: str, actor: str, reason: str) -> None:
        person = run.people.pop(identity, None)
        if person is None:
            return
        recordings = self.recordings
        whole = True
        try:
            if self.recorder is not None:
                await self.recorder.stop(run.session_id, identity)
        except Exception:
            # Not ended whole (on LiveKit: the egress's file never arrived): sealed as
            # incomplete, and the host told, as for a recorder failing mid-way.
            log.exception("the recorder did not stop cleanly; sealed as incomplete")
            whole = False
        if recordings is not None:
            try:
                if whole:
                    await recordings.finish(person.handle, actor)
                else:
                    await recordings.finish_failed(person.handle, actor)
            except OSError:  # the storage failed, or this process may no longer write
                await recordings.finish_failed(person.handle, actor)
        if not whole:
            await self._alert(run, {"kind": "recording", "state": "failed", "identity": identity})
        try:
            await self._audit(
                run.org.id,
                run.session_id,
                "recording.scope_removed",
                actor,
                {
                    "run": run.id,
                    "identity": identity,
                    "recording": person.handle.entry.id,
                    "reason": reason,
                },
            )
        except Unavailable:  # stopping never waits on the audit (its seal is audited)
            log.error("a recording's end could not be audited: the database is unavailable")

    async def _failed(
        self, run: _Run, identity: str, handle: RecordingHandle, exc: BaseException
    ) -> None:
        """The recorder could not write (disk full): sealed as incomplete, host told, the
        session goes on; this person is not recorded again in this run."""
        log.error("recording failed: %s", type(exc).__name__)
        if isinstance(exc, RegistrationLapsed):
            # Not this person's failure: this process may no longer write. Every run here
            # stops (the host told once, by the run); the recording is sealed later.
            run.people.pop(identity, None)
            if self.recordings is not None:
                await self.recordings.finish_failed(handle, "gateway")
            self._spawn(self.registration_check())
            return
        run.people.pop(identity, None)
        run.excluded[identity] = "recorder_failed"
        if self.recordings is not None:
            await self.recordings.finish_failed(handle, "gateway")
        self._tell_everyone(run.session_id)
        await self._alert(run, {"kind": "recording", "state": "failed", "identity": identity})

    # scope changes -----------------------------------------------------------------------------
    async def connected(self, seat: Seat) -> None:
        """Someone's media connected: while a run goes on, record them, leave them out, or
        stop (per policy)."""
        run = self._runs.get(seat.session_id)
        if run is None or run.stopping:
            self._streams.push(seat.identity, self.status(seat.session_id, seat.identity))
            return
        async with self._lock(seat.session_id):
            if self._runs.get(seat.session_id) is not run or seat.identity in run.people:
                return
            recordings, recorder, _ = self._need_recorder()
            action, reasons, _ = await self._decide(run, seat)
            if action is NewcomerAction.RECORD:
                await self._record(run, seat, recordings, recorder)
            elif action is NewcomerAction.EXCLUDE:
                await self._exclude(run, seat, reasons)
            else:
                await self._stop_run(run, "gateway", reasons[0])
            self._tell_everyone(seat.session_id)

    async def gone(self, seat: Seat) -> None:
        """Someone left or was taken out: their recording is sealed now."""
        run = self._runs.get(seat.session_id)
        if run is None or seat.identity not in run.people:
            return
        async with self._lock(seat.session_id):
            await self._stop_person(run, seat.identity, "gateway", "left")

    async def recheck(self) -> None:
        """After every re-read of the durable facts: everyone recorded must still be; and
        recordings stopped by a lapsed registration are sealed once this process may write."""
        await self.registration_check()
        if self.recordings is not None:
            try:
                await self.recordings.retry_abandoned()
            except Exception:  # never in the way of the consent checks below
                log.exception("stopped recordings not sealed yet; tried again next round")
        for session_id in list(self._runs):
            await self.recheck_session(session_id)

    async def registration_check(self) -> None:
        """This process's registration could have lapsed (it could not be renewed in time):
        every run here stops now, whether or not frames were flowing (the writers already
        refuse every batch)."""
        if self.recordings is None or self.recordings.may_write() or not self._runs:
            return
        log.error("this process's registration could not be renewed: its recordings stop")
        for session_id in list(self._runs):
            run = self._runs.get(session_id)
            if run is None or run.stopping:
                continue
            async with self._lock(session_id):
                if self._runs.get(session_id) is run and not run.stopping:
                    await self._stop_run(run, "gateway", REGISTRATION_LAPSED)

    def _spawn(self, job: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def recheck_session(self, session_id: str) -> None:
        run = self._runs.get(session_id)
        if run is None:
            return
        async with self._lock(session_id):
            if self._runs.get(session_id) is not run:
                return
            for identity in list(run.people):
                seat = self._registry.seat_in(identity)
                if seat is None:
                    await self._stop_person(run, identity, "gateway", "left")
                    continue
                try:
                    action, reasons, _ = await self._decide(run, seat)
                except Exception:
                    # Fail closed: consent that cannot be read is not consent.
                    log.exception("consent unreadable; this person's recording stops")
                    action, reasons = NewcomerAction.EXCLUDE, ("consent_unreadable",)
                if action is NewcomerAction.RECORD:
                    continue
                await self._stop_person(run, identity, "gateway", reasons[0])
                run.excluded[identity] = reasons[0]
                if action is NewcomerAction.STOP:
                    await self._stop_run(run, "gateway", reasons[0])
                    return
            # Left out for want of consent or of a yes today: recorded once they have both.
            for identity, why in list(run.excluded.items()):
                seat = self._registry.seat_in(identity)
                if why in PERMANENT or seat is None:
                    continue
                if (await self._decide(run, seat))[0] is NewcomerAction.RECORD:
                    recordings, recorder, _ = self._need_recorder()
                    await self._record(run, seat, recordings, recorder)
            self._tell_everyone(session_id)

    async def session_closed(self, session_id: str, reason: str) -> None:
        """The session ended here, or this process lost its authority: the run stops."""
        run = self._runs.get(session_id)
        if run is None:
            return
        async with self._lock(session_id):
            if self._runs.get(session_id) is run:
                await self._stop_run(run, "gateway", reason)

    # helpers -----------------------------------------------------------------------------------
    async def _decide(
        self, run: _Run, seat: Seat
    ) -> tuple[NewcomerAction, tuple[str, ...], tuple[str, ...]]:
        """The newcomer decision over the current durable facts (SQL), for one seat."""
        record = await self._ports.store.join_record(seat.invite_id)
        if record is None:
            return NewcomerAction.EXCLUDE, ("invite_revoked",), ()
        policy = await self._policy(run.org)
        answers = await self._need_runs().day_answers(run.session_id)
        candidate = _candidate(seat, record, answers)
        today = local_date(self._ports.clock.now(), policy)
        return decide_newcomer(candidate, record.consents, run.purpose, policy, today)

    async def _candidates(
        self, session_id: str, policy: Policy
    ) -> tuple[list[Candidate], dict[str, list[ConsentRecord]]]:
        # Everyone seated, connected or connecting: whoever is about to connect would be
        # recorded too (the recorder records tracks published after it attached).
        seats = self._registry.seats(session_id)
        records = await self._ports.store.join_records({s.invite_id for s in seats})
        answers = await self._need_runs().day_answers(session_id)
        candidates: list[Candidate] = []
        consents: dict[str, list[ConsentRecord]] = {}
        for seat in seats:
            record = records.get(seat.invite_id)
            if record is None or await self._ports.admission.standing(record):
                continue  # taken out this very moment: not in the session
            candidates.append(_candidate(seat, record, answers))
            consents[record.person.id] = list(record.consents)
        return candidates, consents

    async def _policy(self, org: Organisation) -> Policy:
        return await self._ports.admission.policy_of(org.id)

    def _need_runs(self) -> RecordingRuns:
        if self.runs is None:
            raise Unavailable(
                ErrorCode.RECORDING_UNAVAILABLE, "Recording is not available.", retry_after=3600
            )
        return self.runs

    def _need_recorder(self) -> tuple[RecordingsService, ParticipantRecorder, RecordingRuns]:
        runs = self._need_runs()
        if self.recordings is None or self.recorder is None:
            raise Unavailable(
                ErrorCode.RECORDING_UNAVAILABLE,
                "Recording is not available on this gateway.",
                retry_after=3600,
            )
        self.recordings.check_can_record()  # the master key: a clear refusal without it
        return self.recordings, self.recorder, runs

    async def _host(self, token: str, device_of: DeviceOf) -> JoinRecord:
        record = await self._ports.admission.participant(token, device_of)
        if record.participant.role is not SessionRole.HOST:
            raise Refusal(ErrorCode.FORBIDDEN, "Only the session's host can do that.")
        return record

    def _summary(self, run: _Run, decision: StartDecision) -> Event:
        return {
            "type": "recording",
            "active": True,
            "run": run.id,
            "purpose": run.purpose,
            "audio_only": run.audio_only,
            "recorded": sorted(run.people),
            "excluded": [{"identity": i, "reason": r} for i, r in sorted(run.excluded.items())],
            "recordings": sorted(p.handle.entry.id for p in run.people.values()),
        }

    async def close(self) -> None:
        """At shutdown: every run stops, every recording sealed."""
        for session_id in list(self._runs):
            await self.session_closed(session_id, "gateway_stopping")


def _candidate(seat: Seat, record: JoinRecord, answers: Mapping[str, str]) -> Candidate:
    return Candidate(
        identity=seat.identity,
        display_name=seat.display_name,
        person=record.person,
        role=seat.role,
        day_answer=answers.get(seat.participant_id)
        if seat.person_kind is PersonKind.CHILD
        else None,
    )
