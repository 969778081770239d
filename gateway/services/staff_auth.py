"""Staff sign-in to the gateway's pages (R5, R13): one-time links by e-mail, passwords, sessions.

Staff are the registry's staff records; their roles there decide what each may see. A member of
staff signs in with their organisational e-mail address and either a one-time link sent to it
or a password they set themselves from such a link (never one an admin chose or saw).

Every answer that could tell whether an address is registered is the same for all addresses:
"check your e-mail" for a link, "e-mail and password do not match" for a password, and one
answer for every sign-in link that cannot be used (forged, used, expired, other browser); the
audit log records which it was. Failures are limited per account and per source through the
shared attempt limiter (`services.ports.AttemptLimiter`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from gateway.clock import Clock
from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal, Unavailable
from gateway.domain.models import PersonKind, Staff
from gateway.domain.staff_session import (
    ACCOUNT_MAX_FAILURES,
    ATTEMPT_WINDOW_SECONDS,
    LINKS_PER_ACCOUNT,
    LINKS_PER_SOURCE,
    PASSWORD_MAX,
    SIGNIN_LINK_TTL,
    SOURCE_MAX_FAILURES,
    LinkFault,
    SessionState,
    SessionTimeouts,
    SignInLink,
    SignInMethod,
    StaffSession,
    account_key,
    check_new_password,
    link_fault,
    may_set_password,
    needs_touch,
    new_secret,
    secret_hash,
    session_state,
    well_formed_secret,
)
from gateway.services.ports import AttemptLimiter, Organisation, PasswordHasher

SIGNIN_REFUSED = "That e-mail address and password do not match, or the account has no password."
LINK_REFUSED = "This sign-in link cannot be used. Ask for a new one."
TOO_MANY = "Too many attempts; wait and try again."
# Staff with the same address in several organisations: each gets their own link, and a
# password is tried against at most this many accounts.
MAX_ACCOUNTS = 5


class StaffAuthStore(Protocol):
    """Durable sign-in state; every change commits with its audit events, or raises."""

    async def staff_accounts(self, email: str) -> Sequence[Staff]:
        """Every staff record with this (normalised) address, in every organisation."""
        ...

    async def password_hash(self, staff_id: str) -> str | None: ...
    async def set_password(
        self, staff_id: str, password_hash: str, at: datetime, events: Sequence[AuditEvent]
    ) -> None: ...
    async def add_link(self, link: SignInLink, events: Sequence[AuditEvent]) -> None: ...
    async def link(self, token_hash: str) -> SignInLink | None: ...
    async def use_link(
        self, link: SignInLink, at: datetime, session: StaffSession, events: Sequence[AuditEvent]
    ) -> bool:
        """Mark the link used and open the session, only if it was still unused; False when
        another request used it first (nothing is written then)."""
        ...

    async def open_session(self, session: StaffSession, events: Sequence[AuditEvent]) -> None: ...
    async def session(self, id_hash: str) -> StaffSession | None: ...
    async def touch(self, id_hash: str, at: datetime) -> None: ...
    async def revoke_session(
        self, id_hash: str, at: datetime, events: Sequence[AuditEvent]
    ) -> None: ...
    async def revoke_sessions(
        self, staff_id: str, at: datetime, events: Sequence[AuditEvent]
    ) -> int: ...
    async def record(self, events: Sequence[AuditEvent]) -> None: ...


class StaffDirectory(Protocol):
    """The registry and organisations (the `Store` port provides both)."""

    async def person(self, org_id: str, kind: PersonKind, person_id: str) -> object: ...
    async def organisation(self, org_id: str) -> Organisation | None: ...


class SignInMail(Protocol):
    """Sends a sign-in link to a member of staff's organisational address."""

    async def send(self, to: str, link: str, organisation: str) -> None:
        """Raises `MailUnavailable` when the mail server cannot take it."""
        ...


class MailUnavailable(Exception):
    """The mail server refused or could not be reached."""


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The member of staff a request comes from, as the registry says now."""

    staff: Staff
    organisation: Organisation
    session: StaffSession

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token

    @property
    def actor(self) -> str:
        return f"staff:{self.staff.id}"


@dataclass(frozen=True, slots=True)
class Opened:
    """A new staff session: the cookie's value (never stored) and who it is for."""

    cookie: str
    staff: Staff
    has_password: bool


class StaffAuthService:
    def __init__(
        self,
        store: StaffAuthStore,
        directory: StaffDirectory,
        hasher: PasswordHasher,
        limiter: AttemptLimiter,
        mail: SignInMail | None,
        clock: Clock,
        timeouts: SessionTimeouts,
        public_url: str,
    ) -> None:
        self._store = store
        self._directory = directory
        self._hasher = hasher
        self._limiter = limiter
        self._mail = mail
        self._clock = clock
        self._timeouts = timeouts
        self._public_url = public_url
        self._dummy_hash: str | None = None

    @property
    def links_enabled(self) -> bool:
        return self._mail is not None

    @property
    def timeouts(self) -> SessionTimeouts:
        return self._timeouts

    # sign-in links ------------------------------------------------------------------------------
    async def request_link(self, email: str, browser_secret: str, source: str) -> None:
        """Send a one-time sign-in link to every staff account with this address (none: send
        nothing, answer the same). The link works only in the browser that asked."""
        if self._mail is None:
            raise Refusal(
                ErrorCode.FORBIDDEN,
                "Sign-in by e-mail is not set up on this gateway; sign in with your password.",
            )
        email = _normalised(email)
        now = self._clock.now()
        keys = (
            (f"staff-link:account:{account_key(email)}", LINKS_PER_ACCOUNT),
            (f"staff-link:source:{source}", LINKS_PER_SOURCE),
        )
        await self._check_limits(keys, now)
        for key, _ in keys:
            await self._limiter.fail(key, ATTEMPT_WINDOW_SECONDS, now)
        accounts = await self._store.staff_accounts(email) if email else ()
        for staff in list(accounts)[:MAX_ACCOUNTS]:
            organisation = await self._directory.organisation(staff.org_id)
            if organisation is None:
                continue
            token = new_secret()
            link = SignInLink(
                token_hash=secret_hash(token),
                staff_id=staff.id,
                org_id=staff.org_id,
                browser_hash=secret_hash(browser_secret),
                created_at=now,
                expires_at=now + SIGNIN_LINK_TTL,
            )
            await self._store.add_link(
                link,
                [
                    AuditEvent(
                        "staff.signin_link_sent",
                        f"staff:{staff.id}",
                        staff.org_id,
                        person_id=staff.id,
                        data={"expires_in_seconds": int(SIGNIN_LINK_TTL.total_seconds())},
                    )
                ],
            )
            url = f"{self._public_url}/staff/sign-in/link?token={token}"
            try:
                await self._mail.send(staff.email, url, organisation.name)
            except MailUnavailable as exc:
                raise Unavailable(
                    ErrorCode.PLATFORM_UNAVAILABLE,
                    "The e-mail could not be sent just now; try again in a minute.",
                    retry_after=60.0,
                ) from exc

    async def redeem_link(self, token: str, browser_secret: str | None, source: str) -> Opened:
        now = self._clock.now()
        source_key = f"staff-signin:source:{source}"
        await self._check_limits(((source_key, SOURCE_MAX_FAILURES),), now)
        link = await self._store.link(secret_hash(token)) if well_formed_secret(token) else None
        browser_hash = secret_hash(browser_secret) if browser_secret else None
        fault = link_fault(link, browser_hash, now)
        staff = None
        if fault is None and link is not None:
            staff = await self._staff(link.org_id, link.staff_id)
            if staff is None:
                fault = LinkFault.UNKNOWN
        if fault is not None or link is None or staff is None:
            await self._limiter.fail(source_key, ATTEMPT_WINDOW_SECONDS, now)
            await self._refuse_link(link, fault or LinkFault.UNKNOWN)
        assert link is not None and staff is not None
        cookie, session = self._new_session(staff, SignInMethod.LINK, now)
        used = await self._store.use_link(
            link, now, session, [_signed_in(staff, SignInMethod.LINK)]
        )
        if not used:  # another request took it between our read and our write
            await self._refuse_link(link, LinkFault.USED)
        has_password = await self._store.password_hash(staff.id) is not None
        return Opened(cookie, staff, has_password)

    async def _refuse_link(self, link: SignInLink | None, fault: LinkFault) -> None:
        await self._store.record(
            [
                AuditEvent(
                    "staff.signin_link_refused",
                    "anonymous",
                    link.org_id if link else None,
                    person_id=link.staff_id if link else None,
                    data={"reason": fault.value},
                )
            ]
        )
        raise Refusal(ErrorCode.SIGNIN_LINK_INVALID, LINK_REFUSED)

    # passwords ----------------------------------------------------------------------------------
    async def sign_in_with_password(self, email: str, password: str, source: str) -> Opened:
        email = _normalised(email)
        now = self._clock.now()
        account = f"staff-signin:account:{account_key(email)}"
        by_source = f"staff-signin:source:{source}"
        await self._check_limits(
            ((account, ACCOUNT_MAX_FAILURES), (by_source, SOURCE_MAX_FAILURES)), now
        )
        # Count the attempt before the slow check: parallel guesses cannot all slip past the
        # limit. A right password clears the account's count (not the source's).
        await self._limiter.fail(account, ATTEMPT_WINDOW_SECONDS, now)
        matched = await self._match_password(email, password)
        if matched is None:
            await self._limiter.fail(by_source, ATTEMPT_WINDOW_SECONDS, now)
            accounts = await self._store.staff_accounts(email) if email else ()
            await self._store.record(
                [
                    AuditEvent(
                        "staff.signin_refused",
                        "anonymous",
                        staff.org_id,
                        person_id=staff.id,
                        data={"method": "password", "reason": "password"},
                    )
                    for staff in list(accounts)[:MAX_ACCOUNTS]
                ]
                or [
                    AuditEvent(
                        "staff.signin_refused",
                        "anonymous",
                        data={"method": "password", "reason": "unknown_account"},
                    )
                ]
            )
            raise Refusal(ErrorCode.SIGNIN_FAILED, SIGNIN_REFUSED)
        await self._limiter.reset(account)
        cookie, session = self._new_session(matched, SignInMethod.PASSWORD, now)
        await self._store.open_session(session, [_signed_in(matched, SignInMethod.PASSWORD)])
        return Opened(cookie, matched, True)

    async def _match_password(self, email: str, password: str) -> Staff | None:
        if not email or not password or len(password) > PASSWORD_MAX:
            return None
        tried = False
        for staff in list(await self._store.staff_accounts(email))[:MAX_ACCOUNTS]:
            stored = await self._store.password_hash(staff.id)
            if stored is None:
                continue
            tried = True
            if await self._hasher.verify(stored, password):
                return staff
        if not tried:
            # Unknown addresses take as long as known ones: timing tells nothing.
            await self._hasher.verify(await self._dummy(), password)
        return None

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self._hasher.hash(new_secret())
        return self._dummy_hash

    async def set_password(self, who: SignedIn, password: str, confirmation: str) -> None:
        now = self._clock.now()
        if not may_set_password(who.session, now):
            raise Refusal(
                ErrorCode.FORBIDDEN,
                "To set a password, sign in with a new link from your e-mail first.",
            )
        check_new_password(password, confirmation)
        hashed = await self._hasher.hash(password)
        await self._store.set_password(
            who.staff.id,
            hashed,
            now,
            [
                AuditEvent(
                    "staff.password_set", who.actor, who.organisation.id, person_id=who.staff.id
                )
            ],
        )

    def may_set_password(self, who: SignedIn) -> bool:
        return may_set_password(who.session, self._clock.now())

    # sessions -----------------------------------------------------------------------------------
    async def signed_in(self, cookie: str | None) -> SignedIn | None:
        """The member of staff behind a session cookie, or None (unknown, ended, no longer on
        the registry). Moves the idle deadline on."""
        if not well_formed_secret(cookie):
            return None
        assert cookie is not None
        session = await self._store.session(secret_hash(cookie))
        if session is None:
            return None
        now = self._clock.now()
        if session_state(session, now, self._timeouts) is not SessionState.ACTIVE:
            return None
        staff = await self._staff(session.org_id, session.staff_id)
        organisation = await self._directory.organisation(session.org_id)
        if staff is None or organisation is None:
            return None
        if needs_touch(session, now):
            await self._store.touch(session.id_hash, now)
            session = replace(session, last_seen_at=now)
        return SignedIn(staff, organisation, session)

    async def sign_out(self, who: SignedIn) -> None:
        event = AuditEvent(
            "staff.signed_out", who.actor, who.organisation.id, person_id=who.staff.id
        )
        await self._store.revoke_session(who.session.id_hash, self._clock.now(), [event])

    async def sign_out_everywhere(self, who: SignedIn) -> int:
        event = AuditEvent(
            "staff.signed_out_everywhere",
            who.actor,
            who.organisation.id,
            person_id=who.staff.id,
        )
        return await self._store.revoke_sessions(who.staff.id, self._clock.now(), [event])

    # helpers ------------------------------------------------------------------------------------
    async def _check_limits(self, keys: Sequence[tuple[str, int]], now: datetime) -> None:
        for key, limit in keys:
            wait = await self._limiter.check(key, limit, ATTEMPT_WINDOW_SECONDS, now)
            if wait is not None:
                await self._store.record(
                    [
                        AuditEvent(
                            "staff.signin_limited",
                            "anonymous",
                            data={"limit": key.split(":", 2)[1]},
                        )
                    ]
                )
                raise Refusal(ErrorCode.TOO_MANY_ATTEMPTS, TOO_MANY, retry_after=wait)

    async def _staff(self, org_id: str, staff_id: str) -> Staff | None:
        staff = await self._directory.person(org_id, PersonKind.STAFF, staff_id)
        return staff if isinstance(staff, Staff) else None

    def _new_session(
        self, staff: Staff, method: SignInMethod, now: datetime
    ) -> tuple[str, StaffSession]:
        cookie = new_secret()
        session = StaffSession(
            id_hash=secret_hash(cookie),
            staff_id=staff.id,
            org_id=staff.org_id,
            csrf_token=new_secret(),
            method=method,
            created_at=now,
            last_seen_at=now,
        )
        return cookie, session


def _normalised(email: str) -> str:
    email = email.strip().lower()
    return email if 3 <= len(email) <= 320 and "@" in email and email.isprintable() else ""


def _signed_in(staff: Staff, method: SignInMethod) -> AuditEvent:
    return AuditEvent(
        "staff.signed_in",
        f"staff:{staff.id}",
        staff.org_id,
        person_id=staff.id,
        data={"method": method.value},
    )
