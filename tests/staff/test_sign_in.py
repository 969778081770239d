"""Staff sign in to the pages by e-mail link or password (R5, R13): real HTTP on loopback, a
real SMTP server, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from gateway.domain.staff_session import PRE_COOKIE, SESSION_COOKIE, secret_hash
from tests.plugins.gateway_server import Gateway
from tests.plugins.servers import free_port
from tests.staff.conftest import (
    Browser,
    Mailbox,
    audited,
    email_of,
    new_browser,
    serve_gateway,
    staff_world,
)

PASSWORD = "correct horse battery staple"


async def _audit_kinds(gateway: Gateway, kind: str) -> list[dict[str, object]]:
    return [dict(entry.data or {}) for entry in await audited(gateway, kind)]


async def _set_password(browser: Browser, mailbox: Mailbox, email: str) -> None:
    used = await browser.sign_in_with_link(mailbox, email)
    assert used.status == 303 and used.location == "/staff/password"
    form = await browser.get("/staff/password")
    done = await browser.post(
        "/staff/password", {"csrf": form.csrf, "password": PASSWORD, "confirmation": PASSWORD}
    )
    assert done.status == 200 and "Your password is set" in done.text


async def test_a_dsl_signs_in_by_link_and_sees_who_they_are(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    world = await staff_world(staff_gateway)
    browser = await new_browser(staff_gateway)
    used = await browser.sign_in_with_link(mailbox, email_of("Dee Lead"))
    assert used.status == 303
    assert used.location == "/staff/password"  # no password yet: offered to set one
    home = await browser.get("/staff")
    assert home.status == 200
    assert "Dee Lead" in home.text and "Designated safeguarding lead" in home.text
    assert "Incidents" in home.text
    # Only the SHA-256 of the cookie is stored.
    cookie = browser.cookie(SESSION_COOKIE)
    assert cookie is not None
    store = staff_gateway.services.store

    def stored(conn: object) -> list[str]:
        return [row[0] for row in conn.execute(text("SELECT id_hash FROM staff_sessions"))]  # type: ignore[attr-defined]

    assert await store._db.read(stored) == [secret_hash(cookie)]
    message = mailbox.messages[-1]
    assert message["To"] == email_of("Dee Lead")
    assert world.org_id not in str(message)
    assert [e["method"] for e in await _audit_kinds(staff_gateway, "staff.signed_in")] == ["link"]


async def test_a_password_is_set_from_a_link_then_signs_in(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    await staff_world(staff_gateway)
    first = await new_browser(staff_gateway)
    await _set_password(first, mailbox, email_of("Dee Lead"))
    other = await new_browser(staff_gateway)
    signed = await other.sign_in_with_password(email_of("Dee Lead").upper(), PASSWORD)
    assert signed.status == 303 and signed.location == "/staff"
    home = await other.get("/staff")
    assert home.status == 200 and "Dee Lead" in home.text
    # A password session cannot set a new password (that needs the mailbox again).
    page = await other.get("/staff/password")
    refused = await other.post(
        "/staff/password", {"csrf": page.csrf, "password": "x" * 20, "confirmation": "x" * 20}
    )
    assert refused.status == 403


async def test_the_session_cookie_is_httponly_strict_and_path_root(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    await staff_world(staff_gateway)
    browser = await new_browser(staff_gateway)
    used = await browser.sign_in_with_link(mailbox, email_of("Dee Lead"))
    header = next(v for v in used.headers.getall("Set-Cookie") if v.startswith(SESSION_COOKIE))
    attributes = [part.strip().lower() for part in header.split(";")]
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "path=/" in attributes
    assert "secure" not in attributes  # served over http:// in this test
    pre = [v for v in used.headers.getall("Set-Cookie", []) if v.startswith(PRE_COOKIE)]
    assert pre == []  # the pre-sign-in cookie was set by the sign-in page, not here


async def test_unknown_addresses_get_the_same_answer_and_no_mail(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    await staff_world(staff_gateway)
    browser = await new_browser(staff_gateway)
    start = await browser.get("/staff/sign-in")
    known = await browser.post(
        "/staff/sign-in/link", {"csrf": start.csrf, "email": email_of("Dee Lead")}
    )
    await mailbox.link_for(email_of("Dee Lead"))
    count = len(mailbox.messages)
    unknown = await browser.post(
        "/staff/sign-in/link", {"csrf": start.csrf, "email": "nobody@example.org"}
    )
    assert known.status == unknown.status == 200
    assert known.text == unknown.text
    assert len(mailbox.messages) == count
    wrong = await browser.sign_in_with_password("nobody@example.org", PASSWORD)
    no_password = await browser.sign_in_with_password(email_of("Dee Lead"), PASSWORD)
    assert wrong.status == no_password.status == 401
    assert _message(wrong.text) == _message(no_password.text)


def _message(page: str) -> str:
    return page.split('role="alert"', 1)[1].split("</p>", 1)[0]


async def test_forged_replayed_expired_and_other_browser_links_are_refused_alike(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    await staff_world(staff_gateway)
    email = email_of("Dee Lead")
    browser = await new_browser(staff_gateway)
    answers = []
    # forged
    answers.append(await browser.post("/staff/sign-in/link/use", {"token": "A" * 43}))
    # replayed
    start = await browser.get("/staff/sign-in")
    await browser.post("/staff/sign-in/link", {"csrf": start.csrf, "email": email})
    link = await mailbox.link_for(email)
    assert (await browser.use_link(link)).status == 303
    other_tab = await new_browser(staff_gateway)
    other_tab.set_cookie(PRE_COOKIE, browser.cookie(PRE_COOKIE) or "")
    answers.append(await other_tab.use_link(link))
    # another browser (the link was asked for by `asker`)
    asker = await new_browser(staff_gateway)
    start = await asker.get("/staff/sign-in")
    await asker.post("/staff/sign-in/link", {"csrf": start.csrf, "email": email})
    stolen = await mailbox.link_for(email)
    thief = await new_browser(staff_gateway)
    await thief.get("/staff/sign-in")
    answers.append(await thief.use_link(stolen))
    # expired
    start = await asker.get("/staff/sign-in")
    await asker.post("/staff/sign-in/link", {"csrf": start.csrf, "email": email})
    late = await mailbox.link_for(email)
    assert late != stolen
    staff_gateway.clock.advance(timedelta(minutes=15, seconds=1))
    answers.append(await asker.use_link(late))

    assert [a.status for a in answers] == [400, 400, 400, 400]
    assert len({_message(a.text) for a in answers}) == 1
    assert all(a.location is None for a in answers)
    assert thief.cookie(SESSION_COOKIE) is None and asker.cookie(SESSION_COOKIE) is None
    reasons = [e["reason"] for e in await _audit_kinds(staff_gateway, "staff.signin_link_refused")]
    assert sorted(reasons) == sorted(["unknown", "used", "other_browser", "expired"])


async def test_wrong_passwords_lock_the_account_and_slow_the_source(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    world = await staff_world(staff_gateway)
    await world.staff("Adam Admin", ["admin"])
    setter = await new_browser(staff_gateway)
    await _set_password(setter, mailbox, email_of("Dee Lead"))
    guesser = await new_browser(staff_gateway)
    statuses = [
        (await guesser.sign_in_with_password(email_of("Dee Lead"), f"guess {n}")).status
        for n in range(5)
    ]
    assert statuses == [401] * 5
    # Locked: the right password does not help, from any browser, until the window closes.
    owner = await new_browser(staff_gateway)
    locked = await owner.sign_in_with_password(email_of("Dee Lead"), PASSWORD)
    assert locked.status == 429 and int(locked.headers["Retry-After"]) > 0
    # The source keeps guessing other accounts and is slowed too.
    for n in range(15):
        await guesser.sign_in_with_password(f"someone{n}@example.org", "guess")
    slowed = await guesser.sign_in_with_password(email_of("Adam Admin"), "guess")
    assert slowed.status == 429
    assert await _audit_kinds(staff_gateway, "staff.signin_limited")
    staff_gateway.clock.advance(timedelta(minutes=16))
    fresh = await new_browser(staff_gateway)
    assert (await fresh.sign_in_with_password(email_of("Dee Lead"), PASSWORD)).status == 303


async def test_link_requests_are_rate_limited_per_account(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    await staff_world(staff_gateway)
    browser = await new_browser(staff_gateway)
    start = await browser.get("/staff/sign-in")
    statuses = []
    for _ in range(4):
        answer = await browser.post(
            "/staff/sign-in/link", {"csrf": start.csrf, "email": email_of("Dee Lead")}
        )
        statuses.append(answer.status)
    assert statuses == [200, 200, 200, 429]
    await mailbox.link_for(email_of("Dee Lead"))
    assert len(mailbox.messages) == 3


async def test_over_https_the_session_cookie_is_secure(
    database_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    port = free_port()
    public = f"https://127.0.0.1:{port}"  # as a TLS-terminating proxy in front would say
    async with serve_gateway(database_url, tmp_path, mailbox.port, public_url=public) as gateway:
        await staff_world(gateway)
        browser = await new_browser(gateway)
        start = await browser.get("/staff/sign-in")
        pre_header = start.headers["Set-Cookie"]
        assert "secure" in [p.strip().lower() for p in pre_header.split(";")]
        pre = pre_header.split(";", 1)[0].split("=", 1)[1]
        browser.set_cookie(PRE_COOKIE, pre)  # the test client keeps no Secure cookie on http
        plain = await browser.post(
            "/staff/sign-in/link", {"csrf": start.csrf, "email": email_of("Dee Lead")}
        )
        assert plain.status == 403  # the page's origin is https: an http origin is another
        sent = await browser.post(
            "/staff/sign-in/link",
            {"csrf": start.csrf, "email": email_of("Dee Lead")},
            origin=public,
        )
        assert sent.status == 200
        link = await mailbox.link_for(email_of("Dee Lead"))
        assert link.startswith(public + "/staff/sign-in/link?token=")
        token = link.rsplit("=", 1)[1]
        used = await browser.post("/staff/sign-in/link/use", {"token": token}, origin=public)
        assert used.status == 303
        header = next(v for v in used.headers.getall("Set-Cookie") if v.startswith(SESSION_COOKIE))
        attributes = [part.strip().lower() for part in header.split(";")]
        assert {"secure", "httponly", "samesite=strict", "path=/"} <= set(attributes)


async def test_a_mail_server_that_is_down_is_a_503_not_a_silent_success(
    database_url: str, tmp_path: Path
) -> None:
    closed_port = free_port()  # nothing listens there
    async with serve_gateway(database_url, tmp_path, closed_port) as gateway:
        await staff_world(gateway)
        browser = await new_browser(gateway)
        start = await browser.get("/staff/sign-in")
        answer = await browser.post(
            "/staff/sign-in/link", {"csrf": start.csrf, "email": email_of("Dee Lead")}
        )
        assert answer.status == 503 and int(answer.headers["Retry-After"]) > 0
        assert "could not be sent" in answer.text


async def test_a_link_used_twice_at_once_signs_in_once(
    staff_gateway: Gateway, mailbox: Mailbox
) -> None:
    await staff_world(staff_gateway)
    browser = await new_browser(staff_gateway)
    start = await browser.get("/staff/sign-in")
    await browser.post("/staff/sign-in/link", {"csrf": start.csrf, "email": email_of("Dee Lead")})
    token = (await mailbox.link_for(email_of("Dee Lead"))).rsplit("=", 1)[1]
    answers = await asyncio.gather(
        *(browser.post("/staff/sign-in/link/use", {"token": token}) for _ in range(4))
    )
    assert sorted(a.status for a in answers) == [303, 400, 400, 400]
    assert len(await audited(staff_gateway, "staff.signed_in")) == 1
    assert (await staff_gateway.services.store.verify_audit()).intact


async def test_two_gateways_sharing_redis_lock_the_account_together(
    sqlite_url: str, tmp_path: Path, mailbox: Mailbox, redis_url: str
) -> None:
    """Attempt limits live in Redis when it is set: guessing on one process counts on all."""
    async with (
        serve_gateway(sqlite_url, tmp_path, mailbox.port, redis_url=redis_url) as first,
        serve_gateway(sqlite_url, tmp_path, mailbox.port, redis_url=redis_url) as second,
    ):
        await staff_world(first)
        setter = await new_browser(first)
        await _set_password(setter, mailbox, email_of("Dee Lead"))
        for n in range(5):
            guesser = await new_browser(first if n % 2 else second)
            answer = await guesser.sign_in_with_password(email_of("Dee Lead"), f"guess {n}")
            assert answer.status == 401
        owner = await new_browser(second)
        locked = await owner.sign_in_with_password(email_of("Dee Lead"), PASSWORD)
        assert locked.status == 429
