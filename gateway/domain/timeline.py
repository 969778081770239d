"""A session's timeline as a picture (R13, R14): who was present when, supervision over time,
holds, removals and concerns, laid out from the session's audit entries.

Pure: audit entries and the roster in, a layout out (lanes, intervals, markers, coordinates,
and the same events as table rows for screen readers). The template only draws it.

People appear by their masked display name and session role only: the roster handed in carries
nothing else, and nothing else from an entry's data reaches the layout (ids stay in the entries).

Reading the entries (what the services write, see services/admission.py, services/live.py,
services/incidents.py):
  join.decision          data.participant, data.outcome: admit (present), hold (present, held),
                         deny (a refusal marker)
  media.connected        present from now (if not already)
  media.disconnected / media.vanished / media.never_connected / participant.left
                         no longer present (participant.left names its actor, a masked identity)
  supervision.hold       data.participant held from now; data.state is the verdict
  supervision.release    data.participant no longer held
  supervision.breach     a marker on the supervision band; data.state is the verdict
  participant.removed    data.participant removed by the host: a marker, no longer present
  incident.opened        a marker (concern, on the reporter's lane when a participant reported)
  session.ended          everybody gone
Recordings are not read from entries but handed in (`RecordedInterval`, from the catalogue: one
recording is one participant's own tracks for a stretch) and drawn on that person's lane.
The supervision band: "held" while any child is held, else "below" while the last verdict was
below the minimum (grace, breach), else "supervised".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.domain.audit import AuditEntry

__all__ = [
    "BAND_BELOW",
    "BAND_HELD",
    "BAND_SUPERVISED",
    "Bar",
    "Lane",
    "Marker",
    "RecordedInterval",
    "RosterEntry",
    "TimelineLayout",
    "TimelineRow",
    "lay_out_timeline",
]

BAND_SUPERVISED = "supervised"
BAND_BELOW = "below"
BAND_HELD = "held"

# Geometry of the picture, in SVG user units.
WIDTH = 720  # drawn about 600 px wide on the staff pages: text stays readable
LABEL_WIDTH = 180  # the lane labels, left of the time axis
RIGHT_MARGIN = 12
TOP = 40  # the time axis' labels above the lanes
LANE_HEIGHT = 34
BAR_HEIGHT = 20
TICKS = 5

_ROLE_ORDER = ("host", "observer", "guardian", "child", "viewer")
_ROLE_LABELS = {
    "host": "Host",
    "observer": "Observer",
    "guardian": "Guardian",
    "child": "Child",
    "viewer": "Viewer",
}
_GONE = {
    "media.disconnected": "media disconnected",
    "media.vanished": "media lost",
    "media.never_connected": "media never connected",
    "participant.left": "left",
}
_BELOW_STATES = {"grace", "breach"}


@dataclass(frozen=True, slots=True)
class RosterEntry:
    """One person on the session's roster as the timeline may show them."""

    participant_id: str
    masked_identity: str
    display_name: str  # the policy-shaped masked name ("Sam G.", "Student 3")
    role: str  # the session role (host, observer, child, guardian, viewer)

    @property
    def label(self) -> str:
        return f"{self.display_name} ({_ROLE_LABELS.get(self.role, self.role)})"


@dataclass(frozen=True, slots=True)
class RecordedInterval:
    """One catalogue recording of one participant: when it ran (end None: still running)."""

    participant_id: str
    start: datetime
    end: datetime | None
    state: str  # the catalogue state: recording, complete, incomplete, destroyed


@dataclass(frozen=True, slots=True)
class Bar:
    """An interval drawn as a rectangle: presence, a hold, or a band segment."""

    kind: str  # "present", "held", "recorded", or a band state
    start: datetime
    end: datetime
    x: float
    width: float


@dataclass(frozen=True, slots=True)
class Marker:
    kind: str  # "removed", "concern", "refused", "breach", "incident", "ended"
    at: datetime
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Lane:
    label: str  # masked name and role, or "Supervision"
    role: str  # a session role, or "band"
    y: float
    bars: tuple[Bar, ...]
    markers: tuple[Marker, ...]


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One event as the text alternative lists it."""

    at: datetime
    who: str
    what: str


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class TimelineLayout:
    width: int
    height: int
    axis_x: float  # where the time axis starts (right of the labels)
    start: datetime
    end: datetime
    band: Lane
    lanes: tuple[Lane, ...]
    ticks: tuple[Tick, ...]
    rows: tuple[TimelineRow, ...]

    @property
    def empty(self) -> bool:
        return not self.rows


@dataclass
class _Person:
    entry: RosterEntry
    first_seen: int
    present_since: datetime | None = None
    held_since: datetime | None = None
    present: list[tuple[datetime, datetime]] | None = None
    held: list[tuple[datetime, datetime]] | None = None
    markers: list[tuple[str, datetime, str]] | None = None
    recorded: list[tuple[datetime, datetime | None]] | None = None

    def __post_init__(self) -> None:
        self.present, self.held, self.markers, self.recorded = [], [], [], []


def lay_out_timeline(
    entries: Iterable[AuditEntry],
    roster: Sequence[RosterEntry],
    *,
    until: datetime,
    recordings: Sequence[RecordedInterval] = (),
) -> TimelineLayout:
    """The picture of a session from its audit entries (in seq order).

    The picture runs from the first event to the session's end; when it has not ended, to
    `until` (the caller passes now, or the scheduled end if that is earlier) or the last event
    if that is later: intervals still open run to there. Entries of other kinds, or naming
    nobody on the roster, are left out (a person's lane needs the roster's masked name).
    """
    by_participant = {r.participant_id: r for r in roster}
    by_identity = {r.masked_identity: r for r in roster}
    people: dict[str, _Person] = {}
    rows: list[TimelineRow] = []
    band_changes: list[tuple[datetime, str]] = []
    band_markers: list[tuple[str, datetime, str]] = []
    verdict_below = False
    ended: datetime | None = None
    first: datetime | None = None
    last: datetime | None = None

    def person(entry: RosterEntry | None) -> _Person | None:
        if entry is None:
            return None
        if entry.participant_id not in people:
            people[entry.participant_id] = _Person(entry, len(people))
        return people[entry.participant_id]

    def band_state() -> str:
        if any(p.held_since is not None for p in people.values()):
            return BAND_HELD
        return BAND_BELOW if verdict_below else BAND_SUPERVISED

    def arrive(p: _Person, at: datetime) -> None:
        if p.present_since is None:
            p.present_since = at

    def go(p: _Person, at: datetime) -> None:
        if p.present_since is not None:
            assert p.present is not None
            p.present.append((p.present_since, at))
            p.present_since = None
        unhold(p, at)

    def hold(p: _Person, at: datetime) -> None:
        if p.held_since is None:
            p.held_since = at

    def unhold(p: _Person, at: datetime) -> None:
        if p.held_since is not None:
            assert p.held is not None
            p.held.append((p.held_since, at))
            p.held_since = None

    for audit in entries:
        at = audit.at_datetime
        data = audit.data
        who = by_participant.get(str(data.get("participant", "")))
        if who is None and audit.kind == "participant.left":
            who = by_identity.get(audit.actor)
        p = person(who)
        before = band_state()
        what: str | None = None
        if audit.kind == "join.decision" and p is not None:
            outcome = str(data.get("outcome", ""))
            if outcome == "admit":
                arrive(p, at)
                what = "joined"
            elif outcome == "hold":
                arrive(p, at)
                hold(p, at)
                what = "joined and held until enough adults are present"
            else:
                assert p.markers is not None
                p.markers.append(("refused", at, "refused entry"))
                what = "refused entry"
        elif audit.kind == "media.connected" and p is not None:
            arrive(p, at)
            what = "media connected"
        elif audit.kind in _GONE and p is not None:
            go(p, at)
            what = _GONE[audit.kind]
        elif audit.kind == "supervision.hold" and p is not None:
            verdict_below = str(data.get("state", "")) in _BELOW_STATES
            hold(p, at)
            what = "held (cannot see, hear or be seen)"
        elif audit.kind == "supervision.release" and p is not None:
            verdict_below = str(data.get("state", "")) in _BELOW_STATES
            unhold(p, at)
            what = "released (supervised again)"
        elif audit.kind == "supervision.breach":
            verdict_below = True
            band_markers.append(("breach", at, "supervision breach"))
            what = "supervision breach: fewer vetted adults than required"
        elif audit.kind == "participant.removed" and p is not None:
            go(p, at)
            assert p.markers is not None
            p.markers.append(("removed", at, "removed by the host"))
            what = "removed by the host"
        elif audit.kind == "incident.opened":
            kind = str(data.get("kind", "incident"))
            label = "concern reported" if kind == "concern" else f"{_words(kind)} recorded"
            mark = "concern" if kind == "concern" else "incident"
            if p is not None:
                assert p.markers is not None
                p.markers.append((mark, at, label))
            else:
                band_markers.append((mark, at, label))
            what = label
        elif audit.kind == "session.ended":
            for everyone in people.values():
                go(everyone, at)
            band_markers.append(("ended", at, "session ended"))
            ended = at
            what = "session ended"
        if what is None:
            continue
        first = at if first is None else min(first, at)
        last = at if last is None else max(last, at)
        rows.append(TimelineRow(at, who.label if who is not None else "Session", what))
        after = band_state()
        if after != before or not band_changes:
            band_changes.append((at, after))

    for recorded in recordings:
        p = person(by_participant.get(recorded.participant_id))
        if p is None:
            continue
        assert p.recorded is not None
        p.recorded.append((recorded.start, recorded.end))
        rows.append(TimelineRow(recorded.start, p.entry.label, "recording started"))
        moments = [recorded.start]
        if recorded.end is not None:
            rows.append(TimelineRow(recorded.end, p.entry.label, f"recording {recorded.state}"))
            moments.append(recorded.end)
        first = min([first, *moments]) if first is not None else min(moments)
        last = max([last, *moments]) if last is not None else max(moments)
    if recordings:
        rows.sort(key=lambda row: row.at)

    start = first if first is not None else until
    # Events after the end (a late media event) still fit: the picture runs to the last one.
    finish = max(ended or until, last or start)
    span = max((finish - start).total_seconds(), 1.0)
    usable = WIDTH - LABEL_WIDTH - RIGHT_MARGIN

    def x_of(at: datetime) -> float:
        offset = (at - start).total_seconds() / span
        return round(LABEL_WIDTH + max(0.0, min(1.0, offset)) * usable, 1)

    def bar(kind: str, begin: datetime, end: datetime) -> Bar:
        x = x_of(begin)
        return Bar(kind, begin, end, x, round(max(x_of(end) - x, 1.0), 1))

    def marker(kind: str, at: datetime, label: str) -> Marker:
        return Marker(kind, at, x_of(at), label)

    band_bars = []
    for index, (since, state) in enumerate(band_changes):
        upto = band_changes[index + 1][0] if index + 1 < len(band_changes) else finish
        if upto > since or index + 1 == len(band_changes):
            band_bars.append(bar(state, since, upto))
    band = Lane(
        "Supervision",
        "band",
        float(TOP),
        tuple(band_bars),
        tuple(marker(*m) for m in band_markers),
    )

    # A lane for each person something was drawn for (an entry naming someone, such as an
    # invite being issued, does not put them on the picture).
    drawn = [
        p
        for p in people.values()
        if p.present or p.held or p.markers or p.present_since or p.recorded
    ]
    ordered = sorted(drawn, key=lambda p: (_role_rank(p.entry.role), p.first_seen))
    lanes = []
    for index, p in enumerate(ordered, start=1):
        assert p.present is not None and p.held is not None and p.markers is not None
        assert p.recorded is not None
        present = list(p.present) + ([(p.present_since, finish)] if p.present_since else [])
        held = list(p.held) + ([(p.held_since, finish)] if p.held_since else [])
        lanes.append(
            Lane(
                p.entry.label,
                p.entry.role,
                float(TOP + index * LANE_HEIGHT),
                tuple(bar("present", a, b) for a, b in present)
                + tuple(bar("held", a, b) for a, b in held)
                + tuple(bar("recorded", a, b or finish) for a, b in p.recorded),
                tuple(marker(*m) for m in p.markers),
            )
        )
    ticks = tuple(
        Tick(
            round(LABEL_WIDTH + usable * i / (TICKS - 1), 1),
            (start + (finish - start) * i / (TICKS - 1)).astimezone(UTC).strftime("%H:%M:%S"),
        )
        for i in range(TICKS)
    )
    height = TOP + (len(lanes) + 1) * LANE_HEIGHT + 10
    return TimelineLayout(
        WIDTH, height, float(LABEL_WIDTH), start, finish, band, tuple(lanes), ticks, tuple(rows)
    )


def _role_rank(role: str) -> int:
    return _ROLE_ORDER.index(role) if role in _ROLE_ORDER else len(_ROLE_ORDER)


def _words(kind: str) -> str:
    return kind.replace("_", " ")
