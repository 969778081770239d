"""The admit / hold / deny decision for a join (R1, R3, R4, R6, R16, R18)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.domain.models import ConsentRecord, Decision, Participant, Person, Presence, Session
from gateway.domain.policy import Policy


@dataclass(frozen=True, slots=True)
class JoinFacts:
    now: datetime
    policy: Policy
    session: Session
    participant: Participant
    person: Person
    consents: Sequence[ConsentRecord]  # the joining person's consent history
    present: Sequence[Presence]  # everyone the live state says is in the session now


def decide_join(facts: JoinFacts) -> Decision:
    raise NotImplementedError
