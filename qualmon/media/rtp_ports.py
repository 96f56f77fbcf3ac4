"""The UDP ports plain-RTP legs receive on: a fixed range, one bound socket per live leg.

A platform's firewall or SFU config names the range (QUALMON_RTP_PORTS), so ports are not
left to the kernel. A port is bound when a leg is attached and given back when it closes.
Freed ports go to the back of the line: a sender told to stop (an SFU forwarder that is
being torn down) may still send for a moment, and its packets must not reach the next leg
that is given the same port and latch onto it as that leg's source.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections import deque


class PortsExhausted(RuntimeError):
    """No port of the range can be bound: all taken (by our legs or other programs), or the
    address itself cannot be bound."""


class PortLease:
    """One bound, non-blocking UDP socket of the pool; `release()` closes it and gives the
    port back (idempotent)."""

    def __init__(self, pool: PortPool, port: int, sock: socket.socket) -> None:
        self._pool = pool
        self.port = port
        self.socket = sock
        self._released = False

    @property
    def host(self) -> str:
        return self._pool.host

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        # Closed before the port is free again, so the next lease can bind it at once.
        self.socket.close()
        self._pool._give_back(self.port)


class PortPool:
    """Ports `first..last` on `host`; each `acquire()` binds the next free one."""

    def __init__(self, host: str, first: int, last: int) -> None:
        if not 0 < first <= last <= 65535:
            raise ValueError(f"bad port range {first}-{last}")
        self.host = host
        self._family = (
            socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        )
        self._free: deque[int] = deque(range(first, last + 1))
        self._in_use: set[int] = set()
        self.capacity = last - first + 1

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    def acquire(self) -> PortLease:
        """Bind the least recently used free port; PortsExhausted when none will bind.

        Ports another program holds are skipped (and tried again later, at the back of the
        line); binding is a non-blocking system call, so this runs on the event loop.
        """
        for _ in range(len(self._free)):
            port = self._free.popleft()
            sock = socket.socket(self._family, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.bind((self.host, port))
            except OSError as exc:
                sock.close()
                self._free.append(port)
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                # Not this port but the address (not on this machine, say): every port fails.
                reason = exc.strerror or type(exc).__name__
                raise PortsExhausted(f"cannot bind ports on {self.host}: {reason}") from None
            self._in_use.add(port)
            return PortLease(self, port, sock)
        raise PortsExhausted(f"no free port in {self.capacity} plain-RTP ports")

    def _give_back(self, port: int) -> None:
        if port in self._in_use:
            self._in_use.discard(port)
            self._free.append(port)
