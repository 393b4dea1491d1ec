"""Which address a browser's request comes from, as seen through the TLS proxy in front of
the bot: `X-Forwarded-For` counts only when the request comes from a trusted proxy
(WEBHOOK_TRUSTED_PROXIES), or anyone could claim any address and dodge the limits."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, proxies: Sequence[Network]
) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_ip(peer: str | None, forwarded_for: Sequence[str], proxies: Sequence[Network]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the
    rightmost `X-Forwarded-For` entry that is not itself a trusted proxy (each proxy appends
    the address it saw, so entries further left are only what the client claimed)."""
    address = _address(peer or "")
    if address is None:
        return peer or "unknown"
    if not _trusted(address, proxies):
        return str(address)
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        forwarded = _address(hop)
        if forwarded is None:
            # A malformed entry: nothing to its left can be trusted either.
            return str(address)
        if not _trusted(forwarded, proxies):
            return str(forwarded)
        address = forwarded
    return str(address)
