"""Which local addresses this process offers as ICE host candidates.

aioice offers every address of the host except loopback, so on a machine (or network namespace)
with only loopback an aiortc peer has no candidate at all, and a gateway that should keep to one
interface has no say. aioice reads its list from one module function; `offer_host_addresses`
replaces it for the whole process.
"""
from __future__ import annotations

from collections.abc import Sequence

import aioice.ice

_AIOICE_HOST_ADDRESSES = aioice.ice.get_host_addresses


def default_host_addresses() -> list[str]:
    """aioice's choice, or 127.0.0.1 where the host has nothing else (a browser on the same machine)."""
    return _AIOICE_HOST_ADDRESSES(use_ipv4=True, use_ipv6=True) or ["127.0.0.1"]


def offer_host_addresses(addresses: Sequence[str]) -> None:
    """Every peer connection made from now on offers exactly these addresses (IPv4 or IPv6)."""
    chosen = list(addresses)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (use_ipv6 if ":" in a else use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses
