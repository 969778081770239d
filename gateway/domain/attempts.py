"""Abuse limits as plain decisions (R1): failure tallies in, what to do out. No I/O, time passed in.

A *tally* counts failures for one key (an invite holder, a source address, an organisation, a
second device) in a fixed window opened by the first failure and not extended by later ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["Limits", "PasswordVerdict", "Tally", "after_wrong_password", "before_password"]


@dataclass(frozen=True, slots=True)
class Tally:
    failures: int
    closes_at: datetime  # the window's end; a tally past it counts nothing
    ref: str | None = None  # what the window is about, when that matters (a concern's incident)

    def current(self, now: datetime) -> int:
        return self.failures if now < self.closes_at else 0

    def wait(self, now: datetime) -> float:
        return max(1.0, (self.closes_at - now).total_seconds())


NONE = Tally(0, datetime(1970, 1, 1, tzinfo=UTC))  # no failures recorded


@dataclass(frozen=True, slots=True)
class Limits:
    per_invite: int  # wrong passwords before an invite locks (soft: host or admin re-admits)
    per_source: int  # wrong passwords from one address before its checks are slowed
    per_org: int  # wrong passwords across an organisation before all its checks are slowed
    window: timedelta


@dataclass(frozen=True, slots=True)
class PasswordVerdict:
    locked_for: float | None  # the invite is locked: seconds until the window closes
    slowed: bool  # source or organisation over its limit: one check at a time, after a pause
    locked_now: bool = False  # this failure locked the invite (alert the host, once)
    source_limited_now: bool = False
    org_limited_now: bool = False


def before_password(
    invite: Tally, source: Tally, org: Tally, limits: Limits, now: datetime
) -> PasswordVerdict:
    """May a password be checked at all, and in which lane?

    The per-invite lock is a lock: nothing is checked while it holds. The per-source and
    per-organisation limits are not locks: past them a right password still gets in (many
    children share one school's address), but checks from there go one at a time, each after
    a pause, and a wrong one is answered 429, so guessing slows to a crawl while the right
    answer costs only the pause."""
    if invite.current(now) >= limits.per_invite:
        return PasswordVerdict(locked_for=invite.wait(now), slowed=False)
    slowed = source.current(now) >= limits.per_source or org.current(now) >= limits.per_org
    return PasswordVerdict(locked_for=None, slowed=slowed)


def after_wrong_password(
    invite: Tally, source: Tally, org: Tally, limits: Limits, now: datetime
) -> PasswordVerdict:
    """The tallies just after counting a wrong password: what the answer is, what to tell."""
    locked = invite.current(now) >= limits.per_invite
    return PasswordVerdict(
        locked_for=invite.wait(now) if locked else None,
        slowed=source.current(now) >= limits.per_source or org.current(now) >= limits.per_org,
        locked_now=invite.current(now) == limits.per_invite,
        source_limited_now=source.current(now) == limits.per_source,
        org_limited_now=org.current(now) == limits.per_org,
    )
