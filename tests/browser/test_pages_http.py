"""The join page and its static files over plain HTTP: headers, no token, nothing else served."""

from __future__ import annotations

import re

import pytest

from tests.plugins.gateway_server import Gateway

CSP_PARTS = (
    "default-src 'self'",
    "media-src 'self' blob: mediastream:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
)


async def test_join_page_is_served_with_strict_headers(gateway: Gateway) -> None:
    client = await gateway.client()
    page = await client.get("/join")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    for part in CSP_PARTS:
        assert part in page.headers["Content-Security-Policy"]
    text = str(page.body)
    # One module script; its imports are other files under /static/session/ (same origin).
    assert '<script type="module" src="/static/session/main.js"></script>' in text
    assert "<script>" not in text and " style=" not in text and "onclick" not in text


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("session/main.js", "text/javascript"),
        ("session/join.js", "text/javascript"),
        ("session.css", "text/css"),
    ],
)
async def test_static_files_have_types_and_the_same_policy(
    gateway: Gateway, name: str, kind: str
) -> None:
    client = await gateway.client()
    answer = await client.get(f"/static/{name}")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith(kind)
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in answer.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.js",
        "/static/..%2Fpages.py",
        "/static/%2e%2e",
        "/static/",
        "/static/join.html",
        "/static/session.js",  # the single script it was split from is gone
        "/static/session/",
        "/static/session/..%2F..%2Fpages.py",
        "/static/session/nope.js",
        "/static/main.js",
    ],
)
async def test_only_shipped_static_files_are_served(gateway: Gateway, path: str) -> None:
    client = await gateway.client()
    answer = await client.get(path)
    assert answer.status == 404


async def test_every_module_the_page_imports_is_served(gateway: Gateway) -> None:
    """Each ``import ... from "./x.js"`` in the page's modules resolves to a file served here."""
    client = await gateway.client()
    seen: set[str] = set()
    pending = ["session/main.js"]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        answer = await client.get(f"/static/{name}")
        assert answer.status == 200, name
        assert answer.headers["Content-Type"].startswith("text/javascript"), name
        for imported in re.findall(r'from "\./([a-z_]+\.js)"', str(answer.body)):
            pending.append(f"session/{imported}")
    assert {"session/join.js", "session/exit.js", "session/concern.js"} <= seen
