"""Reviewing recordings on the DSL's desk (R13): the list, a recording's page (its consent
snapshot and its session's timeline), and watching it with a stated reason.

Watching, step by step:
  1. `open_playback(reason)`: the domain decides whether this member of staff may watch this
     recording (`domain/review.py`); a refusal is audited ("recording.view_refused") and told.
     Allowed: a playback link is issued (random token, only its hash stored, bound to the
     member of staff, `PLAYBACK_TTL`, one use) in the same transaction as the audit entry that
     states the reason ("recording.playback_issued").
  2. `play(token)`: the link is checked (unknown, used, expired, someone else's: refused and
     audited as "recording.playback_refused"; someone else's link is burnt), the view decided
     again (a hold lifted and a destruction begun since, a role changed), then the whole
     ciphertext is authenticated *before the first byte is sent*; the link is used in the same
     transaction as "recording.viewed". Only then does the answer stream.

Why verify first, then stream: a damaged or truncated recording must never be played, not even
its first seconds (a partial recording can mislead as much as show). AES-GCM authenticates at
several hundred MB/s, so verifying a lesson-length recording costs well under a second, after
which playback streams chunk by chunk with bounded memory. Each chunk is authenticated again as
it is sent (the file could change between the two passes); if one fails then, the stream is
cut off without completing the response (the browser sees a failed load, never a clean end),
and the failure is audited ("recording.playback_failed").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from gateway.clock import Clock
from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.models import ConsentAction, ConsentRecord, PersonKind, Session, Staff
from gateway.domain.recording_crypto import RecordingCorrupt, RecordingKeyError
from gateway.domain.retention import CatalogueEntry
from gateway.domain.review import (
    PLAYBACK_TTL,
    PlaybackFault,
    PlaybackGrant,
    RecordingAccess,
    RecordingFilters,
    ViewDecision,
    check_view_reason,
    playback_fault,
    playback_refusal,
    refusal_for,
    view_decision,
)
from gateway.domain.staff_session import new_secret, secret_hash, well_formed_secret
from gateway.services.desk import SessionTimeline
from gateway.services.policies import PolicyBook
from gateway.services.ports import Organisation
from gateway.services.recordings import RecordingsService, RecordingView

__all__ = [
    "LIST_PAGE_SIZE",
    "ConsentLine",
    "Playback",
    "RecordingList",
    "RecordingPage",
    "ReviewService",
]

log = logging.getLogger("gateway.services.review")

LIST_PAGE_SIZE = 50
CONTENT_TYPE = "video/webm"
AUDIO_CONTENT_TYPE = "audio/webm"


class ReviewStore(Protocol):
    async def session(self, org_id: str, session_id: str) -> Session | None: ...
    async def consents(self, org_id: str, subject_id: str) -> Sequence[ConsentRecord]: ...
    async def record(self, events: Sequence[AuditEvent]) -> None: ...


TimelineSource = Callable[[Organisation, Staff, str], Awaitable[SessionTimeline]]


class PlaybackStore(Protocol):
    async def issue(self, grant: PlaybackGrant, events: Sequence[AuditEvent]) -> None: ...
    async def find(self, token_hash: str) -> PlaybackGrant | None: ...
    async def use(self, token_hash: str, events: Sequence[AuditEvent]) -> bool: ...


@dataclass(frozen=True, slots=True)
class RecordingList:
    entries: Sequence[CatalogueEntry]
    next_after: str | None  # the cursor of the next page ("<started us>.<id>"), None on the last


@dataclass(frozen=True, slots=True)
class ConsentLine:
    """One consent record a recording was made under, as the page shows it."""

    subject: str  # masked name
    purpose: str
    action: str
    given_by: str  # masked name, or "themselves"
    evidence: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class RecordingPage:
    view: RecordingView
    consents: Sequence[ConsentLine]
    missing_consents: int  # ids in the snapshot not found (a registry removed since)
    may_watch: ViewDecision
    may_manage: bool  # the desk's rights: holds, the session's timeline
    timeline: SessionTimeline | None  # the session with its recordings' intervals (desk only)


@dataclass
class Playback:
    """An authorised, verified stream: `size` bytes of plaintext, chunk by chunk."""

    entry: CatalogueEntry
    content_type: str
    size: int
    chunks: AsyncGenerator[bytes, None]


class ReviewService:
    def __init__(
        self,
        recordings: RecordingsService,
        playbacks: PlaybackStore,
        store: ReviewStore,
        policies: PolicyBook,
        clock: Clock,
        timeline: TimelineSource | None = None,
        seekable: Callable[[bytes], bytes | None] | None = None,
        seekable_up_to: int = 0,
    ) -> None:
        # Remuxes a recording written live into one a browser can seek in (in memory), or
        # None to play it as written; only recordings up to `seekable_up_to` bytes.
        self._seekable = seekable
        self._seekable_up_to = seekable_up_to if seekable is not None else -1
        self._timeline = timeline
        self._recordings = recordings
        self._playbacks = playbacks
        self._store = store
        self._policies = policies
        self._clock = clock

    # the list -----------------------------------------------------------------------------------
    async def listing(
        self, org: Organisation, viewer: Staff, filters: RecordingFilters
    ) -> RecordingList:
        _check_org(org, viewer)
        entries = await self._recordings.listing(org, filters, LIST_PAGE_SIZE + 1)
        shown = entries[:LIST_PAGE_SIZE]
        await self._store.record(
            [
                AuditEvent(
                    "recording.list_viewed",
                    _actor(viewer),
                    org.id,
                    data={"filters": _filters_data(filters), "shown": len(shown)},
                )
            ]
        )
        more = len(entries) > LIST_PAGE_SIZE
        last = shown[-1] if shown else None
        cursor = f"{_micros(last.started_at)}.{last.id}" if last else None
        return RecordingList(shown, cursor if more else None)

    # a recording's page -------------------------------------------------------------------------
    async def page(
        self, org: Organisation, viewer: Staff, recording_id: str, *, may_manage: bool
    ) -> RecordingPage:
        """The catalogue entry, its consent snapshot; the desk (DSL, admin) sees every
        recording's page, anyone else only a recording they may watch."""
        _check_org(org, viewer)
        entry = await self._recordings.get(org, recording_id)
        decision = await self._decide(org, viewer, entry)
        if not may_manage and not decision.allowed:
            await self._refused(org, viewer, entry, "page", decision)
            raise refusal_for(decision.refusal) if decision.refusal else _forbidden()
        view = await self._recordings.view(org, recording_id)
        lines, missing = await self._consent_snapshot(org, view)
        await self._store.record(
            [
                AuditEvent(
                    "recording.page_viewed",
                    _actor(viewer),
                    org.id,
                    session_id=entry.session_id,
                    data={"recording": entry.id},
                )
            ]
        )
        timeline = None
        if may_manage and self._timeline is not None:
            with contextlib.suppress(Refusal):  # a session removed since: the page without it
                timeline = await self._timeline(org, viewer, entry.session_id)
        return RecordingPage(view, lines, missing, decision, may_manage, timeline)

    async def _consent_snapshot(
        self, org: Organisation, view: RecordingView
    ) -> tuple[list[ConsentLine], int]:
        wanted = set(view.entry.consent_record_ids)
        lines: list[ConsentLine] = []
        for kind, person_id in view.entry.participants:
            for record in await self._store.consents(org.id, person_id):
                if record.id not in wanted:
                    continue
                wanted.discard(record.id)
                if record.given_by_id == record.subject_id:
                    given_by = "themselves"
                else:
                    given_by = await self._recordings.masked_name(
                        org, record.given_by_kind, record.given_by_id
                    )
                lines.append(
                    ConsentLine(
                        subject=view.names.get(person_id)
                        or await self._recordings.masked_name(org, PersonKind(kind), person_id),
                        purpose=record.purpose,
                        action="given" if record.action is ConsentAction.GIVE else "withdrawn",
                        given_by=given_by,
                        evidence=(
                            record.evidence.method.value.replace("_", " ")
                            if record.evidence
                            else "none recorded"
                        ),
                        recorded_at=record.recorded_at,
                    )
                )
        lines.sort(key=lambda line: line.recorded_at)
        return lines, len(wanted)

    # watching -----------------------------------------------------------------------------------
    async def open_playback(
        self, org: Organisation, viewer: Staff, recording_id: str, reason: str
    ) -> str:
        """A playback link's token for `viewer`, after the reason is stated (R13)."""
        _check_org(org, viewer)
        entry = await self._recordings.get(org, recording_id)
        decision = await self._decide(org, viewer, entry)
        if not decision.allowed:
            await self._refused(org, viewer, entry, "open", decision)
            raise refusal_for(decision.refusal) if decision.refusal else _forbidden()
        reason = check_view_reason(reason)
        token = new_secret()
        now = self._clock.now()
        grant = PlaybackGrant(
            token_hash=secret_hash(token),
            recording_id=entry.id,
            org_id=org.id,
            staff_id=viewer.id,
            reason=reason,
            created_at=now,
            expires_at=now + PLAYBACK_TTL,
        )
        await self._playbacks.issue(
            grant,
            [
                AuditEvent(
                    "recording.playback_issued",
                    _actor(viewer),
                    org.id,
                    session_id=entry.session_id,
                    data={"recording": entry.id, "reason": reason, "as": decision.as_role},
                )
            ],
        )
        return token

    async def play(self, org: Organisation, viewer: Staff, token: str) -> Playback:
        """The verified stream for a playback link, or a refusal (audited)."""
        _check_org(org, viewer)
        token_hash = secret_hash(token) if well_formed_secret(token) else ""
        grant = await self._playbacks.find(token_hash) if token_hash else None
        fault = playback_fault(grant, viewer, self._clock.now())
        if fault is not None:
            await self._link_refused(org, viewer, grant, fault)
            raise playback_refusal(fault)
        assert grant is not None
        entry = await self._recordings.get(org, grant.recording_id)
        decision = await self._decide(org, viewer, entry)
        if not decision.allowed:
            await self._refused(org, viewer, entry, "play", decision)
            raise refusal_for(decision.refusal) if decision.refusal else _forbidden()
        try:
            size, plaintext = await self._verify(org, entry)
        except RecordingCorrupt as exc:
            await self._store.record(
                [
                    AuditEvent(
                        "recording.playback_refused",
                        _actor(viewer),
                        org.id,
                        session_id=entry.session_id,
                        data={"recording": entry.id, "fault": "corrupt", "detail": str(exc)},
                    )
                ]
            )
            log.error("recording %s failed its integrity check before playback", entry.id)
            raise Refusal(
                ErrorCode.RECORDING_CORRUPT,
                "This recording failed its integrity check and cannot be played.",
            ) from None
        used = await self._playbacks.use(
            grant.token_hash,
            [
                AuditEvent(
                    "recording.viewed",
                    _actor(viewer),
                    org.id,
                    session_id=entry.session_id,
                    data={
                        "recording": entry.id,
                        "reason": grant.reason,
                        "as": decision.as_role,
                        "bytes": size,
                    },
                )
            ],
        )
        if not used:  # another request with the same link got there first
            await self._link_refused(org, viewer, grant, PlaybackFault.USED)
            raise playback_refusal(PlaybackFault.USED)
        audio_only = self._audio_only(org, entry)
        content_type = AUDIO_CONTENT_TYPE if audio_only else CONTENT_TYPE
        # Written live, the recording has no duration or seek index: remuxed in memory (every
        # chunk authenticated above) into one with both, when not too long (media/seekable.py).
        seekable = (
            await asyncio.to_thread(self._seekable, plaintext)
            if plaintext and self._seekable is not None
            else None
        )
        if seekable is not None:
            return Playback(entry, content_type, len(seekable), _in_slices(seekable))
        # The key is unwrapped now, before the answer starts: a recording destroyed from here
        # on fails as a missing file while streaming (cut off, audited), never as a page.
        try:
            chunks = await self._recordings.read(org, entry.id)
        except RecordingKeyError:
            raise Refusal(
                ErrorCode.RECORDING_CORRUPT,
                "This recording failed its integrity check and cannot be played.",
            ) from None
        return Playback(entry, content_type, size, self._stream(org, viewer, entry, chunks))

    async def _verify(self, org: Organisation, entry: CatalogueEntry) -> tuple[int, bytes | None]:
        """Authenticate every chunk: the plaintext size, and the plaintext itself (in memory
        only) when short enough to be made seekable. `RecordingCorrupt` at any damage."""
        try:
            chunks = await self._recordings.read(org, entry.id)
        except RecordingKeyError:
            raise RecordingCorrupt("the recording's key does not unwrap") from None
        keep = entry.size_bytes <= self._seekable_up_to

        def drain(chunks: Iterator[bytes]) -> tuple[int, bytes | None]:
            size = 0
            kept = bytearray()
            try:
                for chunk in chunks:
                    size += len(chunk)
                    if keep:
                        kept += chunk
            except FileNotFoundError:
                raise RecordingCorrupt("the recording's file is missing") from None
            return size, bytes(kept) if keep else None

        return await asyncio.to_thread(drain, chunks)

    async def _stream(
        self, org: Organisation, viewer: Staff, entry: CatalogueEntry, chunks: Iterator[bytes]
    ) -> AsyncGenerator[bytes, None]:
        done = object()
        try:
            while True:
                chunk = await asyncio.to_thread(next, chunks, done)
                if chunk is done:
                    return
                assert isinstance(chunk, bytes)
                yield chunk
        except (RecordingCorrupt, OSError) as exc:
            await self._store.record(
                [
                    AuditEvent(
                        "recording.playback_failed",
                        _actor(viewer),
                        org.id,
                        session_id=entry.session_id,
                        data={"recording": entry.id, "detail": type(exc).__name__},
                    )
                ]
            )
            raise
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                await asyncio.to_thread(close)

    # decisions ----------------------------------------------------------------------------------
    async def _decide(
        self, org: Organisation, viewer: Staff, entry: CatalogueEntry
    ) -> ViewDecision:
        policy = self._policies.for_path(org.policy_path)
        spec = policy.recording.purposes.get(entry.purpose)
        session = await self._store.session(org.id, entry.session_id)
        return view_decision(
            viewer,
            RecordingAccess(
                org_id=entry.org_id,
                state=entry.state,
                destruction_started=entry.destruction_started,
                purpose_viewers=spec.viewers if spec else None,
                session_host_id=session.host_staff_id if session else None,
            ),
        )

    def _audio_only(self, org: Organisation, entry: CatalogueEntry) -> bool:
        spec = self._policies.for_path(org.policy_path).recording.purposes.get(entry.purpose)
        return bool(spec and spec.audio_only)

    async def _refused(
        self,
        org: Organisation,
        viewer: Staff,
        entry: CatalogueEntry,
        step: str,
        decision: ViewDecision,
    ) -> None:
        await self._store.record(
            [
                AuditEvent(
                    "recording.view_refused",
                    _actor(viewer),
                    org.id,
                    session_id=entry.session_id,
                    data={
                        "recording": entry.id,
                        "step": step,
                        "why": decision.refusal.value if decision.refusal else "role",
                    },
                )
            ]
        )

    async def _link_refused(
        self,
        org: Organisation,
        viewer: Staff,
        grant: PlaybackGrant | None,
        fault: PlaybackFault,
    ) -> None:
        event = AuditEvent(
            "recording.playback_refused",
            _actor(viewer),
            org.id,
            data={
                "recording": grant.recording_id if grant else None,
                "fault": fault.value,
                "issued_to": f"staff:{grant.staff_id}" if grant else None,
            },
        )
        # A leaked link is burnt with the entry that says so; whoever it was issued to opens
        # the recording again (with a reason).
        leaked = fault is PlaybackFault.OTHER_STAFF and grant is not None
        if leaked and grant is not None and await self._playbacks.use(grant.token_hash, [event]):
            return
        await self._store.record([event])


async def _in_slices(data: bytes, size: int = 256 * 1024) -> AsyncGenerator[bytes, None]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _micros(at: datetime) -> int:
    """Exact UTC microseconds (integer arithmetic: a page's cursor must not drift by one)."""
    return (at - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _check_org(org: Organisation, viewer: Staff) -> None:
    if viewer.org_id != org.id:
        raise Refusal(ErrorCode.NOT_FOUND, "Not found.")


def _forbidden() -> Refusal:
    return Refusal(ErrorCode.FORBIDDEN, "Your role may not watch this recording.")


def _actor(viewer: Staff) -> str:
    return f"staff:{viewer.id}"


def _filters_data(filters: RecordingFilters) -> dict[str, object]:
    return {
        "session": filters.session_id,
        "person": filters.person_id,
        "purpose": filters.purpose,
        "status": filters.status,
        "since": filters.since.isoformat() if filters.since else None,
        "until": filters.until.isoformat() if filters.until else None,
    }
