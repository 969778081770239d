"""Prometheus metrics: request counts by route template, never by concrete id or token; the
page itself only for whoever holds the metrics token."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.plugins.gateway_server import Gateway

METRICS_TOKEN = "scrape-me-0123456789"
SAMPLE = re.compile(r"^gateway_http_requests_total\{(?P<labels>.*)\} (?P<value>\S+)$")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Metrics do not depend on the database: SQLite only, to keep the suite fast."""
    return sqlite_url


@pytest.fixture
def gateway_settings() -> dict[str, Any]:
    return {"metrics_token": METRICS_TOKEN}


def _samples(text: str) -> dict[tuple[str, str, str], float]:
    found = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
            found[(labels["method"], labels["route"], labels["status"])] = float(match["value"])
    return found


async def test_metrics_count_requests_by_route_template_only(gateway: Gateway) -> None:
    _, key = await gateway.organisation()
    admin = await gateway.client(key)
    created = await admin.post(
        "/v1/staff", {"name": "Tina Tutor", "email": "tina@example.org", "roles": ["tutor"]}
    )
    assert created.status == 201, created.body
    tina = created.body["id"]
    missing = "f" * 32
    for path in (f"/v1/staff/{tina}", f"/v1/staff/{tina}", f"/v1/staff/{missing}"):
        await admin.get(path)
    await admin.get(f"/v1/staff/{tina}/consent")
    token = "eyJ.secret-token-value.sig"
    await admin.post("/v1/join", {"token": token, "password": "open-sesame"})
    await admin.get(f"/v1/no-such-route/{missing}")

    scraper = await gateway.client()  # scrapers carry the metrics token, not an API key
    scrape = await scraper.get("/metrics", key=METRICS_TOKEN)
    assert scrape.status == 200
    assert scrape.headers["Content-Type"].startswith("text/plain")
    text = scrape.body
    assert isinstance(text, str)
    assert "# TYPE gateway_http_requests_total counter" in text
    samples = _samples(text)
    assert samples[("GET", "/v1/staff/{id}", "200")] == 2
    assert samples[("GET", "/v1/staff/{id}", "404")] == 1
    assert samples[("GET", "/v1/staff/{id}/consent", "200")] == 1
    assert samples[("POST", "/v1/staff", "201")] == 1
    assert ("POST", "/v1/join", "403") in samples
    for secret in (tina, missing, token, key, "no-such-route"):
        assert secret not in text
    for _, route, _ in samples:
        assert route == "unmatched" or route.startswith(("/v1/", "/metrics", "/healthz")), route
    assert "gateway_http_request_seconds_bucket" in text


async def test_metrics_need_the_metrics_token(gateway: Gateway) -> None:
    _, key = await gateway.organisation()
    anonymous = await gateway.client()
    for token in (None, "", key, METRICS_TOKEN + "x", METRICS_TOKEN[:-1]):
        answer = await anonymous.get("/metrics", key=token)
        assert (answer.status, answer.code) == (401, "unauthenticated"), token
        assert "gateway_http_requests" not in str(answer.body)
    assert (await anonymous.get("/metrics", key=METRICS_TOKEN)).status == 200


@pytest.mark.parametrize("gateway_settings", [{}])
async def test_without_a_metrics_token_there_is_no_metrics_page(gateway: Gateway) -> None:
    anonymous = await gateway.client()
    for token in (None, "anything"):
        answer = await anonymous.get("/metrics", key=token)
        assert (answer.status, answer.code) == (404, "not_found")
