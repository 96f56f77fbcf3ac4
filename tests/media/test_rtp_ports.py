"""The plain-RTP port pool: real sockets on loopback."""

from __future__ import annotations

import socket

import pytest

from qualmon.media.rtp_ports import PortPool, PortsExhausted

from ..rtp_sender import free_udp_port


def test_each_lease_binds_a_port_and_release_gives_it_back_once() -> None:
    first = free_udp_port()
    pool = PortPool("127.0.0.1", first, first + 1)
    lease = pool.acquire()
    assert lease.socket.getsockname() == ("127.0.0.1", lease.port)
    assert lease.host == "127.0.0.1" and pool.in_use == 1
    lease.release()
    lease.release()
    assert pool.in_use == 0 and lease.socket.fileno() == -1


def test_a_freed_port_goes_to_the_back_of_the_line() -> None:
    """A sender still sending to a port just freed must not reach the very next leg."""
    first = free_udp_port()
    pool = PortPool("127.0.0.1", first, first + 2)
    a = pool.acquire()
    a.release()
    b, c = pool.acquire(), pool.acquire()
    assert a.port not in (b.port, c.port)
    b.release()
    c.release()


def test_ports_another_program_holds_are_skipped() -> None:
    first = free_udp_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.bind(("127.0.0.1", first))
        pool = PortPool("127.0.0.1", first, first + 1)
        lease = pool.acquire()
        assert lease.port == first + 1
        with pytest.raises(PortsExhausted, match="no free port in 2 plain-RTP ports"):
            pool.acquire()
        lease.release()
    assert pool.in_use == 0


def test_an_address_that_cannot_be_bound_is_said_once() -> None:
    """Not a port but the address (TEST-NET, on no interface): one clear refusal."""
    pool = PortPool("192.0.2.1", 40000, 40999)
    with pytest.raises(PortsExhausted, match=r"cannot bind ports on 192\.0\.2\.1: "):
        pool.acquire()
    assert pool.in_use == 0


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    first = free_udp_port()
    pool = PortPool("::1", first, first)
    try:
        lease = pool.acquire()
    except PortsExhausted as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    assert lease.socket.family == socket.AF_INET6
    lease.release()


def test_a_bad_range_is_refused() -> None:
    with pytest.raises(ValueError):
        PortPool("127.0.0.1", 5, 4)
