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
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
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
        return parsed is not None and self._trusts(parsed)

    def _trusts(self, address: IpAddress) -> bool:
        return any(address.version == n.version and address in n for n in self._networks)

    def client(self, peer: str | None, forwarded_for: Sequence[str]) -> str:
        """The client's address, from the connecting `peer` and the X-Forwarded-For headers."""
        nearest = _parse(peer) if peer is not None else None
        if nearest is None:
            return UNKNOWN
        if not self._trusts(nearest):
            return str(nearest)
        hops = [h.strip() for header in forwarded_for for h in header.split(",")][-MAX_HOPS:]
        for hop in reversed(hops):
            parsed = _parse(hop)
            if parsed is None:  # garbage from here leftwards: the last trusted hop is all we know
                return str(nearest)
            if not self._trusts(parsed):
                return str(parsed)
            nearest = parsed
        return str(nearest)  # every hop was one of our proxies


def client_address(request: web.Request, cidrs: tuple[str, ...]) -> str:
    """The request's source address, given the trusted proxies' CIDRs (from the settings)."""
    return trusted_proxies(cidrs).client(
        request.remote, request.headers.getall("X-Forwarded-For", [])
    )


@functools.lru_cache(maxsize=4)
def trusted_proxies(cidrs: tuple[str, ...]) -> TrustedProxies:
    return TrustedProxies(cidrs)


MAX_ADDRESS_TEXT = 64  # "[v6 with zone]:port" fits; anything longer is not an address


def _parse(text: str) -> IpAddress | None:
    text = text.strip()
    if len(text) > MAX_ADDRESS_TEXT:
        return None
    return _parse_short(text)


# Every request parses its peer's address, and a gateway sees the same addresses again and
# again (behind a proxy, the proxy's one), so the parse is remembered. Bounded in count and,
# above, in length: what a client writes in X-Forwarded-For cannot grow it past a few hundred KiB.
@functools.lru_cache(maxsize=4096)
def _parse_short(text: str) -> IpAddress | None:
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
