"""Recording runs in SQL (SQLite and PostgreSQL): at most one running per session, whatever
races; a stopped run frees the session; a child's answer on the day, latest wins."""

from __future__ import annotations

import asyncio

import pytest

from gateway.adapters.sql.recording_runs import SqlRecordingRuns
from gateway.domain.errors import ErrorCode, Refusal
from tests.recordings.conftest import ORG, World

SESSION = "5" * 32


async def test_two_runs_opened_at_once_leave_exactly_one(world: World) -> None:
    runs = SqlRecordingRuns(world.store.writer, world.database)
    opened = await asyncio.gather(
        *(
            runs.open(f"{i:032x}", ORG.id, SESSION, "lesson_review", "host", [])
            for i in range(1, 6)
        ),
        return_exceptions=True,
    )
    refused = [r for r in opened if isinstance(r, Refusal)]
    assert len(refused) == 4 and all(r.code is ErrorCode.CONFLICT for r in refused)
    running = await runs.running_id(SESSION)
    assert running is not None
    assert await runs.close(running, "stopped", []) is True
    assert await runs.close(running, "stopped", []) is False  # idempotent
    assert await runs.running_id(SESSION) is None
    await runs.open("f" * 32, ORG.id, SESSION, "lesson_review", "host", [])  # free again
    with pytest.raises(Refusal):
        await runs.open("e" * 32, ORG.id, SESSION, "lesson_review", "host", [])


async def test_the_latest_answer_of_the_day_counts(world: World) -> None:
    runs = SqlRecordingRuns(world.store.writer, world.database)
    await runs.set_day_answer(ORG.id, SESSION, "p1", "yes", [])
    await runs.set_day_answer(ORG.id, SESSION, "p2", "yes", [])
    await runs.set_day_answer(ORG.id, SESSION, "p1", "no", [])
    assert await runs.day_answers(SESSION) == {"p1": "no", "p2": "yes"}
    assert await runs.day_answers("6" * 32) == {}
