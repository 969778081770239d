"""The guardian's page reads the guardian's own children straight from the registry
(`children_of_guardian`), never the whole organisation's list: a child shared by two guardians
is on both pages, with both guardians; nobody else's child is on either."""

from __future__ import annotations

from tests.consent_online.conftest import PAT, QUINN, family, forms, open_link
from tests.plugins.gateway_server import Gateway
from tests.staff.conftest import Mailbox, new_browser


async def test_each_guardian_sees_exactly_their_own_children(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    fam = await family(staff_gateway, mailbox)
    ids = fam.world.ids
    await fam.guardian("Quinn Quill", QUINN)
    shared = await fam.world.admin.post(
        "/v1/children",
        {
            "name": "Ros Quill",
            "date_of_birth": "2015-03-03",
            "guardian_ids": [ids["Pat Parker"], ids["Quinn Quill"]],
        },
    )
    assert shared.status == 201, shared.body
    ros = str(shared.body["id"])
    for n in range(20):  # other families' children in the organisation
        await fam.world.child(f"Other Child {chr(65 + n)}", "2014-01-01", "Quinn Quill", False)

    store = staff_gateway.services.store
    pats = await store.children_of_guardian(fam.world.org_id, ids["Pat Parker"])
    assert {c.id for c in pats} == {ids["Kim Parker"], ids["Lee Parker"], ros}
    [ros_child] = [c for c in pats if c.id == ros]
    assert ros_child.guardian_ids == frozenset({ids["Pat Parker"], ids["Quinn Quill"]})
    assert await store.children_of_guardian("0" * 32, ids["Pat Parker"]) == []

    pat = await new_browser(staff_gateway)
    assert (await open_link(pat, await fam.send_link("Pat Parker", PAT))).status == 303
    page = await pat.get("/consent")
    assert {f["child"] for f in forms(page, "/consent/give")} == {
        ids["Kim Parker"],
        ids["Lee Parker"],
        ros,
    }
    assert "Other Child" not in page.text
