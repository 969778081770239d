"""When the gateway itself fails: a database that stops answering is a 503 with a stable code
and `Retry-After` (never a 500); an error nobody foresaw is a 500 that carries a request id,
is logged under it and audited, and leaks nothing."""

from __future__ import annotations

import logging

import pytest

from tests.http.world import World
from tests.plugins.gateway_server import Gateway
from tests.plugins.servers import PostgresServer


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """PostgreSQL: a server the test can make refuse connections, as in production."""
    return postgres_url


def _database_name(gateway: Gateway) -> str:
    return gateway.settings.database_url.rsplit("/", 1)[1]


async def _world(gateway: Gateway) -> World:
    org_id, key = await gateway.organisation()
    world = World(gateway, await gateway.client(key), org_id)
    await world.staff("Tina Tutor", ["tutor"])
    return world


@pytest.mark.postgres
async def test_a_database_that_refuses_connections_is_a_503_with_retry_after(
    gateway: Gateway, postgres_server: PostgresServer
) -> None:
    world = await _world(gateway)
    name = _database_name(gateway)
    postgres_server.psql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    try:
        postgres_server.psql(  # the name is the fixture's own database, not input
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"  # noqa: S608
        )
        for path in ("/v1/staff", f"/v1/staff/{world.ids['Tina Tutor']}", "/v1/audit"):
            answer = await world.admin.get(path)
            assert (answer.status, answer.code) == (503, "database_unavailable"), answer.body
            assert int(answer.headers["Retry-After"]) >= 1
            assert name not in str(answer.body) and "asyncpg" not in str(answer.body)
    finally:
        postgres_server.psql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    answer = await world.admin.get("/v1/staff")
    assert answer.status == 200, answer.body


@pytest.mark.postgres
async def test_an_unexpected_failure_is_a_500_with_a_request_id_logged_and_audited(
    gateway: Gateway, postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    world = await _world(gateway)
    # A schema that is not what the code expects: nothing the gateway could have foreseen.
    postgres_server.psql("ALTER TABLE staff RENAME TO staff_elsewhere", _database_name(gateway))
    with caplog.at_level(logging.ERROR, logger="gateway.http"):
        answer = await world.admin.get("/v1/staff")
    assert (answer.status, answer.code) == (500, "internal"), answer.body
    request_id = answer.headers["X-Request-Id"]
    assert answer.body["error"]["request_id"] == request_id
    for leak in ("staff_elsewhere", "relation", "Traceback", "Tina"):
        assert leak not in str(answer.body)

    logged = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert len(logged) == 1
    assert logged[0].__dict__["request_id"] == request_id
    assert logged[0].__dict__["route"] == "/v1/staff"

    audit = await world.admin.get("/v1/audit?kind=request.failed")
    assert audit.status == 200, audit.body
    [entry] = audit.body["items"]
    assert entry["org_id"] == world.org_id
    assert entry["data"]["request_id"] == request_id
    assert entry["data"]["route"] == "/v1/staff" and entry["data"]["method"] == "GET"
    assert "Tina" not in str(entry) and "staff_elsewhere" not in str(entry)
