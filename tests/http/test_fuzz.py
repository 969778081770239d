"""Schema-driven fuzzing of the JSON API (schemathesis): whatever is sent, nothing answers 5xx,
and every answer follows the response schema the document gives.

The gateway runs on loopback with a real database; schemathesis reads `/v1/openapi.json` and
sends, for every operation, requests that follow the document (positive) and requests that
break it (negative), with the organisation's API key so authenticated routes are reached. Path
ids are random or, half the time, those of a real organisation's people, session and invite,
so handlers get past "not found". The run is reproducible: fixed seed, bounded examples.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.http.world import build_world
from tests.plugins.gateway_server import Gateway

SEED = 20261123
# Per operation and mode (~30 operations x 2 modes): well under a minute. A deeper local run:
# GATEWAY_FUZZ_EXAMPLES=200 .venv/bin/python -m pytest tests/http/test_fuzz.py
EXAMPLES = int(os.environ.get("GATEWAY_FUZZ_EXAMPLES", "10"))


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """PostgreSQL: the production shape, and the stricter one (it refuses NUL in text)."""
    return postgres_url


def _real_body_ids(world: Any) -> dict[str, Any]:
    """Body fields that name something, with a real value: half the cases get them, so the
    rules behind "no such person" are reached too."""
    return {
        "host_staff_id": world.ids["Tina Tutor"],
        "subject_id": world.ids["Sam Green"],
        "given_by_id": world.ids["Gail Green"],
        "guardian_ids": [world.ids["Gail Green"]],
        "person_id": world.ids["Ada Hill"],
        "staff_id": world.ids["Oscar Observer"],
    }


def _real_ids(world: Any) -> dict[str, dict[str, str]]:
    """For each path prefix, the ids of things that exist in the organisation."""
    invite = world.invites["Sam Green"]
    return {
        "/v1/staff/": {"id": world.ids["Tina Tutor"]},
        "/v1/guardians/": {"id": world.ids["Gail Green"]},
        "/v1/children/": {"id": world.ids["Sam Green"]},
        "/v1/sessions/": {"id": world.session["id"], "participant": invite["participant_id"]},
        "/v1/invites/": {"id": invite["id"]},
    }


@dataclass
class Findings:
    failures: list[str] = field(default_factory=list)  # one line per server error
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    sent: int = 0


def _fuzz(
    base: str, key: str, real: dict[str, dict[str, str]], body_ids: dict[str, Any]
) -> Findings:
    """Runs in a worker thread (schemathesis is synchronous) while the gateway serves on the
    test's event loop."""
    schema = schemathesis.openapi.from_url(base + "/v1/openapi.json")
    found = Findings()
    http = requests.Session()
    headers = {"Authorization": f"Bearer {key}"}
    for result in schema.get_all_operations():
        operation = result.ok()
        known = next((ids for prefix, ids in real.items() if operation.path.startswith(prefix)), {})
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            cases = operation.as_strategy(generation_mode=mode)
            if known:
                cases = st.one_of(
                    cases,
                    operation.as_strategy(generation_mode=mode, path_parameters=known),
                )
            positive = mode is GenerationMode.POSITIVE
            _run(
                cases,
                lambda case, p=positive: _send(case, base, http, headers, found, body_ids, p),
            )
    http.close()
    return found


def _run(cases: st.SearchStrategy[Any], send: Callable[[Any], None]) -> None:
    @seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def each(case: Any) -> None:
        send(case)

    each()


def _send(
    case: Any,
    base: str,
    http: requests.Session,
    headers: dict[str, str],
    found: Findings,
    body_ids: dict[str, Any],
    positive: bool,
) -> None:
    found.sent += 1
    if found.sent % 2 and isinstance(case.body, dict):
        case.body = {name: body_ids.get(name, value) for name, value in case.body.items()}
    response = case.call(base_url=base, session=http, headers=headers, timeout=30)
    found.statuses[f"{case.method} {case.path}"][response.status_code] += 1
    sent = json.dumps(case.body, default=str)[:300] if case.body is not None else ""
    if response.status_code >= 500:
        body = response.text[:300]
        found.failures.append(
            f"{case.method} {case.formatted_path} query={case.query} body={sent} "
            f"-> {response.status_code} {body}"
        )
    # A request that follows the document is never refused for its shape: only for a rule
    # (422 with a code), a missing thing (404) or the like.
    code = _code(response) if response.status_code in (400, 415) else None
    operation = f"{case.method} {case.path}"
    if positive and code in SHAPE_REFUSALS and operation not in SHAPE_NOT_YET_STATED:
        found.failures.append(
            f"{case.method} {case.formatted_path} query={case.query} body={sent} "
            f"follows the document, yet -> {response.status_code} {response.text[:300]}"
        )
    # Every answer, success or refusal, has the shape the document promises (response schemas
    # are built from the models the views render through).
    try:
        case.validate_response(response, checks=[response_schema_conformance])
    except FailureGroup as exc:
        found.failures.append(
            f"{case.method} {case.formatted_path} query={case.query} body={sent} "
            f"-> {response.status_code} does not follow the document: "
            + "; ".join(str(e)[:300] for e in exc.exceptions)
        )


SHAPE_REFUSALS = {
    "body_invalid",
    "body_invalid_json",
    "body_unknown_field",
    "query_invalid",
    "unsupported_media_type",
}


# Owned by the notifications module: its addresses and URL are checked beyond what its body
# schema states yet (an e-mail address, an https URL).
SHAPE_NOT_YET_STATED = {"PUT /v1/notification-channels"}


def _code(response: requests.Response) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


@pytest.mark.slow
async def test_no_input_makes_the_server_fail(gateway: Gateway) -> None:
    world = await build_world(gateway)
    found = await asyncio.to_thread(
        _fuzz, gateway.base, world.admin.key or "", _real_ids(world), _real_body_ids(world)
    )
    assert found.failures == [], "\n".join(found.failures)
    # The run reached the handlers: every operation answered something other than "no key",
    # and valid requests were taken.
    assert len(found.statuses) >= 25
    for operation, statuses in found.statuses.items():
        assert set(statuses) - {401}, operation
    assert sum(n for s in found.statuses.values() for code, n in s.items() if code < 300) > 30
