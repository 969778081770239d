"""The DSL's desk (R13, R14, R15): open concerns and breaches, a session's timeline, the audit
log with its verification, and an incident report for referral.

Who may: a DSL or an admin of the organisation (`check_may_open_incident_desk`: anyone else
403); anything of another organisation is "not found" (404), never "forbidden", so its
existence is not revealed.

Every view of children's information is audited with the viewer (R13): a timeline
("timeline.viewed"), the audit log ("audit.viewed"), a report ("incident.report_generated").
The entry is written before the answer is given ("no audit, no action"). Checking the audit
log's chain runs as a background job, one per organisation at a time, with progress; its
result is itself audited ("audit.verified").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from gateway.clock import Clock
from gateway.domain.audit import AuditEntry, AuditEvent, ChainReport, WitnessedHead
from gateway.domain.audit_cursor import AuditCursor
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.incidents import (
    KIND_CONCERN,
    KIND_SUPERVISION_BREACH,
    SYSTEM_REPORTER,
    Incident,
    IncidentNote,
    IncidentStatus,
)
from gateway.domain.models import Participant, Session, Staff
from gateway.domain.retention import CatalogueEntry
from gateway.domain.staff_session import check_may_open_incident_desk
from gateway.domain.timeline import (
    RecordedInterval,
    RosterEntry,
    TimelineLayout,
    lay_out_timeline,
)
from gateway.services.incidents import IncidentService
from gateway.services.ports import AuditQuery, Organisation

__all__ = [
    "AuditFilters",
    "AuditPage",
    "DeskItem",
    "DeskService",
    "IncidentReport",
    "SessionTimeline",
    "VerificationRun",
]

log = logging.getLogger("gateway.services.desk")

AUDIT_PAGE_SIZE = 50
TIMELINE_PAGE = 1000
TIMELINE_LIMIT = 20_000  # entries of one session drawn at most; beyond, the picture says so
URGENT_KINDS = (KIND_CONCERN, KIND_SUPERVISION_BREACH)

Progress = Callable[[int, int], None]


class SessionRecordings(Protocol):
    """The session's catalogue recordings, drawn on its timeline (services/recordings.py)."""

    async def in_session(self, org_id: str, session_id: str) -> list[CatalogueEntry]: ...


class HeadWitness(Protocol):
    """Where the chains' heads are recorded outside the database (adapters/audit_witness.py)."""

    async def last(self) -> tuple[WitnessedHead, ...]: ...


class DeskStore(Protocol):
    """What the desk reads and writes (the SQL store provides it)."""

    async def session(self, org_id: str, session_id: str) -> Session | None: ...
    async def participants(self, org_id: str, session_id: str) -> Sequence[Participant]: ...
    async def record(self, events: Sequence[AuditEvent]) -> None: ...
    async def audit_entries(self, query: AuditQuery) -> Sequence[AuditEntry]: ...
    async def verify_audit(
        self, witnessed: Sequence[WitnessedHead] = (), progress: Progress | None = None
    ) -> ChainReport: ...


@dataclass(frozen=True, slots=True)
class DeskItem:
    incident: Incident
    reported_by: str  # masked display name and role, "the gateway", "a member of staff"


@dataclass(frozen=True, slots=True)
class SessionTimeline:
    session: Session
    layout: TimelineLayout
    truncated: bool  # more entries than TIMELINE_LIMIT: the picture stops early


@dataclass(frozen=True, slots=True)
class AuditFilters:
    kind: str | None = None
    session_id: str | None = None
    person_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: AuditCursor | None = None  # where the previous page stopped

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "session_id": self.session_id,
            "person_id": self.person_id,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "after": self.after.text() if self.after else None,
        }


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: Sequence[AuditEntry]
    next_after: AuditCursor | None  # pass as `after` for the next page; None on the last


@dataclass
class VerificationRun:
    """A check of the whole audit log's chain, started by a member of staff."""

    started_by: str  # staff id
    started_at: datetime
    checked: int = 0
    total: int = 0
    finished_at: datetime | None = None
    intact: bool | None = None
    problem: str | None = None  # the first bad entry and why, when not intact
    failed: bool = False  # the check itself could not finish (the database is down)
    head: str | None = None
    witnessed: int = 0  # heads recorded outside the database that were checked too
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.finished_at is None

    @property
    def percent(self) -> int:
        if self.total <= 0:
            return 0 if self.running else 100
        return min(100, self.checked * 100 // self.total)

    @property
    def result(self) -> str:
        if self.running:
            return "running"
        if self.failed:
            return "failed"
        return "intact" if self.intact else "tampered"

    def as_dict(self) -> dict[str, object]:
        return {
            "result": self.result,
            "checked": self.checked,
            "total": self.total,
            "percent": self.percent,
            "problem": self.problem,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "witnessed": self.witnessed,
        }


@dataclass(frozen=True, slots=True)
class IncidentReport:
    incident: Incident
    reported_by: str  # masked display name and role, "the gateway", "a member of staff"
    notes: Sequence[IncidentNote]
    timeline: SessionTimeline | None
    verification: VerificationRun | None  # the latest check of the log, if any
    generated_at: datetime
    generated_by: Staff


class DeskService:
    def __init__(
        self,
        store: DeskStore,
        incidents: IncidentService,
        clock: Clock,
        witnesses: Sequence[HeadWitness] = (),
        recordings: SessionRecordings | None = None,
    ) -> None:
        self._recordings = recordings
        self._store = store
        self._incidents = incidents
        self._clock = clock
        self._witnesses = tuple(witnesses)
        self._runs: dict[str, VerificationRun] = {}  # by organisation: the latest run

    # open concerns and breaches -----------------------------------------------------------
    async def open_incidents(self, org: Organisation, viewer: Staff) -> list[DeskItem]:
        """Open incidents, concerns and supervision breaches first, newest first within; each
        with who reported it by masked display name and role (never more)."""
        _check_desk(org, viewer)
        listing = await self._incidents.list(
            org, status=IncidentStatus.OPEN, viewer=viewer, limit=500
        )
        items = sorted(listing.items, key=lambda i: i.created_at, reverse=True)
        items = sorted(items, key=lambda i: i.kind not in URGENT_KINDS)
        rosters: dict[str, list[RosterEntry]] = {}
        shown = []
        for incident in items:
            session_id = incident.session_id
            if session_id and incident.reporter_participant_id and session_id not in rosters:
                rosters[session_id] = await self._roster(org, session_id)
            roster = rosters.get(session_id or "", [])
            shown.append(DeskItem(incident, reporter_label(incident, roster)))
        return shown

    async def view_desk(self, org: Organisation, viewer: Staff) -> list[DeskItem]:
        """The desk's page: the open incidents, the view audited (R13; the page's polls for
        new ones are not, or an open desk would write an entry every few seconds)."""
        items = await self.open_incidents(org, viewer)
        await self._store.record(
            [AuditEvent("desk.viewed", _actor(viewer), org.id, data={"open": len(items)})]
        )
        return items

    async def _roster(self, org: Organisation, session_id: str) -> list[RosterEntry]:
        return [
            RosterEntry(p.id, p.masked_identity, p.display_name, p.role.value)
            for p in await self._store.participants(org.id, session_id)
        ]

    # a session's timeline -----------------------------------------------------------------
    async def timeline(self, org: Organisation, viewer: Staff, session_id: str) -> SessionTimeline:
        _check_desk(org, viewer)
        timeline = await self._timeline(org, session_id)
        await self._store.record(
            [
                AuditEvent(
                    "timeline.viewed",
                    _actor(viewer),
                    org.id,
                    session_id=session_id,
                    data={"entries": len(timeline.layout.rows)},
                )
            ]
        )
        return timeline

    async def _timeline(self, org: Organisation, session_id: str) -> SessionTimeline:
        session = await self._store.session(org.id, session_id)
        if session is None:
            raise Refusal(ErrorCode.NOT_FOUND, "No such session.")
        roster = await self._roster(org, session_id)
        entries: list[AuditEntry] = []
        after = AuditCursor()
        while len(entries) < TIMELINE_LIMIT:
            found = await self._store.audit_entries(
                AuditQuery(org.id, session_id=session_id, after=after, limit=TIMELINE_PAGE)
            )
            entries.extend(found)
            if len(found) < TIMELINE_PAGE:
                break
            after = after.advanced((e.chain, e.seq) for e in found)
        entries.sort(key=lambda entry: entry.seq)  # a page may bring one committed late
        now = self._clock.now()
        until = session.ended_at or min(now, max(session.ends_at, session.starts_at))
        layout = lay_out_timeline(
            entries, roster, until=until, recordings=await self._recorded(org, session_id)
        )
        return SessionTimeline(session, layout, truncated=len(entries) >= TIMELINE_LIMIT)

    async def _recorded(self, org: Organisation, session_id: str) -> list[RecordedInterval]:
        """Each recording of the session on its participant's lane (one catalogue recording
        is one participant's own tracks; the roster links the person to the participant)."""
        if self._recordings is None:
            return []
        entries = await self._recordings.in_session(org.id, session_id)
        if not entries:
            return []
        by_person = {p.person_id: p.id for p in await self._store.participants(org.id, session_id)}
        return [
            RecordedInterval(by_person[person_id], e.started_at, e.ended_at, e.state.value)
            for e in entries
            for _, person_id in e.participants
            if person_id in by_person
        ]

    # the audit log --------------------------------------------------------------------------
    async def audit_log(self, org: Organisation, viewer: Staff, filters: AuditFilters) -> AuditPage:
        _check_desk(org, viewer)
        if filters.since and filters.until and filters.since >= filters.until:
            raise Refusal(ErrorCode.QUERY_INVALID, "'From' must be before 'until'.")
        entries = await self._store.audit_entries(
            AuditQuery(
                org.id,
                session_id=filters.session_id,
                person_id=filters.person_id,
                kind=filters.kind,
                since_us=_micros(filters.since),
                until_us=_micros(filters.until),
                after=filters.after,
                limit=AUDIT_PAGE_SIZE + 1,
            )
        )
        shown = list(entries[:AUDIT_PAGE_SIZE])
        await self._store.record(
            [
                AuditEvent(
                    "audit.viewed",
                    _actor(viewer),
                    org.id,
                    data={"filters": filters.as_dict(), "entries": len(shown)},
                )
            ]
        )
        more = len(entries) > AUDIT_PAGE_SIZE
        after = (filters.after or AuditCursor()).advanced((e.chain, e.seq) for e in shown)
        return AuditPage(shown, after if more and shown else None)

    async def verification(self, org: Organisation, viewer: Staff) -> VerificationRun | None:
        """This process's latest run for the organisation, else the latest result in the log
        (a run started on another gateway process, or before a restart)."""
        _check_desk(org, viewer)
        return self._runs.get(org.id) or await self._last_verification(org)

    def start_verification(self, org: Organisation, viewer: Staff) -> VerificationRun:
        """Start checking the whole chain in the background; a run already going is reused."""
        _check_desk(org, viewer)
        current = self._runs.get(org.id)
        if current is not None and current.running:
            return current
        run = VerificationRun(started_by=viewer.id, started_at=self._clock.now())
        self._runs[org.id] = run
        run.task = asyncio.create_task(self._verify(org, viewer, run))
        return run

    async def _verify(self, org: Organisation, viewer: Staff, run: VerificationRun) -> None:
        def progress(checked: int, total: int) -> None:
            run.checked, run.total = checked, total

        try:
            heads = await self._witnessed_heads()
            run.witnessed = len(heads)
            report = await self._store.verify_audit(heads, progress=progress)
        except asyncio.CancelledError:
            run.failed, run.finished_at = True, self._clock.now()
            raise
        except Exception:
            log.exception("the audit log could not be verified")
            run.failed, run.finished_at = True, self._clock.now()
            return
        run.checked = report.checked
        run.total = max(run.total, report.checked)
        run.intact = report.intact
        run.problem = report.problem.describe() if report.problem else None
        run.head = report.head
        try:
            await self._store.record(
                [
                    AuditEvent(
                        "audit.verified",
                        _actor(viewer),
                        org.id,
                        data={
                            "result": "intact" if report.intact else "tampered",
                            "checked": report.checked,
                            "problem": run.problem,
                            "head": report.head,
                            "witnessed": run.witnessed,
                        },
                    )
                ]
            )
        except Exception:  # the result stays on the page; the log could not take it
            log.exception("the verification result could not be audited")
            run.failed = True
        run.finished_at = self._clock.now()

    async def _witnessed_heads(self) -> list[WitnessedHead]:
        """The latest head each witness recorded: a log cut or rewritten after it fails."""
        heads: list[WitnessedHead] = []
        for witness in self._witnesses:
            try:
                head = await witness.last()
            except Exception:  # a witness out of reach: the chain is still checked
                log.warning("an audit witness could not be read")
                continue
            heads.extend(head)  # every chain's
        return heads

    async def close(self) -> None:
        """Stop checks still running (the process is shutting down)."""
        tasks = [run.task for run in self._runs.values() if run.task and not run.task.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # the report for referral ----------------------------------------------------------------
    async def report(
        self, org: Organisation, viewer: Staff, incident_id: str, form: str
    ) -> IncidentReport:
        _check_desk(org, viewer)
        detail = await self._incidents.get(org, incident_id, viewer=viewer)
        timeline = None
        if detail.incident.session_id is not None:
            with contextlib.suppress(Refusal):  # a session removed since: report without it
                timeline = await self._timeline(org, detail.incident.session_id)
        verification = self._runs.get(org.id)
        if verification is None or verification.running:
            verification = await self._last_verification(org) or verification
        await self._store.record(
            [
                AuditEvent(
                    "incident.report_generated",
                    _actor(viewer),
                    org.id,
                    session_id=detail.incident.session_id,
                    data={
                        "incident": incident_id,
                        "format": form,
                        "verification": verification.result if verification else "not_checked",
                    },
                )
            ]
        )
        roster = await self._roster(org, timeline.session.id) if timeline else []
        return IncidentReport(
            detail.incident,
            reporter_label(detail.incident, roster),
            detail.notes or (),
            timeline,
            verification,
            self._clock.now(),
            viewer,
        )

    async def _last_verification(self, org: Organisation) -> VerificationRun | None:
        """The latest finished check, from the audit log (it outlives this process)."""
        last: AuditEntry | None = None
        after = AuditCursor()
        while True:
            found = await self._store.audit_entries(
                AuditQuery(org.id, kind="audit.verified", after=after, limit=500)
            )
            if found:
                newest = max(found, key=lambda entry: entry.seq)
                last = newest if last is None or newest.seq > last.seq else last
                after = after.advanced((e.chain, e.seq) for e in found)
            if len(found) < 500:
                break
        if last is None:
            return None
        checked = last.data.get("checked")
        problem = last.data.get("problem")
        witnessed = last.data.get("witnessed")
        return VerificationRun(
            started_by=last.actor,
            started_at=last.at_datetime,
            checked=checked if isinstance(checked, int) else 0,
            total=checked if isinstance(checked, int) else 0,
            finished_at=last.at_datetime,
            intact=last.data.get("result") == "intact",
            problem=problem if isinstance(problem, str) else None,
            head=str(last.data.get("head") or "") or None,
            witnessed=witnessed if isinstance(witnessed, int) else 0,
        )


def reporter_label(incident: Incident, roster: Sequence[RosterEntry]) -> str:
    """Who reported, as the DSL's pages show it: masked display name and role, never more."""
    if incident.reporter_participant_id:
        for entry in roster:
            if entry.participant_id == incident.reporter_participant_id:
                return entry.label
        return "a participant"
    return "the gateway" if incident.reporter_identity == SYSTEM_REPORTER else "a member of staff"


def _check_desk(org: Organisation, viewer: Staff) -> None:
    if viewer.org_id != org.id:
        raise Refusal(ErrorCode.NOT_FOUND, "Not found.")
    check_may_open_incident_desk(viewer)


def _actor(viewer: Staff) -> str:
    return f"staff:{viewer.id}"


def _micros(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp() * 1_000_000)
