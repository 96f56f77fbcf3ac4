"""Host-address choice for aioice: in force only while asked for, then aioice's own again."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator

import aioice.ice
import pytest

from qualmon.media.ice import (
    aioice_uses_own_choice,
    host_addresses,
    host_addresses_while_running,
    use_host_addresses,
)

OWN = aioice.ice.get_host_addresses
"aioice's own function, as imported before any test changed it."


@pytest.fixture(autouse=True)
def aioice_untouched() -> Iterator[None]:
    """Each test starts and must end with aioice choosing by itself."""
    assert aioice_uses_own_choice() and aioice.ice.get_host_addresses is OWN
    yield
    assert aioice_uses_own_choice() and aioice.ice.get_host_addresses is OWN


def gathered(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
    return aioice.ice.get_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)


def test_aioice_still_gathers_through_the_module_function() -> None:
    """What the whole module relies on: fails loudly if aioice renames or inlines it."""
    source = inspect.getsource(aioice.ice.Connection.gather_candidates)
    assert "get_host_addresses(" in source


def test_a_scope_chooses_and_then_restores() -> None:
    with host_addresses(["127.0.0.1", "::1"]):
        assert gathered() == ["127.0.0.1", "::1"]
        assert gathered(use_ipv6=False) == ["127.0.0.1"]
        assert not aioice_uses_own_choice()


def test_scopes_closed_out_of_order_leave_the_newest_open_one() -> None:
    first = host_addresses(["127.0.0.1"])
    second = host_addresses(["::1"])
    first.__enter__()
    second.__enter__()
    assert gathered() == ["::1"]
    first.__exit__(None, None, None)
    assert gathered() == ["::1"]
    second.__exit__(None, None, None)


def test_a_scope_inside_a_process_wide_choice_returns_to_it() -> None:
    use_host_addresses(["127.0.0.1"])
    try:
        with host_addresses(["::1"]):
            assert gathered() == ["::1"]
        assert gathered() == ["127.0.0.1"]
    finally:
        use_host_addresses(None)


def test_addresses_must_be_ip_literals() -> None:
    with pytest.raises(ValueError), host_addresses(["localhost"]):
        pass
    with pytest.raises(ValueError):
        host_addresses_while_running(["host.local"])


async def test_loopback_candidates_are_gathered_for_real() -> None:
    """aioice gathers a 127.0.0.1 host candidate, which it never does on its own."""
    with host_addresses(["127.0.0.1"]):
        connection = aioice.ice.Connection(ice_controlling=True)
        try:
            await connection.gather_candidates()
            assert [(c.type, c.host) for c in connection.local_candidates] == [
                ("host", "127.0.0.1")
            ]
        finally:
            await connection.close()


async def test_the_cleanup_context_holds_the_choice_while_the_app_runs() -> None:
    running = host_addresses_while_running(["127.0.0.1"])(object())
    await running.__anext__()
    assert gathered() == ["127.0.0.1"]
    with pytest.raises(StopAsyncIteration):
        await running.__anext__()


async def test_no_addresses_no_change() -> None:
    running = host_addresses_while_running(None)(object())
    await running.__anext__()
    assert aioice_uses_own_choice()
    with pytest.raises(StopAsyncIteration):
        await running.__anext__()


async def test_two_connections_meet_on_loopback() -> None:
    """The point of the choice: two aioice ends on one host connect over 127.0.0.1."""
    with host_addresses(["127.0.0.1"]):
        ends = (aioice.ice.Connection(ice_controlling=True), aioice.ice.Connection(False))
        try:
            for end in ends:
                await end.gather_candidates()
            for end, other in (ends, ends[::-1]):
                end.remote_username = other.local_username
                end.remote_password = other.local_password
                for candidate in other.local_candidates:
                    await end.add_remote_candidate(candidate)
                await end.add_remote_candidate(None)
            await asyncio.wait_for(asyncio.gather(*(end.connect() for end in ends)), 10.0)
            await ends[0].send(b"ping")
            assert await asyncio.wait_for(ends[1].recv(), 5.0) == b"ping"
        finally:
            for end in ends:
                await end.close()
