"""Supervision while a session runs (R4): enough vetted adults, or children are held.

`evaluate_supervision` is called on every presence change (and periodically, so a grace period
can run out). The caller keeps `below_since` between calls: the verdict hands it back, carried
forward while the count stays below the minimum, None once supervised again.

States:
  no_children  no child is present; nothing to protect (below_since is reset)
  supervised   at least `min_vetted_adults` vetted adults are present; held children released
  grace        below the minimum for less than `grace_seconds`; children stay as they are
  breach       below the minimum for `grace_seconds` or more; every un-held child is held

One-shot flags fire on transitions and the caller must act on them when they do:
  alert        the count has just fallen below (below_since was None) or a breach has just
               started (there were un-held children to hold)
  incident     a breach has just started
  end_session  a breach has just started and the policy says to end the session
A counted adult who leaves on purpose or is removed is no dropped connection: the grace period
(which exists for connections that drop and come back) does not apply, and the breach starts at
once (`adult_left_on_purpose=True`; below_since is then set as if the grace had run out, so later
rounds keep seeing the breach).

`policy.supervision.action` says what a breach does besides holding and alerting:
"hold_children" holds them; "end_session" holds them and ends the session (`end_session`).

Children already held while the adults are not there (e.g. waiting for the second adult at the
start) are not a breach in themselves: they cannot see, hear or be seen, so no incident is
logged and the session is not ended for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from gateway.domain.hours import as_utc
from gateway.domain.models import PersonKind, Presence
from gateway.domain.policy import Policy

SupervisionState = Literal["no_children", "supervised", "grace", "breach"]


@dataclass(frozen=True, slots=True)
class SupervisionVerdict:
    state: SupervisionState
    vetted_adults: int
    required: int
    below_since: datetime | None
    hold: tuple[str, ...] = ()  # participant ids of children to hold now
    release: tuple[str, ...] = ()  # participant ids of held children to release now
    alert: bool = False
    incident: bool = False
    end_session: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "state": self.state,
            "vetted_adults": self.vetted_adults,
            "required": self.required,
            "below_since": self.below_since.isoformat() if self.below_since else None,
            "hold": list(self.hold),
            "release": list(self.release),
            "alert": self.alert,
            "incident": self.incident,
            "end_session": self.end_session,
        }


def count_vetted_adults(
    present: Sequence[Presence], policy: Policy, exclude_participant_id: str | None = None
) -> int:
    """Distinct present participants who count towards supervision under the policy.

    A presence counts when it is a vetted adult, in one of `supervision.counting_roles`, and not
    held. Duplicates (one participant seen twice) count once.
    """
    counting = set(policy.supervision.counting_roles)
    return len(
        {
            p.participant_id
            for p in present
            if p.vetted_adult
            and p.role.value in counting
            and not p.held
            and p.participant_id != exclude_participant_id
        }
    )


def _ids(present: Sequence[Presence]) -> tuple[str, ...]:
    return tuple(sorted({p.participant_id for p in present}))


def evaluate_supervision(
    present: Sequence[Presence],
    policy: Policy,
    now: datetime,
    below_since: datetime | None,
    *,
    adult_left_on_purpose: bool = False,
) -> SupervisionVerdict:
    """What to do about supervision right now; pure and deterministic."""
    vetted = count_vetted_adults(present, policy)
    required = policy.supervision.min_vetted_adults
    children = [p for p in present if p.person_kind is PersonKind.CHILD]
    if not children:
        return SupervisionVerdict("no_children", vetted, required, None)
    held = [p for p in children if p.held]
    free = [p for p in children if not p.held]
    if vetted >= required:
        return SupervisionVerdict("supervised", vetted, required, None, release=_ids(held))

    fell_below = below_since is None
    grace = timedelta(seconds=policy.supervision.grace_seconds)
    since = below_since if below_since is not None else now
    if adult_left_on_purpose and as_utc(now) - as_utc(since) < grace:
        since = now - grace
    if as_utc(now) - as_utc(since) < grace:
        return SupervisionVerdict("grace", vetted, required, since, alert=fell_below)
    hold = _ids(free)
    breach_starts = bool(hold)
    return SupervisionVerdict(
        "breach",
        vetted,
        required,
        since,
        hold=hold,
        alert=fell_below or breach_starts,
        incident=breach_starts,
        end_session=breach_starts and policy.supervision.action == "end_session",
    )
