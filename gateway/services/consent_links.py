"""Consent collected online (R7, R9): guardians through a personal link, staff when signed in.

An admin sends a guardian a personal consent link; it goes out by e-mail through the outbox,
committed with the link (domain/consent_links.py says what the token is and when it can be
used). The guardian's page explains each purpose the policy lists and takes a consent per child
and purpose with an electronic signature; from the policy's assent age the child signs their
own assent on the same page, and the guardian may sign their own recording consent (they may
join sessions too). Everything given is a `ConsentRecord` with `e_signature` evidence,
appended with its signature (typed name, the exact text shown, its SHA-256, the policy version,
the time) through `ConsentService.record`, so the consent checks count it like any other.
Withdrawal is one step, needs no signature, and goes through the same `record` (which stops
live sessions and marks recordings for destruction, R9).

Withdrawal stays within reach after a link expires (domain/consent_links.py says how and why):
the bound browser keeps a withdraw-only view for a while, and any genuine link, however stale,
can ask for a new one, sent to the registry's address only, with one answer whatever happened.
A link sent by an admin, through the API or on request revokes the guardian's older unused ones.
When the policy does not accept `e_signature` evidence nothing can be signed online: the page
says so and offers withdrawal only.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from gateway.clock import Clock
from gateway.domain.audit import AuditEvent
from gateway.domain.consent import ConsentState, assent_required, standing_gives
from gateway.domain.consent_links import (
    WITHDRAWAL_GRACE,
    ConsentLink,
    LinkFault,
    genuine,
    link_fault,
    link_token,
    may_give,
    may_withdraw,
    refuse_link,
    token_hash,
    token_link_id,
    visit_form_token,
)
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.esignature import (
    ESignature,
    Signer,
    Wording,
    check_shown,
    check_typed_name,
    wording,
)
from gateway.domain.hours import local_date
from gateway.domain.models import (
    PARTICIPATION,
    Child,
    ConsentAction,
    ConsentRecord,
    Evidence,
    EvidenceMethod,
    Guardian,
    Person,
    PersonKind,
    Staff,
    StaffRole,
    person_kind,
)
from gateway.domain.outbox import Channels, OutboxMessage, consent_link
from gateway.domain.policy import EMAIL_ADDRESS, Policy
from gateway.domain.staff_session import new_secret, secret_hash, well_formed_secret
from gateway.services.consent import ConsentService
from gateway.services.organisations import new_id
from gateway.services.policies import PolicyBook
from gateway.services.ports import AttemptLimiter, Organisation

NOT_YOUR_CHILD = "You can give or withdraw consent only for your own children."
SIGNING_CLOSED = (
    "This link has expired, so nothing new can be signed with it: ask for a new link below. "
    "You can still withdraw anything you agreed to."
)
NOT_ONLINE = (
    "The organisation does not take consent online: ask them for a paper form. "
    "You can still withdraw anything you agreed to here."
)
# "send me a new link": per guardian (the messages one guardian receives) and per source (how
# fast anyone can ask at all), in one window.
RENEWAL_WINDOW_SECONDS = 3600
RENEWALS_PER_GUARDIAN = 3
RENEWALS_PER_SOURCE = 20
TOO_MANY_RENEWALS = "Too many requests for new links from here: try again later."


class ConsentLinkStore(Protocol):
    async def add_link(
        self,
        link: ConsentLink,
        message: OutboxMessage,
        events: Sequence[AuditEvent],
        revoked: Callable[[Sequence[str]], Sequence[AuditEvent]],
    ) -> tuple[str, ...]: ...
    async def link(self, link_id: str) -> ConsentLink | None: ...
    async def link_for_device(self, device_hash: str) -> ConsentLink | None: ...
    async def use_link(
        self, link: ConsentLink, device_hash: str, at: datetime, events: Sequence[AuditEvent]
    ) -> bool: ...
    async def signatures(
        self, org_id: str, record_ids: Sequence[str]
    ) -> Mapping[str, ESignature]: ...
    async def record(self, events: Sequence[AuditEvent]) -> None: ...


class MailChannels(Protocol):
    """Whether an organisation can send e-mail at all (`Notifications` provides it)."""

    async def channels(self, org: Organisation) -> Channels: ...


class People(Protocol):
    """The registry and organisations (the `Store` port provides both)."""

    async def organisation(self, org_id: str) -> Organisation | None: ...
    async def person(self, org_id: str, kind: PersonKind, person_id: str) -> Person | None: ...
    async def people(self, org_id: str, kind: PersonKind) -> Sequence[Person]: ...
    async def children_of_guardian(self, org_id: str, guardian_id: str) -> Sequence[Child]: ...


@dataclass(frozen=True, slots=True)
class GuardianVisit:
    """A browser a guardian's link is bound to, on a request."""

    link: ConsentLink
    guardian: Guardian
    organisation: Organisation
    csrf_token: str
    may_give: bool  # False once the link has expired: withdraw-only
    signs_online: bool  # the policy accepts `e_signature` evidence

    @property
    def actor(self) -> str:
        return f"guardian:{self.guardian.id}"


@dataclass(frozen=True, slots=True)
class Agreed:
    """One record that makes a consent valid, as the page shows it."""

    record: ConsentRecord
    signature: ESignature | None  # None: recorded another way (a signed form)


@dataclass(frozen=True, slots=True)
class PurposeOffer:
    """One purpose for one person: the words to sign, and where it stands."""

    purpose: str
    wording: Wording  # the guardian's (or the member of staff's) words
    assent: Wording | None  # the child's words, when their own assent is asked
    state: ConsentState
    agreed: tuple[Agreed, ...]  # every give that stands (since the last withdrawal)

    @property
    def given_by_guardian(self) -> bool:
        return any(a.record.given_by_kind is PersonKind.GUARDIAN for a in self.agreed)

    @property
    def assent_given(self) -> bool:
        return any(a.record.given_by_kind is PersonKind.CHILD for a in self.agreed)

    @property
    def given_by_self(self) -> bool:
        return any(a.record.given_by_kind is PersonKind.STAFF for a in self.agreed)


@dataclass(frozen=True, slots=True)
class ChildConsents:
    child: Child
    assent_asked: bool
    offers: tuple[PurposeOffer, ...]


@dataclass(frozen=True, slots=True)
class GuardianChoice:
    """A guardian an admin may send a link to (the page lists them)."""

    guardian: Guardian
    has_email: bool


class OnlineConsentService:
    def __init__(
        self,
        people: People,
        links: ConsentLinkStore,
        consent: ConsentService,
        policies: PolicyBook,
        clock: Clock,
        *,
        link_key: bytes,
        form_key: bytes,
        link_lifetime: timedelta,
        limiter: AttemptLimiter,
        channels: MailChannels | None = None,
    ) -> None:
        self._limiter = limiter
        self._channels = channels
        self._people = people
        self._links = links
        self._consent = consent
        self._policies = policies
        self._clock = clock
        self._link_key = link_key
        self._form_key = form_key
        self._lifetime = link_lifetime

    @property
    def link_lifetime_seconds(self) -> int:
        return int(self._lifetime.total_seconds())

    @property
    def cookie_lifetime_seconds(self) -> int:
        """How long a bound browser keeps its cookie: the link's life, then the withdraw-only
        grace (domain/consent_links.py)."""
        return int((self._lifetime + WITHDRAWAL_GRACE).total_seconds())

    async def can_email(self, org: Organisation) -> bool:
        """Whether the organisation has an e-mail channel: without one a link cannot go out."""
        return self._channels is None or (await self._channels.channels(org)).email is not None

    # an admin sends a link ----------------------------------------------------------------
    async def guardians(self, org: Organisation, admin: Staff) -> list[GuardianChoice]:
        _check_admin(admin)
        found = await self._people.people(org.id, PersonKind.GUARDIAN)
        return [
            GuardianChoice(g, bool(EMAIL_ADDRESS.match(g.contact)))
            for g in sorted(
                (p for p in found if isinstance(p, Guardian)), key=lambda g: g.name.casefold()
            )
        ]

    async def send_link(self, org: Organisation, admin: Staff, guardian_id: str) -> Guardian:
        """Queue a personal consent link to the guardian's e-mail address, with the link."""
        _check_admin(admin)
        guardian, _, _ = await self.send_link_as(org, f"staff:{admin.id}", admin.id, guardian_id)
        return guardian

    async def send_link_as(
        self, org: Organisation, actor: str, created_by: str, guardian_id: str
    ) -> tuple[Guardian, ConsentLink, int]:
        """Send a link on behalf of `actor` (an admin, or the organisation's API key): the same
        rules and audit whoever asks."""
        guardian = await self._people.person(org.id, PersonKind.GUARDIAN, guardian_id)
        if not isinstance(guardian, Guardian):
            raise Refusal(ErrorCode.NOT_FOUND, "No such guardian.")
        if not await self.can_email(org):
            raise Refusal(
                ErrorCode.CONFLICT,
                "No e-mail channel is set up for the organisation (PUT /v1/notification-channels)"
                ": the link could not be sent.",
            )
        if not EMAIL_ADDRESS.match(guardian.contact):
            raise Refusal(
                ErrorCode.BODY_INVALID,
                "This guardian has no e-mail address on the registry: add one first.",
            )
        link, revoked = await self._issue(org, guardian, actor, created_by, {})
        return guardian, link, len(revoked)

    async def _issue(
        self,
        org: Organisation,
        guardian: Guardian,
        actor: str,
        created_by: str,
        extra: Mapping[str, str],
    ) -> tuple[ConsentLink, tuple[str, ...]]:
        """Make the link, queue its e-mail and revoke the guardian's older unused links, in
        one transaction, audited."""
        now = self._clock.now()
        # Whole seconds: the expiry is signed into the token and must read back exactly.
        expires_at = (now + self._lifetime).replace(microsecond=0)
        link_id = new_id()
        token = link_token(self._link_key, org.id, link_id, guardian.id, expires_at)
        link = ConsentLink(
            id=link_id,
            org_id=org.id,
            guardian_id=guardian.id,
            token_hash=token_hash(token),
            created_by=created_by,
            created_at=now,
            expires_at=expires_at,
        )
        message = consent_link(
            org_id=org.id,
            organisation_name=org.name,
            guardian_id=guardian.id,
            link_id=link_id,
            expires_at=expires_at,
            at=now,
            message_id=new_id(),
        )
        event = AuditEvent(
            "consent_link.sent",
            actor,
            org.id,
            person_id=guardian.id,
            data={
                "link": link_id,
                "message": message.id,
                "expires_at": expires_at.isoformat(),
                **extra,
            },
        )

        def revoked(ids: Sequence[str]) -> list[AuditEvent]:
            return [
                AuditEvent(
                    "consent_link.revoked",
                    actor,
                    org.id,
                    person_id=guardian.id,
                    data={"links": list(ids), "replaced_by": link_id},
                )
            ]

        return link, await self._links.add_link(link, message, [event], revoked)

    # a new link on request ----------------------------------------------------------------
    async def request_new_link(self, token: str, cookie: str | None, source: str) -> bool:
        """Send a fresh link to the registry's e-mail address of the guardian this token (or
        this bound browser) belongs to. The caller answers the same whatever happens; True
        when the token or browser was genuine (else the page audits an anonymous refusal)."""
        now = self._clock.now()
        by_source = f"consent-renew:source:{source}"
        wait = await self._limiter.check(
            by_source, RENEWALS_PER_SOURCE, RENEWAL_WINDOW_SECONDS, now
        )
        if wait is not None:
            await self._links.record(
                [AuditEvent("consent_link.renewal_limited", "anonymous", data={"limit": "source"})]
            )
            raise Refusal(ErrorCode.TOO_MANY_ATTEMPTS, TOO_MANY_RENEWALS, retry_after=wait)
        await self._limiter.fail(by_source, RENEWAL_WINDOW_SECONDS, now)
        link: ConsentLink | None = None
        actor = "anonymous"
        if token:
            link_id = token_link_id(token)
            found = await self._links.link(link_id) if link_id else None
            link = found if genuine(found, token, self._link_key) else None
        elif well_formed_secret(cookie):
            assert cookie is not None
            found = await self._links.link_for_device(secret_hash(cookie))
            if found is not None and hmac.compare_digest(
                found.device_hash or "", secret_hash(cookie)
            ):
                link, actor = found, f"guardian:{found.guardian_id}"
        if link is None:
            return False
        outcome = await self._renew(link, actor, now)

        await self._links.record(
            [
                AuditEvent(
                    "consent_link.renewal_requested",
                    actor,
                    link.org_id,
                    person_id=link.guardian_id,
                    data={"link": link.id, "outcome": outcome},
                )
            ]
        )
        return True

    async def _renew(self, link: ConsentLink, actor: str, now: datetime) -> str:
        """What became of one genuine request (audited; never told to the requester)."""
        by_guardian = f"consent-renew:guardian:{link.guardian_id}"
        if await self._limiter.check(
            by_guardian, RENEWALS_PER_GUARDIAN, RENEWAL_WINDOW_SECONDS, now
        ):
            return "limited"
        org = await self._people.organisation(link.org_id)
        guardian = await self._people.person(link.org_id, PersonKind.GUARDIAN, link.guardian_id)
        if org is None or not isinstance(guardian, Guardian):
            return "guardian_gone"
        if not EMAIL_ADDRESS.match(guardian.contact):
            return "no_address"
        if not await self.can_email(org):
            return "no_channel"
        await self._limiter.fail(by_guardian, RENEWAL_WINDOW_SECONDS, now)
        new, _ = await self._issue(org, guardian, actor, guardian.id, {"renews": link.id})
        return f"sent:{new.id}"

    # the guardian opens it ----------------------------------------------------------------
    async def open_link(self, token: str, device_secret: str | None) -> str:
        """Bind the link to this browser (or recognise the browser it is bound to) and return
        the cookie that opens the consent page there. Any link that cannot be used is refused
        with one answer; the audit log keeps the reason."""
        now = self._clock.now()
        link_id = token_link_id(token)
        link = await self._links.link(link_id) if link_id else None
        known = device_secret if well_formed_secret(device_secret) else None
        device_hash = secret_hash(known) if known else None
        fault = link_fault(link, token, self._link_key, device_hash, now)
        if fault is None and link is not None:
            guardian = await self._people.person(link.org_id, PersonKind.GUARDIAN, link.guardian_id)
            if not isinstance(guardian, Guardian):
                fault = LinkFault.GUARDIAN_GONE
        if fault is not None or link is None:
            await self._refuse(link, fault or LinkFault.UNKNOWN)
        assert link is not None
        if link.used_at is not None and known is not None:
            return known  # the browser it is bound to, coming back
        secret = new_secret()
        event = AuditEvent(
            "consent_link.opened",
            f"guardian:{link.guardian_id}",
            link.org_id,
            person_id=link.guardian_id,
            data={"link": link.id},
        )
        if not await self._links.use_link(link, secret_hash(secret), now, [event]):
            await self._refuse(link, LinkFault.USED_ELSEWHERE)  # another browser was first
        return secret

    async def _refuse(self, link: ConsentLink | None, fault: LinkFault) -> None:
        """A token naming no link (malformed, unknown) is an anonymous refusal, audited by the
        page at the project's sampled rate (nobody can grow the log at will); one naming a real
        link is audited here, under its organisation and guardian, with the reason."""
        if link is not None:
            await self._links.record(
                [
                    AuditEvent(
                        "consent_link.refused",
                        "anonymous",
                        link.org_id,
                        person_id=link.guardian_id,
                        data={"reason": fault.value, "link": link.id},
                    )
                ]
            )
        raise refuse_link()

    async def visit(self, cookie: str | None) -> GuardianVisit | None:
        """The guardian whose link this browser holds, while the link lasts; else None."""
        if not well_formed_secret(cookie):
            return None
        assert cookie is not None
        link = await self._links.link_for_device(secret_hash(cookie))
        if link is None or not hmac.compare_digest(link.device_hash or "", secret_hash(cookie)):
            return None
        now = self._clock.now()
        if not may_withdraw(link, now):
            await self._refuse(link, LinkFault.EXPIRED)
        guardian = await self._people.person(link.org_id, PersonKind.GUARDIAN, link.guardian_id)
        organisation = await self._people.organisation(link.org_id)
        if not isinstance(guardian, Guardian) or organisation is None:
            return None
        policy = self._policies.for_path(organisation.policy_path)
        return GuardianVisit(
            link,
            guardian,
            organisation,
            visit_form_token(self._form_key, cookie),
            may_give=may_give(link, now),
            signs_online=EvidenceMethod.E_SIGNATURE.value in policy.consent.accepted_evidence,
        )

    # the guardian's page ------------------------------------------------------------------
    async def children_of(self, visit: GuardianVisit) -> list[ChildConsents]:
        org = visit.organisation
        policy = self._policies.for_path(org.policy_path)
        today = local_date(self._clock.now(), policy)
        children = [
            c
            for c in await self._people.children_of_guardian(org.id, visit.guardian.id)
            if visit.guardian.id in c.guardian_ids
        ]
        result = []
        for child in sorted(children, key=lambda c: c.name.casefold()):
            asked = assent_required(child, policy, today)
            offers = await self._offers(org, policy, child, Signer.GUARDIAN, asked)
            result.append(ChildConsents(child, asked, offers))
        return result

    async def _offers(
        self,
        org: Organisation,
        policy: Policy,
        person: Child | Staff | Guardian,
        signer: Signer,
        asked: bool,
    ) -> tuple[PurposeOffer, ...]:
        kind = person_kind(person)
        _, states, records = await self._consent.state(org, kind, person.id)
        today = local_date(self._clock.now(), policy)
        purposes = [
            p for p in policy.consent_purposes() if signer is not Signer.SELF or p != PARTICIPATION
        ]
        standing = {p: standing_gives(person, records, p, policy, today) for p in purposes}
        signatures = await self._links.signatures(
            org.id, [r.id for gives in standing.values() for r in gives]
        )
        return tuple(
            PurposeOffer(
                purpose=purpose,
                wording=wording(policy, purpose, signer, person.name),
                assent=wording(policy, purpose, Signer.CHILD, person.name) if asked else None,
                state=states[purpose],
                agreed=tuple(Agreed(r, signatures.get(r.id)) for r in standing[purpose]),
            )
            for purpose in purposes
        )

    async def _own_child(self, visit: GuardianVisit, child_id: str) -> Child:
        """A child of this guardian; anything else (another's child, no such child) is one
        refusal."""
        child = await self._people.person(visit.organisation.id, PersonKind.CHILD, child_id)
        if not isinstance(child, Child) or visit.guardian.id not in child.guardian_ids:
            raise Refusal(ErrorCode.NOT_A_GUARDIAN, NOT_YOUR_CHILD)
        return child

    async def guardian_gives(
        self,
        visit: GuardianVisit,
        child_id: str,
        purpose: str,
        signer: Signer,
        typed_name: str,
        shown_sha256: str,
    ) -> ConsentRecord:
        """The guardian's consent, or (from the assent age) the child's own assent, for one
        child and one purpose, signed over the words shown."""
        _check_may_sign(visit)
        org = visit.organisation
        policy = self._policies.for_path(org.policy_path)
        child = await self._own_child(visit, child_id)
        if signer is Signer.CHILD:
            if not assent_required(child, policy, local_date(self._clock.now(), policy)):
                raise Refusal(
                    ErrorCode.BODY_INVALID, "This child's own agreement is not asked at their age."
                )
            given_by_kind, given_by_id = PersonKind.CHILD, child.id
        elif signer is Signer.GUARDIAN:
            given_by_kind, given_by_id = PersonKind.GUARDIAN, visit.guardian.id
        else:
            raise Refusal(ErrorCode.BODY_INVALID, "Choose who is signing.")
        return await self._signed_give(
            org,
            policy,
            visit.actor,
            (PersonKind.CHILD, child),
            purpose,
            signer,
            (given_by_kind, given_by_id),
            typed_name,
            shown_sha256,
            visit.link.id,
        )

    async def guardian_withdraws(
        self, visit: GuardianVisit, child_id: str, purpose: str
    ) -> ConsentRecord:
        """One step, no signature, any purpose: never blocked (R9)."""
        child = await self._own_child(visit, child_id)
        return await self._consent.record(
            visit.organisation,
            visit.actor,
            PersonKind.CHILD,
            child.id,
            purpose[:64],
            ConsentAction.WITHDRAW,
            PersonKind.GUARDIAN,
            visit.guardian.id,
            None,
        )

    # the guardian, for themselves (they may join sessions, and be recorded, too) -----------
    async def guardian_own_offers(self, visit: GuardianVisit) -> tuple[PurposeOffer, ...]:
        policy = self._policies.for_path(visit.organisation.policy_path)
        return await self._offers(visit.organisation, policy, visit.guardian, Signer.SELF, False)

    async def guardian_gives_own(
        self, visit: GuardianVisit, purpose: str, typed_name: str, shown_sha256: str
    ) -> ConsentRecord:
        _check_may_sign(visit)
        org = visit.organisation
        return await self._signed_give(
            org,
            self._policies.for_path(org.policy_path),
            visit.actor,
            (PersonKind.GUARDIAN, visit.guardian),
            purpose,
            Signer.SELF,
            (PersonKind.GUARDIAN, visit.guardian.id),
            typed_name,
            shown_sha256,
            visit.link.id,
        )

    async def guardian_withdraws_own(self, visit: GuardianVisit, purpose: str) -> ConsentRecord:
        return await self._consent.record(
            visit.organisation,
            visit.actor,
            PersonKind.GUARDIAN,
            visit.guardian.id,
            purpose[:64],
            ConsentAction.WITHDRAW,
            PersonKind.GUARDIAN,
            visit.guardian.id,
            None,
        )

    # staff, for themselves ----------------------------------------------------------------
    async def staff_offers(self, org: Organisation, staff: Staff) -> tuple[PurposeOffer, ...]:
        policy = self._policies.for_path(org.policy_path)
        return await self._offers(org, policy, staff, Signer.SELF, False)

    async def staff_gives(
        self, org: Organisation, staff: Staff, purpose: str, typed_name: str, shown_sha256: str
    ) -> ConsentRecord:
        policy = self._policies.for_path(org.policy_path)
        return await self._signed_give(
            org,
            policy,
            f"staff:{staff.id}",
            (PersonKind.STAFF, staff),
            purpose,
            Signer.SELF,
            (PersonKind.STAFF, staff.id),
            typed_name,
            shown_sha256,
            None,
        )

    async def staff_withdraws(self, org: Organisation, staff: Staff, purpose: str) -> ConsentRecord:
        return await self._consent.record(
            org,
            f"staff:{staff.id}",
            PersonKind.STAFF,
            staff.id,
            purpose[:64],
            ConsentAction.WITHDRAW,
            PersonKind.STAFF,
            staff.id,
            None,
        )

    # the signed give ----------------------------------------------------------------------
    async def _signed_give(
        self,
        org: Organisation,
        policy: Policy,
        actor: str,
        subject: tuple[PersonKind, Child | Staff | Guardian],
        purpose: str,
        signer: Signer,
        given_by: tuple[PersonKind, str],
        typed_name: str,
        shown_sha256: str,
        link_id: str | None,
    ) -> ConsentRecord:
        subject_kind, person = subject
        shown = wording(policy, purpose, signer, person.name)
        check_shown(shown, shown_sha256)
        typed = check_typed_name(typed_name)
        now = self._clock.now()
        record_id, signature_id = new_id(), new_id()
        text = shown.text
        signature = ESignature(
            id=signature_id,
            org_id=org.id,
            consent_record_id=record_id,
            signer_kind=given_by[0],
            signer_id=given_by[1],
            typed_name=typed,
            shown_text=text,
            shown_sha256=shown.digest,
            policy_version=policy.version,
            policy_digest=policy.digest,
            signed_at=now,
            link_id=link_id,
        )
        evidence = Evidence(
            EvidenceMethod.E_SIGNATURE, f"e-signature {signature_id}", local_date(now, policy)
        )
        return await self._consent.record(
            org,
            actor,
            subject_kind,
            person.id,
            purpose,
            ConsentAction.GIVE,
            given_by[0],
            given_by[1],
            evidence,
            record_id=record_id,
            signature=signature,
        )


def _check_may_sign(visit: GuardianVisit) -> None:
    if not visit.signs_online:
        raise Refusal(ErrorCode.EVIDENCE_NOT_ACCEPTED, NOT_ONLINE)
    if not visit.may_give:
        raise Refusal(ErrorCode.CONSENT_LINK_INVALID, SIGNING_CLOSED)


def _check_admin(staff: Staff) -> None:
    if StaffRole.ADMIN not in staff.roles:
        raise Refusal(ErrorCode.FORBIDDEN, "Only an admin can send consent links.")
