"""Concerns reach the DSL for real (issue 8, point 2), end to end over real HTTP: a child's
concern from the session page's API, a supervision breach and a locked invite leave the gateway
through the outbox to a real SMTP server (aiosmtpd) and a real webhook receiver that checks the
signature; the incident says "DSL told at" only once the DSL's mail was accepted; the host
learns that a concern was raised, not by whom (unless the policy says so); an SMTP server that
is down loses nothing and escalates to the second contact."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.http.incidents_api import INCIDENTS
from tests.http.world import World
from tests.incidents.conftest import alerts_hub
from tests.notifications.conftest import DSL, WEBHOOK_SECRET, Hook
from tests.notifications.receivers import SmtpServer
from tests.plugins.gateway_server import ROOT, Client, Gateway
from tests.staff.conftest import LINK, Browser, email_of, new_browser, serve_gateway, staff_world

DEPUTY = "deputy@example.org"  # the channel's second contact
NOTE = "He asked me for my home address"
TOLD = "Your concern is recorded and the safeguarding lead is being told."


@dataclass
class Desk:
    gateway: Gateway
    world: World
    smtp: SmtpServer
    hook: Hook

    async def seated(self, *names: str) -> dict[str, Client]:
        devices = {}
        for name in names:
            devices[name] = await self.gateway.client()
            answer = await self.world.join(name, devices[name])
            # Admitted or held: a child waiting alone can still report a concern.
            assert answer.status == 200, answer.body
        return devices

    async def concern(self, device: Client, name: str, note: str | None = NOTE) -> Any:
        body: dict[str, Any] = {"token": self.world.invites[name]["token"]}
        if note is not None:
            body["note"] = note
        return await device.post("/v1/live/concern", body)

    async def incident(self, incident_id: str) -> dict[str, Any]:
        answer = await self.world.admin.get(f"/v1/incidents/{incident_id}")
        assert answer.status == 200, answer.body
        return dict(answer.body)

    def hooks(self, kind: str) -> list[dict[str, Any]]:
        return [b for b in self.hook.receiver.accepted.values() if b["type"] == kind]


async def until(check: Callable[[], Awaitable[bool] | bool], timeout: float = 8.0) -> None:
    """Wait for the gateway's own worker (every second, under the leader lease)."""
    for _ in range(int(timeout / 0.1)):
        result = check()
        if result if isinstance(result, bool) else await result:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("not within the time allowed")


def policy_with(tmp_path: Path, host_sees_reporter: bool) -> Path:
    text = (ROOT / "policies" / "default.toml").read_text()
    text, found = re.subn(
        r"(?m)^host_sees_reporter = false$",
        f"host_sees_reporter = {'true' if host_sees_reporter else 'false'}",
        text,
    )
    assert found == 1
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


@pytest.fixture(params=[False], ids=["host_does_not_see_reporter"])
async def desk(
    request: pytest.FixtureRequest,
    database_url: str,
    tmp_path: Path,
    smtp_server: SmtpServer,
    webhook: Hook,
) -> AsyncIterator[Desk]:
    """The HTTP tests' organisation (tutor Tina Tutor, observer, Sam Green...) and a DSL, its
    channels pointing at the real SMTP server and webhook receiver; sign-in links go to the same
    SMTP server."""
    policy = policy_with(tmp_path, bool(request.param))
    async with serve_gateway(database_url, tmp_path, smtp_server.port, policy_path=policy) as gw:
        world = await staff_world(gw)
        channels = {
            "email": {
                "host": "127.0.0.1",
                "port": smtp_server.port,
                "security": "none",
                "from_address": "gateway@example.org",
                "dsl_address": DSL,
                "second_contact_address": DEPUTY,
            },
            "webhook": {"url": webhook.url, "secret": WEBHOOK_SECRET},
        }
        put = await world.admin.call("PUT", "/v1/notification-channels", channels)
        assert put.status == 200, put.body
        yield Desk(gw, world, smtp_server, webhook)


async def signed_in_dsl(desk: Desk) -> Browser:
    browser = await new_browser(desk.gateway)
    start = await browser.get("/staff/sign-in")
    email = email_of("Dee Lead")
    sent = await browser.post("/staff/sign-in/link", {"csrf": start.csrf, "email": email})
    assert sent.status == 200, sent.text
    await until(lambda: bool(desk.smtp.to(email)))
    found = LINK.search(desk.smtp.to(email)[-1].text)
    assert found is not None
    used = await browser.use_link(found.group(1))
    assert used.status == 303, used.text
    return browser


async def test_a_childs_concern_reaches_the_dsl_and_the_incident_says_when(desk: Desk) -> None:
    world, smtp = desk.world, desk.smtp
    dsl_page = await signed_in_dsl(desk)
    devices = await desk.seated("Tina Tutor", "Sam Green")
    smtp.stop()  # the DSL's mail waits: the incident must not say "told" yet
    hub = alerts_hub(desk.gateway.app)
    queue = hub.subscribe(world.session["id"])
    try:
        answer = await desk.concern(devices["Sam Green"], "Sam Green")
        alert = await asyncio.wait_for(queue.get(), timeout=2)
    finally:
        hub.unsubscribe(world.session["id"], queue)
    # The child is told what really happened.
    assert answer.status == 201, answer.body
    assert answer.body["message"] == TOLD
    incident_id = answer.body["incident_id"]
    # The host learns that a concern was raised and the DSL is being told, not by whom.
    assert alert["kind"] == "concern" and alert["incident_id"] == incident_id
    assert alert["dsl"] == "being_told"
    assert "display_name" not in alert and "Sam" not in str(alert) and NOTE not in str(alert)

    # The webhook (another channel) is delivered; the DSL's e-mail is not: "being told".
    await until(lambda: bool(desk.hooks("concern.raised")))
    [hooked] = desk.hooks("concern.raised")
    assert hooked["data"]["incident_id"] == incident_id
    assert "Sam" not in str(hooked) and NOTE not in str(hooked)
    assert desk.hook.receiver.bad_signatures == 0

    async def tried() -> bool:
        pending = await world.admin.get("/v1/notifications?state=pending")
        return any(i["attempts"] >= 1 for i in pending.body["items"])

    await until(tried)
    before = await desk.incident(incident_id)
    assert before["what_gateway_did"] == ["dsl_notification_queued"]
    assert before["dsl_notification"] == {
        "state": "being_told",
        "told_at": None,
        "escalated_at": None,
    }
    page = await dsl_page.get(f"/staff/incidents/{incident_id}")
    assert page.status == 200 and "Being told" in page.text and "DSL told at" not in page.text

    # The mail server comes back; the retry falls due and the DSL's inbox has the concern.
    smtp.start()
    desk.gateway.clock.advance(timedelta(minutes=1))
    delivered_at = desk.gateway.clock.now()
    await until(lambda: bool(smtp.to(DSL)))
    [mail] = smtp.to(DSL)
    assert mail.mail["Subject"] == "Safeguarding concern raised"
    assert incident_id in mail.text and "Sam G." in mail.text  # the DSL may know who asked
    assert NOTE not in mail.text and "Green" not in mail.text
    # The link opens the incident on the DSL's desk, behind their own sign-in.
    link = f"{desk.gateway.base}/staff/incidents/{incident_id}"
    assert link in mail.text
    assert (await dsl_page.get(link)).status == 200
    stranger = await (await new_browser(desk.gateway)).get(link)
    assert stranger.status == 303 and stranger.location == "/staff/sign-in"

    async def told() -> bool:
        return (await desk.incident(incident_id))["dsl_notification"]["state"] == "told"

    await until(told)
    after = await desk.incident(incident_id)
    assert after["dsl_notification"]["told_at"] == delivered_at.isoformat()
    assert after["what_gateway_did"] == ["dsl_notification_queued"]  # frozen, never rewritten
    page = await dsl_page.get(f"/staff/incidents/{incident_id}")
    assert f"DSL told at {delivered_at.strftime('%d %b %Y %H:%M')} UTC" in page.text
    # Told once, whatever else happens.
    desk.gateway.clock.advance(timedelta(hours=1))
    await asyncio.sleep(1.5)
    assert len(smtp.to(DSL)) == 1 and len(desk.hooks("concern.raised")) == 1
    assert not smtp.to(DEPUTY)


@pytest.mark.parametrize("desk", [True], indirect=True, ids=["host_sees_reporter"])
async def test_the_host_sees_who_raised_it_when_the_policy_says_so(desk: Desk) -> None:
    devices = await desk.seated("Tina Tutor", "Sam Green")
    hub = alerts_hub(desk.gateway.app)
    queue = hub.subscribe(desk.world.session["id"])
    try:
        answer = await desk.concern(devices["Sam Green"], "Sam Green", note=None)
        alert = await asyncio.wait_for(queue.get(), timeout=2)
    finally:
        hub.unsubscribe(desk.world.session["id"], queue)
    assert answer.status == 201 and answer.body["message"] == TOLD
    assert alert["display_name"] == "Sam G." and alert["dsl"] == "being_told"
    assert "Green" not in str(alert)
    # More concerns from the same child go to the same incident: the DSL is told once.
    again = [await desk.concern(devices["Sam Green"], "Sam Green") for _ in range(2)]
    assert [a.body["incident_id"] for a in again] == [answer.body["incident_id"]] * 2
    await until(lambda: bool(desk.smtp.to(DSL)))
    desk.gateway.clock.advance(timedelta(minutes=5))
    await asyncio.sleep(1.5)
    assert len(desk.smtp.to(DSL)) == 1 and len(desk.hooks("concern.raised")) == 1


async def test_a_supervision_breach_reaches_the_dsl(desk: Desk) -> None:
    """As the live service records it (gateway/app.py wires `live.record_incident` to it)."""
    world = desk.world
    breach = await desk.gateway.app[INCIDENTS].record_system_incident(
        world.org_id,
        world.session["id"],
        "supervision_breach",
        "Fewer vetted adults than the policy requires; children held.",
        ["held_children", "alerted_host", "alerted_dsl"],
    )
    assert breach.what_gateway_did == ("held_children", "alerted_host", "dsl_notification_queued")
    await until(lambda: bool(desk.smtp.to(DSL)) and bool(desk.hooks("supervision.breach")))
    [mail] = desk.smtp.to(DSL)
    assert mail.mail["Subject"] == "Supervision breach in a live session"
    assert breach.id in mail.text and world.session["id"] in mail.text
    [hooked] = desk.hooks("supervision.breach")
    assert hooked["data"]["incident_id"] == breach.id

    async def told() -> bool:
        return (await desk.incident(breach.id))["dsl_notification"]["state"] == "told"

    await until(told)


async def test_a_locked_invite_reaches_the_host_and_the_dsl_once(desk: Desk) -> None:
    world, smtp = desk.world, desk.smtp
    sam = await desk.gateway.client()
    answers = [await world.join("Sam Green", sam, password="guess-guess") for _ in range(8)]
    assert [a.status for a in answers[:4]] == [401] * 4
    assert all(a.status == 429 for a in answers[4:])
    host = email_of("Tina Tutor")
    await until(lambda: bool(smtp.to(host)) and bool(smtp.to(DSL)))
    # Later attempts and later rounds of the worker send nothing more.
    await world.join("Sam Green", sam, password="guess-guess")
    desk.gateway.clock.advance(timedelta(minutes=5))
    await asyncio.sleep(1.5)
    [to_host] = smtp.to(host)
    [to_dsl] = smtp.to(DSL)
    subject = "Invite locked after wrong passwords"
    assert to_host.mail["Subject"] == to_dsl.mail["Subject"] == subject
    assert world.session["id"] in to_host.text and "Sam G." in to_host.text
    assert "Green" not in to_host.text and "guess-guess" not in to_host.text
    assert len(desk.hooks("invite.locked")) == 1
    # Queued with the lock's audit entry: one lock, one of each.
    locked = await world.admin.get("/v1/audit?kind=invite.locked")
    assert len(locked.body["items"]) == 1


async def test_the_smtp_server_down_for_an_hour_loses_nothing_and_escalates(desk: Desk) -> None:
    world, smtp = desk.world, desk.smtp
    devices = await desk.seated("Sam Green")
    smtp.stop()
    answer = await desk.concern(devices["Sam Green"], "Sam Green")
    assert answer.status == 201 and answer.body["message"] == TOLD
    incident_id = answer.body["incident_id"]
    # Past the policy's 30 minutes the DSL's message is escalated to the second contact.
    for _ in range(4):
        desk.gateway.clock.advance(timedelta(minutes=10))
        await asyncio.sleep(1.2)

    async def escalated() -> bool:
        notice = (await desk.incident(incident_id))["dsl_notification"]
        return notice["escalated_at"] is not None

    await until(escalated)
    waiting = (await desk.incident(incident_id))["dsl_notification"]
    assert waiting["state"] == "being_told" and waiting["told_at"] is None
    audit = await world.admin.get("/v1/audit?kind=notification.escalated")
    assert len(audit.body["items"]) == 1
    # An hour on, the server is back: the DSL and the second contact both get it, once.
    desk.gateway.clock.advance(timedelta(minutes=30))
    smtp.start()
    desk.gateway.clock.advance(timedelta(minutes=16))  # past the longest backoff
    await until(lambda: bool(smtp.to(DSL)) and bool(smtp.to(DEPUTY)))
    [deputy] = smtp.to(DEPUTY)
    assert deputy.mail["Subject"] == "Escalated: Safeguarding concern raised"
    assert incident_id in deputy.text
    assert len(smtp.to(DSL)) == 1

    async def told() -> bool:
        return (await desk.incident(incident_id))["dsl_notification"]["state"] == "told"

    await until(told)
