"""Session hours (R16): contact happens only in the policy's hours, inside a session's window.

All instants are compared in UTC; a naive datetime is taken to be UTC (never the machine's local
time, which would be an implicit read of the environment). Hours and days are those of
`policy.hours.time_zone`.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, timedelta

from gateway.domain.models import Session
from gateway.domain.policy import DAYS, Policy


def as_utc(instant: datetime) -> datetime:
    """The instant in UTC; naive datetimes are taken to be UTC already."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def local_time(instant: datetime, policy: Policy) -> datetime:
    """The instant as wall-clock time in the policy's time zone."""
    return as_utc(instant).astimezone(zoneinfo.ZoneInfo(policy.hours.time_zone))


def local_date(instant: datetime, policy: Policy) -> date:
    """The calendar day in the policy's time zone (what 'today' means for vetting and consent)."""
    return local_time(instant, policy).date()


def within_policy_hours(instant: datetime, policy: Policy) -> bool:
    """Whether the instant falls on an allowed day, inside [start, end) local time."""
    local = local_time(instant, policy)
    if DAYS[local.weekday()] not in policy.hours.days:
        return False
    clock = local.time().replace(tzinfo=None)
    return policy.hours.start_time <= clock < policy.hours.end_time


def out_of_hours_waived(policy: Policy, approved: bool) -> bool:
    """A DSL's approval lifts the hours rule only where the policy allows it."""
    return approved and policy.hours.out_of_hours == "dsl_approval"


def session_hours_reasons(session: Session, policy: Policy, now: datetime) -> tuple[str, ...]:
    """Why a join at `now` is refused on timing grounds; empty when it is allowed."""
    at = as_utc(now)
    reasons: list[str] = []
    if session.ended_at is not None:
        reasons.append("session_ended")
    early = timedelta(minutes=policy.hours.early_join_minutes)
    if at < as_utc(session.starts_at) - early:
        reasons.append("session_not_started")
    if at >= as_utc(session.ends_at):
        reasons.append("session_over")
    if not within_policy_hours(at, policy) and not out_of_hours_waived(
        policy, session.out_of_hours_approved_by is not None
    ):
        reasons.append("outside_session_hours")
    return tuple(reasons)


def schedule_reasons(
    starts_at: datetime, ends_at: datetime, policy: Policy, out_of_hours_approved: bool
) -> tuple[str, ...]:
    """Why a session cannot be scheduled for [starts_at, ends_at); empty when it can.

    The whole session must sit inside the policy hours of one allowed day in the policy's time
    zone (it may end exactly at the end of hours), unless a DSL approved it and the policy
    allows DSL approval.
    """
    start, end = as_utc(starts_at), as_utc(ends_at)
    if start >= end:
        return ("end_not_after_start",)
    if out_of_hours_waived(policy, out_of_hours_approved):
        return ()
    local_start, local_end = local_time(start, policy), local_time(end, policy)
    end_of_day = datetime.combine(
        local_start.date(), policy.hours.end_time, tzinfo=local_start.tzinfo
    )
    if not within_policy_hours(start, policy) or as_utc(end_of_day) < end:
        return ("outside_session_hours",)
    if local_end.date() != local_start.date():
        return ("outside_session_hours",)
    return ()
