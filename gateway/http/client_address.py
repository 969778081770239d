"""Which address a request comes from, believing only the proxies we were told to trust.

`X-Forwarded-For` is written by whoever sends the request, so it is read only when the peer
that connected to us is a configured trusted proxy (GATEWAY_TRUSTED_PROXIES, a list of CIDRs).
Then the list is walked from the right (the hop closest to us) and the first address that is
not itself a trusted proxy is the client: everything left of it was written by the client or
by proxies we know nothing about, and could be anything. With no trusted proxies configured the
connecting peer is the client, whatever the headers say.

The address is used for per-source limits only; it is never logged or audited in the clear.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence

from aiohttp import web

__all__ = ["TrustedProxies", "client_address", "trusted_proxies"]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN = "unknown"
MAX_HOPS = 32  # a longer header is someone padding it; only the right-most hops matter


class TrustedProxies:
    """The networks whose `X-Forwarded-For` is believed."""

    def __init__(self, cidrs: Iterable[str] = ()) -> None:
        networks: list[IpNetwork] = []
        for cidr in cidrs:
            try:
                networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
            except ValueError:
                raise ValueError(f"not a network address (CIDR): {cidr!r}") from None
        self._networks: Sequence[IpNetwork] = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def __contains__(self, address: str) -> bool:
        parsed = _parse(address)
        if parsed is None:
            return False
        return any(parsed.version == n.version and parsed in n for n in self._networks)

    def client(self, peer: str | None, forwarded_for: Sequence[str]) -> str:
        """The client's address, from the connecting `peer` and the X-Forwarded-For headers."""
        if peer is None or _parse(peer) is None:
            return UNKNOWN
        if peer not in self:
            return str(_parse(peer))
        hops = [h.strip() for header in forwarded_for for h in header.split(",")][-MAX_HOPS:]
        nearest = str(_parse(peer))
        for hop in reversed(hops):
            parsed = _parse(hop)
            if parsed is None:
                return nearest  # garbage from here leftwards: the last trusted hop is all we know
            if hop not in self:
                return str(parsed)
            nearest = str(parsed)
        return nearest  # every hop was one of our proxies


def client_address(request: web.Request, cidrs: tuple[str, ...]) -> str:
    """The request's source address, given the trusted proxies' CIDRs (from the settings)."""
    return trusted_proxies(cidrs).client(
        request.remote, request.headers.getall("X-Forwarded-For", [])
    )


@functools.lru_cache(maxsize=4)
def trusted_proxies(cidrs: tuple[str, ...]) -> TrustedProxies:
    return TrustedProxies(cidrs)


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[v6]:port"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "v4:port"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
