"""The pure rules of staff sign-in (gateway/domain/staff_session.py), as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.models import Staff, StaffRole
from gateway.domain.staff_session import (
    LinkFault,
    SessionState,
    SessionTimeouts,
    SignInLink,
    SignInMethod,
    StaffSession,
    check_closing,
    check_may_open_incident_desk,
    check_new_password,
    form_token,
    link_fault,
    may_set_password,
    needs_touch,
    new_secret,
    same_origin,
    secret_hash,
    session_state,
    token_matches,
    well_formed_secret,
)

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
H1, H7 = timedelta(hours=1), timedelta(hours=7)
TIMEOUTS = SessionTimeouts(idle=timedelta(minutes=30), absolute=timedelta(hours=8))


def _session(
    created: timedelta = timedelta(0),
    seen: timedelta = timedelta(0),
    revoked: bool = False,
    method: SignInMethod = SignInMethod.PASSWORD,
) -> StaffSession:
    return StaffSession(
        "h", "s1", "o1", "c", method, T0 + created, T0 + seen, T0 if revoked else None
    )


@pytest.mark.parametrize(
    ("session", "now", "state"),
    [
        (_session(), T0, SessionState.ACTIVE),
        (_session(), T0 + timedelta(minutes=29, seconds=59), SessionState.ACTIVE),
        (_session(), T0 + timedelta(minutes=30), SessionState.IDLE),
        (
            _session(seen=timedelta(hours=7, minutes=59)),
            T0 + timedelta(hours=8),
            SessionState.EXPIRED,
        ),
        (
            _session(seen=timedelta(hours=7)),
            T0 + timedelta(hours=7, minutes=10),
            SessionState.ACTIVE,
        ),
        (_session(revoked=True), T0, SessionState.REVOKED),
    ],
)
def test_session_states(session: StaffSession, now: datetime, state: SessionState) -> None:
    assert session_state(session, now, TIMEOUTS) is state


def test_last_seen_is_written_at_most_once_a_minute() -> None:
    assert not needs_touch(_session(), T0 + timedelta(seconds=59))
    assert needs_touch(_session(), T0 + timedelta(seconds=60))


@pytest.mark.parametrize(
    ("method", "after", "allowed"),
    [
        (SignInMethod.LINK, timedelta(minutes=14), True),
        (SignInMethod.LINK, timedelta(minutes=15), False),
        (SignInMethod.PASSWORD, timedelta(0), False),
    ],
)
def test_a_password_is_set_only_soon_after_a_link(
    method: SignInMethod, after: timedelta, allowed: bool
) -> None:
    assert may_set_password(_session(method=method), T0 + after) is allowed


BROWSER = secret_hash("browser")
LINK = SignInLink("t", "s1", "o1", BROWSER, T0, T0 + timedelta(minutes=15))
USED = SignInLink("t", "s1", "o1", BROWSER, T0, T0 + timedelta(minutes=15), used_at=T0)


@pytest.mark.parametrize(
    ("link", "browser", "now", "fault"),
    [
        (LINK, BROWSER, T0 + timedelta(minutes=14), None),
        (None, BROWSER, T0, LinkFault.UNKNOWN),
        (
            SignInLink("t", "s1", "o1", BROWSER, T0, T0 + timedelta(minutes=15), T0),
            BROWSER,
            T0,
            LinkFault.USED,
        ),
        (LINK, BROWSER, T0 + timedelta(minutes=15), LinkFault.EXPIRED),
        (LINK, secret_hash("another"), T0, LinkFault.OTHER_BROWSER),
        (LINK, None, T0, LinkFault.OTHER_BROWSER),
    ],
)
def test_link_faults(
    link: SignInLink | None, browser: str | None, now: datetime, fault: LinkFault | None
) -> None:
    assert link_fault(link, browser, now) is fault


@pytest.mark.parametrize(
    ("origin", "referer", "ok"),
    [
        ("https://gw.example.org", None, True),
        ("https://gw.example.org:443", None, True),
        ("https://GW.example.org", None, True),
        ("http://gw.example.org", None, False),
        ("https://gw.example.org.evil.net", None, False),
        ("https://gw.example.org:8443", None, False),
        ("null", "https://gw.example.org/staff", False),
        (None, "https://gw.example.org/staff/incidents", True),
        (None, "https://evil.net/https://gw.example.org", False),
        (None, None, False),
        ("not a url", None, False),
    ],
)
def test_same_origin(origin: str | None, referer: str | None, ok: bool) -> None:
    assert same_origin("https://gw.example.org", origin, referer) is ok


def test_form_tokens_are_bound_to_key_and_browser() -> None:
    browser = new_secret()
    token = form_token(b"k" * 32, browser)
    assert token_matches(token, form_token(b"k" * 32, browser))
    assert not token_matches(token, form_token(b"j" * 32, browser))
    assert not token_matches(token, form_token(b"k" * 32, new_secret()))
    assert not token_matches(token, "") and not token_matches(None, token)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (new_secret(), True),
        ("A" * 43, True),
        ("A" * 42, False),
        ("A" * 42 + "/", False),
        ("A" * 42 + "é", False),
        (None, False),
    ],
)
def test_only_well_formed_secrets_are_looked_up(value: str | None, ok: bool) -> None:
    assert well_formed_secret(value) is ok


@pytest.mark.parametrize(
    ("password", "confirmation", "ok"),
    [
        ("a" * 12, "a" * 12, True),
        ("a" * 11, "a" * 11, False),
        ("a" * 129, "a" * 129, False),
        ("a" * 12, "b" * 12, False),
        ("a" * 11 + "\n", "a" * 11 + "\n", False),
    ],
)
def test_new_passwords(password: str, confirmation: str, ok: bool) -> None:
    if ok:
        assert check_new_password(password, confirmation) == password
    else:
        with pytest.raises(Refusal) as refused:
            check_new_password(password, confirmation)
        assert password not in refused.value.message


@pytest.mark.parametrize(
    ("outcome", "reason", "ok"),
    [
        ("referred_police", "Asked by the police.", True),
        ("referred_police", "   ", False),
        ("referred_police", "x" * 2001, False),
        ("made_up", "reason", False),
        ("", "reason", False),
    ],
)
def test_closing_needs_a_listed_outcome_and_a_reason(outcome: str, reason: str, ok: bool) -> None:
    if ok:
        assert check_closing(outcome, reason) == (outcome, reason)
    else:
        with pytest.raises(Refusal) as refused:
            check_closing(outcome, reason)
        assert refused.value.code is ErrorCode.BODY_INVALID


@pytest.mark.parametrize(
    ("roles", "ok"),
    [
        ({StaffRole.DSL}, True),
        ({StaffRole.ADMIN}, True),
        ({StaffRole.TUTOR}, False),
        ({StaffRole.OBSERVER}, False),
        ({StaffRole.TUTOR, StaffRole.OBSERVER}, False),
    ],
)
def test_who_opens_the_incident_desk(roles: set[StaffRole], ok: bool) -> None:
    staff = Staff("s1", "o1", "Dee Lead", "dee@example.org", frozenset(roles), None)
    if ok:
        check_may_open_incident_desk(staff)
    else:
        with pytest.raises(Refusal) as refused:
            check_may_open_incident_desk(staff)
        assert refused.value.code is ErrorCode.FORBIDDEN
