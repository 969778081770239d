"""The join page and its static files over plain HTTP: headers, no token, nothing else served."""

from __future__ import annotations

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
    assert '<script src="/static/session.js" defer></script>' in text
    assert "<script>" not in text and " style=" not in text and "onclick" not in text


@pytest.mark.parametrize(
    ("name", "kind"), [("session.js", "text/javascript"), ("session.css", "text/css")]
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
    ["/static/nope.js", "/static/..%2Fpages.py", "/static/%2e%2e", "/static/", "/static/join.html"],
)
async def test_only_shipped_static_files_are_served(gateway: Gateway, path: str) -> None:
    client = await gateway.client()
    answer = await client.get(path)
    assert answer.status == 404
