"""The timeline's layout (gateway/domain/timeline.py) as tables: audit entries in, lanes,
intervals, markers and rows out."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.audit import AuditEntry
from gateway.domain.timeline import (
    BAND_BELOW,
    BAND_HELD,
    BAND_SUPERVISED,
    LABEL_WIDTH,
    LANE_HEIGHT,
    RIGHT_MARGIN,
    TOP,
    WIDTH,
    RosterEntry,
    TimelineLayout,
    lay_out_timeline,
)

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
ROSTER = [
    RosterEntry("p-host", "id-host", "Tina T.", "host"),
    RosterEntry("p-obs", "id-obs", "Oscar O.", "observer"),
    RosterEntry("p-sam", "id-sam", "Sam G.", "child"),
    RosterEntry("p-ada", "id-ada", "Ada H.", "child"),
]


def entry(minute: int, what: str, actor: str = "gateway", **data: object) -> AuditEntry:
    at = T0 + timedelta(minutes=minute)
    return AuditEntry(
        seq=minute + 1,
        at=int(at.timestamp() * 1_000_000),
        org_id="org",
        kind=what,
        actor=actor,
        session_id="s",
        person_id=None,
        data=data,
    )


def join(minute: int, who: str, outcome: str = "admit") -> AuditEntry:
    return entry(minute, "join.decision", participant=who, outcome=outcome)


def lay_out(*entries: AuditEntry, until_minute: int = 60) -> TimelineLayout:
    return lay_out_timeline(entries, ROSTER, until=T0 + timedelta(minutes=until_minute))


def spans(layout: TimelineLayout, label: str, kind: str) -> list[tuple[int, int]]:
    [lane] = [lane for lane in layout.lanes if lane.label == label]
    return [
        (int((b.start - T0).total_seconds() // 60), int((b.end - T0).total_seconds() // 60))
        for b in lane.bars
        if b.kind == kind
    ]


def band(layout: TimelineLayout) -> list[tuple[int, str]]:
    return [(int((b.start - T0).total_seconds() // 60), b.kind) for b in layout.band.bars]


A_SESSION = (
    join(0, "p-host"),
    join(1, "p-sam", "hold"),  # one adult: the child waits, held
    join(2, "p-obs"),
    entry(2, "supervision.release", "id-sam", participant="p-sam", state="supervised"),
    join(3, "p-ada"),
    entry(10, "media.disconnected", "id-obs", participant="p-obs"),
    entry(11, "supervision.hold", "id-sam", participant="p-sam", state="breach"),
    entry(11, "supervision.hold", "id-ada", participant="p-ada", state="breach"),
    entry(11, "supervision.breach", state="breach"),
    entry(12, "incident.opened", "id-ada", participant="p-ada", kind="concern"),
    join(15, "p-obs"),
    entry(15, "supervision.release", "id-sam", participant="p-sam", state="supervised"),
    entry(15, "supervision.release", "id-ada", participant="p-ada", state="supervised"),
    entry(20, "participant.removed", "id-host", participant="p-ada"),
    entry(25, "participant.left", "id-sam"),
    entry(30, "session.ended", "id-host"),
)


@pytest.mark.parametrize(
    ("label", "kind", "expected"),
    [
        ("Tina T. (Host)", "present", [(0, 30)]),
        ("Oscar O. (Observer)", "present", [(2, 10), (15, 30)]),
        ("Sam G. (Child)", "present", [(1, 25)]),
        ("Sam G. (Child)", "held", [(1, 2), (11, 15)]),
        ("Ada H. (Child)", "present", [(3, 20)]),
        ("Ada H. (Child)", "held", [(11, 15)]),
    ],
)
def test_who_was_present_and_held_when(
    label: str, kind: str, expected: list[tuple[int, int]]
) -> None:
    assert spans(lay_out(*A_SESSION), label, kind) == expected


def test_lanes_are_ordered_by_role_then_arrival_and_labelled_by_masked_name_and_role() -> None:
    layout = lay_out(*A_SESSION)
    assert [lane.label for lane in layout.lanes] == [
        "Tina T. (Host)",
        "Oscar O. (Observer)",
        "Sam G. (Child)",
        "Ada H. (Child)",
    ]
    assert [lane.y for lane in layout.lanes] == sorted(lane.y for lane in layout.lanes)
    assert layout.band.y < layout.lanes[0].y


def test_the_supervision_band_is_held_below_or_supervised() -> None:
    assert band(lay_out(*A_SESSION)) == [
        (0, BAND_SUPERVISED),
        (1, BAND_HELD),
        (2, BAND_SUPERVISED),
        (11, BAND_HELD),
        (15, BAND_SUPERVISED),
    ]
    # Below the minimum with nobody held (no child there to hold): "below".
    alone = lay_out(join(0, "p-host"), entry(5, "supervision.breach", state="breach"))
    assert band(alone) == [(0, BAND_SUPERVISED), (5, BAND_BELOW)]


@pytest.mark.parametrize(
    ("label", "markers"),
    [
        ("Ada H. (Child)", [("concern", 12), ("removed", 20)]),
        ("Supervision", [("breach", 11), ("ended", 30)]),
        ("Sam G. (Child)", []),
    ],
)
def test_markers(label: str, markers: list[tuple[str, int]]) -> None:
    layout = lay_out(*A_SESSION)
    lane = next(lane for lane in (layout.band, *layout.lanes) if lane.label == label)
    assert [(m.kind, int((m.at - T0).total_seconds() // 60)) for m in lane.markers] == markers


def test_coordinates_run_from_the_first_event_to_the_end_across_the_axis() -> None:
    layout = lay_out(*A_SESSION)
    usable = WIDTH - LABEL_WIDTH - RIGHT_MARGIN
    assert layout.start == T0 and layout.end == T0 + timedelta(minutes=30)
    [host] = [lane for lane in layout.lanes if lane.role == "host"]
    [bar] = host.bars
    assert bar.x == LABEL_WIDTH and bar.width == pytest.approx(usable, abs=0.2)
    [ada] = [lane for lane in layout.lanes if lane.label.startswith("Ada")]
    concern = next(m for m in ada.markers if m.kind == "concern")
    assert concern.x == pytest.approx(LABEL_WIDTH + usable * 12 / 30, abs=0.1)
    assert [t.label for t in layout.ticks] == [
        "10:00:00",
        "10:07:30",
        "10:15:00",
        "10:22:30",
        "10:30:00",
    ]


def test_rows_list_every_drawn_event_in_order_with_who_and_what() -> None:
    layout = lay_out(*A_SESSION)
    assert len(layout.rows) == len(A_SESSION)
    assert [(r.who, r.what) for r in layout.rows][8:14] == [
        ("Session", "supervision breach: fewer vetted adults than required"),
        ("Ada H. (Child)", "concern reported"),
        ("Oscar O. (Observer)", "joined"),
        ("Sam G. (Child)", "released (supervised again)"),
        ("Ada H. (Child)", "released (supervised again)"),
        ("Ada H. (Child)", "removed by the host"),
    ]
    assert layout.rows[-2] == layout.rows[-2].__class__(
        T0 + timedelta(minutes=25), "Sam G. (Child)", "left"
    )


@pytest.mark.parametrize(
    "entries",
    [
        (),
        (entry(1, "staff.signed_in"), entry(2, "timeline.viewed")),  # nothing to draw
        (join(1, "someone-not-on-the-roster"),),
    ],
)
def test_nothing_to_draw(entries: tuple[AuditEntry, ...]) -> None:
    layout = lay_out(*entries)
    assert layout.empty and layout.lanes == ()


def test_a_session_still_running_extends_open_intervals_to_until() -> None:
    layout = lay_out(join(0, "p-host"), join(1, "p-sam", "hold"), until_minute=40)
    assert layout.end == T0 + timedelta(minutes=40)
    assert spans(layout, "Sam G. (Child)", "held") == [(1, 40)]
    refused = lay_out(join(0, "p-sam", "deny"))
    [lane] = refused.lanes
    assert [m.kind for m in lane.markers] == ["refused"] and lane.bars == ()


KINDS = (
    "join.decision",
    "media.connected",
    "media.disconnected",
    "participant.left",
    "supervision.hold",
    "supervision.release",
    "supervision.breach",
    "participant.removed",
    "incident.opened",
    "session.ended",
    "invite.issued",  # not drawn
)
PEOPLE = ("p-host", "p-obs", "p-sam", "p-ada", "p-stranger")


@given(
    st.lists(
        st.tuples(
            st.integers(0, 600),
            st.sampled_from(KINDS),
            st.sampled_from(PEOPLE),
            st.sampled_from(("admit", "hold", "deny")),
            st.sampled_from(("supervised", "grace", "breach", "no_children")),
        ),
        max_size=40,
    ).map(sorted),
    st.integers(0, 700),
)
def test_any_log_lays_out_inside_the_picture(events: list[Any], until_minute: int) -> None:
    entries = []
    for seq, (second, kind, who, outcome, state) in enumerate(events, start=1):
        at = T0 + timedelta(seconds=second)
        data: dict[str, object] = {"participant": who, "outcome": outcome, "state": state}
        if kind == "incident.opened":
            data["kind"] = "concern"
        entries.append(
            AuditEntry(seq, int(at.timestamp() * 1e6), "org", kind, "x", "s", None, data)
        )
    layout = lay_out(*entries, until_minute=until_minute)
    right = WIDTH - RIGHT_MARGIN
    for lane in (layout.band, *layout.lanes):
        for bar in lane.bars:
            assert bar.x >= LABEL_WIDTH and bar.x + bar.width <= right + 1
            assert bar.start <= bar.end
        for mark in lane.markers:
            assert LABEL_WIDTH <= mark.x <= right
    labels = {lane.label for lane in layout.lanes}
    assert labels <= {entry.label for entry in ROSTER}  # nobody off the roster is drawn
    assert [r.at for r in layout.rows] == sorted(r.at for r in layout.rows)
    drawn = [e for e in entries if e.kind != "invite.issued"]
    assert len(layout.rows) <= len(drawn)
    assert layout.height >= TOP + (len(layout.lanes) + 1) * LANE_HEIGHT
    # The band's segments follow each other without gaps or overlaps.
    for before, after in itertools.pairwise(layout.band.bars):
        assert before.end == after.start
