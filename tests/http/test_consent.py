"""Written consent over real HTTP (R6, R7, R9): giving with evidence, the child's own assent
from age 12, who may speak for whom, withdrawal at once, and an append-only history."""

from __future__ import annotations

from typing import Any

from tests.http.world import EVIDENCE, World
from tests.plugins.gateway_server import Answer, Client, Gateway


async def _world(gateway: Gateway) -> World:
    org_id, key = await gateway.organisation()
    return World(gateway, await gateway.client(key), org_id)


async def _refused(admin: Client, code: str) -> int:
    answer = await admin.get("/v1/audit?kind=request.refused&limit=500")
    assert answer.status == 200, answer.body
    return sum(1 for e in answer.body["items"] if e["data"]["code"] == code)


async def _state(world: World, child: str) -> dict[str, Any]:
    answer = await world.admin.get(f"/v1/children/{world.ids[child]}/consent")
    assert answer.status == 200, answer.body
    return dict(answer.body)


def _consent(world: World, subject: str, by: str, by_kind: str, **changes: Any) -> dict[str, Any]:
    return {
        "subject_kind": "child",
        "subject_id": world.ids[subject],
        "purpose": "participation",
        "action": "give",
        "given_by_kind": by_kind,
        "given_by_id": world.ids[by],
        "evidence": EVIDENCE,
        **changes,
    }


async def test_guardian_consent_with_evidence_is_valid_and_withdrawal_takes_effect_at_once(
    gateway: Gateway,
) -> None:
    world = await _world(gateway)
    await world.guardian("Gail Green")
    await world.child("Sam Green", "2016-04-02", "Gail Green", consent=False)  # aged 10
    before = (await _state(world, "Sam Green"))["purposes"]["participation"]
    assert before["valid"] is False
    assert before["reasons"] == ["no_guardian_consent"]
    assert before["assent_required"] is False

    given = await world.admin.post(
        "/v1/consents", _consent(world, "Sam Green", "Gail Green", "guardian")
    )
    assert given.status == 201, given.body
    assert given.body["action"] == "give"
    assert given.body["evidence"] == EVIDENCE
    state = await _state(world, "Sam Green")
    assert state["purposes"]["participation"] == {
        "valid": True,
        "reasons": ["guardian_consent"],
        "record_ids": [given.body["id"]],
        "assent_required": False,
    }
    # Consent is per purpose: participation does not let anyone record the child.
    assert state["purposes"]["recording:lesson_review"]["valid"] is False

    # Withdrawal needs no evidence and counts straight away (same instant as the give).
    withdrawn = await world.admin.post(
        "/v1/consents",
        _consent(world, "Sam Green", "Gail Green", "guardian", action="withdraw", evidence=None),
    )
    assert withdrawn.status == 201, withdrawn.body
    state = await _state(world, "Sam Green")
    participation = state["purposes"]["participation"]
    assert participation["valid"] is False
    assert "withdrawn" in participation["reasons"]
    assert participation["record_ids"] == [withdrawn.body["id"]]

    # History is append-only: both records remain, oldest first; a new give adds a third.
    again = await world.admin.post(
        "/v1/consents", _consent(world, "Sam Green", "Gail Green", "guardian")
    )
    assert again.status == 201, again.body
    state = await _state(world, "Sam Green")
    ids = [given.body["id"], withdrawn.body["id"], again.body["id"]]
    assert [r["id"] for r in state["history"]] == ids
    assert [r["action"] for r in state["history"]] == ["give", "withdraw", "give"]
    assert state["history"][1]["evidence"] is None
    assert state["purposes"]["participation"]["valid"] is True
    assert state["purposes"]["participation"]["record_ids"] == [again.body["id"]]
    # ... and each change is in the audit log, filed under the child.
    audit = await world.admin.get(f"/v1/audit?person_id={world.ids['Sam Green']}")
    kinds = [e["kind"] for e in audit.body["items"]]
    assert kinds == ["child.registered", "consent.given", "consent.withdrawn", "consent.given"]


async def test_child_of_twelve_or_more_must_give_their_own_assent(gateway: Gateway) -> None:
    world = await _world(gateway)
    await world.guardian("Gail Green")
    # Today is 2026-11-23: Ava turns 12 today, Ben turns 12 tomorrow.
    await world.child("Ava Green", "2014-11-23", "Gail Green")
    await world.child("Ben Green", "2014-11-24", "Gail Green")

    ben = (await _state(world, "Ben Green"))["purposes"]["participation"]
    assert ben["valid"] is True and ben["assent_required"] is False

    ava = (await _state(world, "Ava Green"))["purposes"]["participation"]
    assert ava["valid"] is False
    assert ava["assent_required"] is True
    assert ava["reasons"] == ["guardian_consent", "no_child_assent"]

    guardian_record = (await _state(world, "Ava Green"))["history"][0]["id"]
    assent = await world.admin.post(
        "/v1/consents", _consent(world, "Ava Green", "Ava Green", "child")
    )
    assert assent.status == 201, assent.body
    ava = (await _state(world, "Ava Green"))["purposes"]["participation"]
    assert ava == {
        "valid": True,
        "reasons": ["guardian_consent", "child_assent"],
        "record_ids": [guardian_record, assent.body["id"]],
        "assent_required": True,
    }

    # Her own withdrawal is enough to stop her taking part.
    no = await world.admin.post(
        "/v1/consents",
        _consent(world, "Ava Green", "Ava Green", "child", action="withdraw", evidence=None),
    )
    assert no.status == 201, no.body
    assert (await _state(world, "Ava Green"))["purposes"]["participation"]["valid"] is False


async def test_consent_from_the_wrong_person_or_without_evidence_is_refused(
    gateway: Gateway,
) -> None:
    world = await _world(gateway)
    await world.guardian("Gail Green")
    await world.guardian("Harry Hill")  # registered, but not Sam's guardian
    await world.staff("Tina Tutor", ["tutor"])
    await world.child("Sam Green", "2016-04-02", "Gail Green", consent=False)
    await world.guardian("Stan Stranger")

    cases: list[tuple[dict[str, Any], int, str]] = [
        (_consent(world, "Sam Green", "Harry Hill", "guardian"), 422, "not_a_guardian"),
        (
            _consent(
                world, "Sam Green", "Harry Hill", "guardian", action="withdraw", evidence=None
            ),
            422,
            "not_a_guardian",
        ),
        (_consent(world, "Sam Green", "Tina Tutor", "staff"), 422, "consent_giver_not_allowed"),
        (
            _consent(world, "Sam Green", "Gail Green", "guardian", purpose="marketing"),
            422,
            "purpose_unknown",
        ),
        (
            _consent(world, "Sam Green", "Gail Green", "guardian", evidence=None),
            422,
            "evidence_not_accepted",
        ),
        (  # a method the policy does not accept
            _consent(
                world,
                "Sam Green",
                "Gail Green",
                "guardian",
                evidence={**EVIDENCE, "method": "written_email"},
            ),
            422,
            "evidence_not_accepted",
        ),
        (  # evidence dated after today
            _consent(
                world,
                "Sam Green",
                "Gail Green",
                "guardian",
                evidence={**EVIDENCE, "dated": "2026-11-24"},
            ),
            422,
            "evidence_not_accepted",
        ),
        (  # the subject must exist in this organisation
            {
                **_consent(world, "Sam Green", "Gail Green", "guardian"),
                "subject_id": world.ids["Stan Stranger"],
            },
            404,
            "not_found",
        ),
    ]
    for body, status, code in cases:
        before = await _refused(world.admin, code)
        answer: Answer = await world.admin.post("/v1/consents", body)
        assert (answer.status, answer.code) == (status, code), (body, answer.body)
        assert "marketing" not in str(answer.body)
        assert world.ids["Harry Hill"] not in str(answer.body)
        assert await _refused(world.admin, code) == before + 1

    state = await _state(world, "Sam Green")
    assert state["history"] == []
    assert state["purposes"]["participation"]["valid"] is False
    audit = await world.admin.get("/v1/audit?kind=consent.given")
    assert audit.body["items"] == []
