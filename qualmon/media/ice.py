"""ICE plumbing aiortc does not expose: host-address choice and the selected pair."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import aioice.ice
from aiortc import RTCPeerConnection

# aioice leaves 127.0.0.1 out of its host candidates, so loopback tests and the demo could
# not connect without a choice of our own. aioice reads the module-level function
# `aioice.ice.get_host_addresses` inside Connection.gather_candidates and offers no
# per-connection option, so any choice is process-wide while it is in force. Hence: the
# function is replaced only while some choice is in force, and aioice's own is put back
# as soon as none is.
_original_get_host_addresses: Callable[[bool, bool], list[str]] = aioice.ice.get_host_addresses
_ice_module: Any = aioice.ice
_process_choice: tuple[str, ...] | None = None
"Set by use_host_addresses (a process that is only a publisher or a probe)."
_scoped_choices: list[tuple[str, ...]] = []
"One entry per host_addresses() scope still open, newest last; the newest wins."


def _choice() -> tuple[str, ...] | None:
    return _scoped_choices[-1] if _scoped_choices else _process_choice


def _chosen_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """Stands in for aioice.ice.get_host_addresses while a choice is in force."""
    chosen = _choice()
    if chosen is None:
        return _original_get_host_addresses(use_ipv4, use_ipv6)
    return [
        a
        for a in chosen
        if (use_ipv4 and ipaddress.ip_address(a).version == 4)
        or (use_ipv6 and ipaddress.ip_address(a).version == 6)
    ]


def _apply() -> None:
    in_force = _choice() is not None
    _ice_module.get_host_addresses = (
        _chosen_host_addresses if in_force else _original_get_host_addresses
    )


def _normalised(addresses: Sequence[str]) -> tuple[str, ...]:
    """The addresses as IP literals; ValueError for anything else (aioice would bind it)."""
    return tuple(str(ipaddress.ip_address(a)) for a in addresses)


def aioice_uses_own_choice() -> bool:
    """True when aioice gathers host candidates with its own, untouched function."""
    return _ice_module.get_host_addresses is _original_get_host_addresses


def use_host_addresses(addresses: Sequence[str] | None) -> None:
    """For the whole process, gather host candidates on exactly these addresses (None:
    aioice's own choice again). For processes that only publish or probe; the service
    scopes its choice to its own run with `host_addresses_while_running`."""
    global _process_choice
    _process_choice = None if addresses is None else _normalised(addresses)
    _apply()


@contextlib.contextmanager
def host_addresses(addresses: Sequence[str]) -> Iterator[None]:
    """Gather host candidates on exactly these addresses while inside; then as before.

    Scopes may overlap in any order (two services in one test): the newest open one wins,
    and aioice gets its own function back when the last closes and no process-wide choice
    is set. Process-wide while open, like any aioice setting (see the module comment).
    """
    chosen = _normalised(addresses)
    _scoped_choices.append(chosen)
    _apply()
    try:
        yield
    finally:
        _scoped_choices.remove(chosen)
        _apply()


def host_addresses_while_running(
    addresses: Sequence[str] | None,
) -> Callable[[object], AsyncIterator[None]]:
    """An aiohttp cleanup context: `host_addresses(addresses)` from app start-up to clean-up.

    None (the production default): aioice is left alone. Building an app changes nothing;
    only running it does, and its clean-up undoes it. Addresses that are not IP literals
    raise ValueError here, when the app is built.
    """
    chosen = None if addresses is None else _normalised(addresses)

    async def in_force(_app: object) -> AsyncIterator[None]:
        if chosen is None:
            yield
            return
        with host_addresses(chosen):
            yield

    return in_force


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
