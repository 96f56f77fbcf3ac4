"""ICE plumbing aiortc does not expose: host-address choice and the selected pair."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import Any

import aioice.ice
from aiortc import RTCPeerConnection

_original_get_host_addresses: Callable[[bool, bool], list[str]] = aioice.ice.get_host_addresses
_ice_module: Any = aioice.ice


def use_host_addresses(addresses: Sequence[str] | None) -> None:
    """Gather host candidates on exactly these addresses (None: aioice's own choice).

    aioice leaves 127.0.0.1 out of its host candidates, so loopback tests and the demo
    could not connect without this. The setting is process-wide because aioice reads a
    module-level function; the service and the simulator set it once at start.
    """
    if addresses is None:
        _ice_module.get_host_addresses = _original_get_host_addresses
        return
    chosen = [str(ipaddress.ip_address(a)) for a in addresses]

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [
            a
            for a in chosen
            if (use_ipv4 and ipaddress.ip_address(a).version == 4)
            or (use_ipv6 and ipaddress.ip_address(a).version == 6)
        ]

    _ice_module.get_host_addresses = get_host_addresses


def ice_connection(pc: RTCPeerConnection) -> Any | None:
    """The aioice Connection carrying this peer connection's media (bundled)."""
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        if dtls is not None:
            return dtls.transport._connection
    return None


def selected_pair(pc: RTCPeerConnection) -> Any | None:
    """The nominated candidate pair of component 1, or None before ICE completes."""
    connection = ice_connection(pc)
    if connection is None:
        return None
    nominated: dict[int, Any] = connection._nominated
    return nominated.get(1)
