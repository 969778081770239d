"""The client's address comes only from trusted proxies (GATEWAY_TRUSTED_PROXIES)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.http.client_address import TrustedProxies
from tests.abuse.conftest import MakeGateway, policy_file
from tests.http.world import World, build_world

PROXIES = TrustedProxies(["10.0.0.0/8", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # no trusted proxy in front: the peer, whatever the header says
        ("198.51.100.7", ["1.2.3.4"], "198.51.100.7"),
        # through our proxy: the right-most hop that is not ours
        ("10.0.0.5", ["203.0.113.9"], "203.0.113.9"),
        ("10.0.0.5", ["1.2.3.4, 203.0.113.9"], "203.0.113.9"),  # left of it: anyone's claim
        ("10.0.0.5", ["1.2.3.4, 203.0.113.9, 10.0.0.6"], "203.0.113.9"),  # two proxies of ours
        ("10.0.0.5", ["1.2.3.4", "203.0.113.9"], "203.0.113.9"),  # several header lines
        ("10.0.0.5", [], "10.0.0.5"),  # no header: the proxy itself
        ("10.0.0.5", ["10.0.0.7"], "10.0.0.7"),  # only our own hops
        ("10.0.0.5", ["1.2.3.4, nonsense"], "10.0.0.5"),  # garbage: the last hop we trust
        ("10.0.0.5", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("10.0.0.5", ["203.0.113.9:5555"], "203.0.113.9"),
        ("::ffff:10.0.0.5", ["203.0.113.9"], "203.0.113.9"),  # v4-mapped peer
        ("fd00::1", ["2001:db8::2"], "2001:db8::2"),
        (None, ["203.0.113.9"], "unknown"),
        # a hop longer than any address is garbage, however it ends
        ("10.0.0.5", [" " * 3 + "1" * 70 + "203.0.113.9"], "10.0.0.5"),
        ("10.0.0.5", ["[fe80::1%eth0]:443"], "fe80::1%eth0"),  # zoned v6 is an address
    ],
)
def test_the_client_is_the_right_most_untrusted_hop(
    peer: str | None, forwarded: list[str], client: str
) -> None:
    assert PROXIES.client(peer, forwarded) == client


def test_no_proxies_means_the_peer_and_bad_networks_are_refused() -> None:
    assert TrustedProxies().client("192.0.2.1", ["203.0.113.9"]) == "192.0.2.1"
    with pytest.raises(ValueError, match="CIDR"):
        TrustedProxies(["10.0.0.0/33"])


def test_what_clients_write_cannot_grow_the_remembered_addresses() -> None:
    from gateway.http import client_address

    for i in range(10_000):  # a client cycling through forged hops
        PROXIES.client("10.0.0.5", [f"198.51.{i // 256}.{i % 256}, {'9' * 200}{i}"])
    remembered = client_address._parse_short.cache_info()
    assert remembered.currsize <= remembered.maxsize == 4096


async def _wrong_from(world: World, address: str) -> int:
    device = await world.gateway.client()
    body = {"token": world.invites["Sam Green"]["token"], "password": "guess-guess"}
    answer = await device.post("/v1/join", body, headers={"X-Forwarded-For": address})
    return int(answer.status)


async def test_without_trusted_proxies_a_forged_header_does_not_escape_the_source_limit(
    make_gateway: MakeGateway, sqlite_url: str, tmp_path: Path
) -> None:
    policy = policy_file(tmp_path, source_max_attempts=2, password_max_attempts=50)
    gateway = await make_gateway(sqlite_url, policy=policy)
    world = await build_world(gateway)
    statuses = [await _wrong_from(world, f"198.51.100.{i}") for i in range(4)]
    assert statuses == [401, 429, 429, 429]  # one source (loopback), whatever the header


async def test_behind_a_trusted_proxy_each_child_is_its_own_source(
    make_gateway: MakeGateway, sqlite_url: str, tmp_path: Path
) -> None:
    policy = policy_file(tmp_path, source_max_attempts=2, password_max_attempts=50)
    gateway = await make_gateway(sqlite_url, policy=policy, trusted_proxies=("127.0.0.0/8",))
    world = await build_world(gateway)
    assert [await _wrong_from(world, "198.51.100.1") for _ in range(2)] == [401, 429]
    assert await _wrong_from(world, "198.51.100.2") == 401  # another child behind the proxy
