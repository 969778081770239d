"""Prometheus metrics: request counts by route template, never by concrete id or token."""

from __future__ import annotations

import re

import pytest

from tests.plugins.gateway_server import Gateway

SAMPLE = re.compile(r"^gateway_http_requests_total\{(?P<labels>.*)\} (?P<value>\S+)$")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Metrics do not depend on the database: SQLite only, to keep the suite fast."""
    return sqlite_url


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

    scrape = await (await gateway.client()).get("/metrics")  # scrapers carry no API key
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
