"""Live state kept in this process: the embedded default (no Redis)."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.domain.models import Presence


class InProcessLiveState:
    def __init__(self) -> None:
        self._sessions: dict[str, dict[str, Presence]] = {}

    async def present(self, session_id: str) -> Sequence[Presence]:
        return list(self._sessions.get(session_id, {}).values())

    async def enter(self, session_id: str, presence: Presence) -> None:
        self._sessions.setdefault(session_id, {})[presence.participant_id] = presence

    async def leave(self, session_id: str, participant_id: str) -> None:
        present = self._sessions.get(session_id)
        if present is not None:
            present.pop(participant_id, None)
            if not present:
                del self._sessions[session_id]
