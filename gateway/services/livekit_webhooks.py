"""LiveKit webhooks: verified, de-duplicated, ordered, then handed on as a HINT.

A webhook never admits anyone and never counts an adult (DESIGN §3, R4): the most it does is
make the session's authority reconcile against LiveKit's own participant list now
(`LiveSessionService.platform_hint`). The decisions are in `domain/livekit_webhooks.py`.

What is audited: each event acted on, under the room's organisation (`livekit.webhook`, ids
only). Webhooks about rooms this gateway does not know, duplicates and malformed events come
from a holder of a valid key but could still be sent at will: they pass the same sampler as
anonymous refusals (one by one up to a rate, then counted per minute). A webhook about another
organisation's room is refused (403), audited the same way by the HTTP layer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from gateway.domain.audit import AuditEvent
from gateway.domain.errors import ErrorCode, Refusal
from gateway.domain.livekit_webhooks import Hint, Outcome, RoomOwner

__all__ = ["LiveKitWebhooks", "WebhookLedger"]

SAMPLED = {
    Outcome.DUPLICATE: "webhook_duplicate",
    Outcome.UNKNOWN_ROOM: "webhook_room_unknown",
    Outcome.MALFORMED: "webhook_malformed",
}


class WebhookLedger(Protocol):
    async def apply(
        self,
        hint: Hint,
        key_serves: Callable[[str], bool],
        events: Callable[[Outcome, RoomOwner | None], list[AuditEvent]],
    ) -> tuple[Outcome, RoomOwner | None]: ...


class Verified(Protocol):
    @property
    def api_key(self) -> str: ...
    @property
    def hint(self) -> Hint: ...


class Verifier(Protocol):
    def verify(self, raw_body: bytes, authorization: str | None) -> Verified: ...


class KeyScope(Protocol):
    def serves(self, api_key: str, org_id: str) -> bool: ...


class Sampled(Protocol):
    """`RequestAudit.refused`: refusals without an organisation, sampled."""

    async def refused(
        self, org_id: str | None, source: str, code: str, method: str, route: str
    ) -> None: ...


class LiveKitWebhooks:
    def __init__(
        self,
        verifier: Verifier,
        keys: KeyScope,
        ledger: WebhookLedger,
        sampled: Sampled,
        hint: Callable[[str], Awaitable[None]],
    ) -> None:
        self._verifier = verifier
        self._keys = keys
        self._ledger = ledger
        self._sampled = sampled
        self._hint = hint

    async def receive(self, raw_body: bytes, authorization: str | None, route: str) -> Outcome:
        """Verify (raw body first), decide, record, and hint the session's authority."""
        verified = self._verifier.verify(raw_body, authorization)
        hint = verified.hint

        def serves(org_id: str) -> bool:
            return self._keys.serves(verified.api_key, org_id)

        def events(outcome: Outcome, owner: RoomOwner | None) -> list[AuditEvent]:
            if owner is None or outcome not in (
                Outcome.RECONCILE,
                Outcome.RECORDED,
                Outcome.STALE,
            ):
                return []
            return [
                AuditEvent(
                    "livekit.webhook",
                    "livekit",
                    owner.org_id,
                    session_id=owner.session_id,
                    data={
                        "event": hint.kind,
                        "event_id": hint.event_id,
                        "outcome": outcome.value,
                        "identity": hint.identity,  # the opaque per-session identity
                        "created_at": hint.created_at,
                    },
                )
            ]

        outcome, owner = await self._ledger.apply(hint, serves, events)
        if outcome is Outcome.OTHER_ORGANISATION:
            raise Refusal(ErrorCode.FORBIDDEN, "This room is not one this key may speak for.")
        if outcome in SAMPLED:
            # Sampled per signing key (never written): a valid key cannot flood the log.
            await self._sampled.refused(
                None, "livekit:" + verified.api_key, SAMPLED[outcome], "POST", route
            )
        if outcome is Outcome.RECONCILE and owner is not None:
            await self._hint(owner.session_id)
        return outcome
