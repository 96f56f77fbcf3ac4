"""In-process network impairment on the selected ICE pair, with an exact record of its doings.

`tc netem` is not available here, and aiortc's `send_data` is bypassed by STUN, so the
impairment wraps the pair's datagram transport (outbound) and its protocol (inbound).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class ImpairmentConfig:
    """What to do to the publisher's traffic."""

    loss_ratio: float = 0.0
    "Random loss of outbound RTP packets (RTCP, STUN and DTLS are spared)."
    delay_seconds: float = 0.0
    "One-way delay added in each direction, so RTT grows by twice this."
    jitter_seconds: float = 0.0
    "Outbound delay varies uniformly by ±jitter around delay_seconds (never below 0), as netem."
    outages: tuple[tuple[float, float], ...] = ()
    "(start, duration) seconds after install during which nothing gets through."
    outage_every_seconds: float | None = None
    "Repeat an outage of outage_seconds every this many seconds after install."
    outage_seconds: float = 0.5
    "Length of each periodic outage."
    seed: int | None = None
    "Random seed, for repeatable runs."
    keep_records: bool = True
    "Keep a record of every RTP packet (ground truth for tests); long runs (the demo,"
    " `qualmon publish`) keep only the counts, or memory would grow 50 records a second."

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss_ratio <= 1.0:
            raise ValueError("loss_ratio must be within 0..1")
        if self.delay_seconds < 0 or self.jitter_seconds < 0 or self.outage_seconds < 0:
            raise ValueError("delays must not be negative")
        if self.outage_every_seconds is not None and self.outage_every_seconds <= 0:
            raise ValueError("outage_every_seconds must be positive")


@dataclass
class RtpRecord:
    """One outbound RTP packet as the impairment saw it."""

    sequence_number: int
    rtp_timestamp: int
    sent_at: float
    "When the publisher handed it to the network (monotonic seconds)."
    delivered_at: float | None = None
    "When it left the impairment towards the receiver; None if dropped."
    dropped: str | None = None
    "Why it was dropped: 'loss' or 'outage'."


def is_rtp(data: bytes) -> bool:
    """RTP (not RTCP) by RFC 5761/7983 demultiplexing: version 2, payload type < 64 or > 95."""
    if len(data) < 12 or not 128 <= data[0] <= 191:
        return False
    payload_type = data[1] & 0x7F
    return not 64 <= payload_type <= 95


@dataclass
class Impairment:
    """Wraps one ICE pair's protocol; records every outbound RTP packet."""

    config: ImpairmentConfig
    clock: Callable[[], float] = time.monotonic
    records: list[RtpRecord] = field(default_factory=list)
    installed_at: float | None = None
    packets_sent: int = 0
    "RTP packets the publisher sent (whether or not they were dropped)."
    packets_dropped: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.config.seed)
        self._pending: set[asyncio.TimerHandle] = set()

    # -- decisions ---------------------------------------------------------

    def in_outage(self, now: float) -> bool:
        if self.installed_at is None:
            return False
        elapsed = now - self.installed_at
        for start, duration in self.config.outages:
            if start <= elapsed < start + duration:
                return True
        every = self.config.outage_every_seconds
        if every is not None and elapsed >= every:
            return elapsed % every < self.config.outage_seconds
        return False

    @property
    def dropped_sequence_numbers(self) -> list[int]:
        return [r.sequence_number for r in self.records if r.dropped]

    # -- wiring ------------------------------------------------------------

    def install(self, protocol: Any) -> None:
        """Impair this aioice StunProtocol from now on, both directions."""
        loop = asyncio.get_running_loop()
        real_transport = protocol.transport
        real_received = protocol.datagram_received
        self.installed_at = self.clock()
        impairment = self

        def later(delay: float, fn: Callable[..., None], *args: Any) -> None:
            if delay <= 0:
                fn(*args)
                return

            def fire() -> None:
                impairment._pending.discard(handle)
                fn(*args)

            handle = loop.call_later(delay, fire)
            impairment._pending.add(handle)

        class ImpairedTransport:
            """Duck-types asyncio.DatagramTransport for the protocol's sends."""

            def sendto(self, data: bytes, addr: Any = None) -> None:
                impairment._outbound(data, addr, real_transport, later)

            def __getattr__(self, name: str) -> Any:
                return getattr(real_transport, name)

        def datagram_received(data: bytes, addr: Any) -> None:
            if impairment.in_outage(impairment.clock()):
                return
            later(impairment.config.delay_seconds, real_received, data, addr)

        protocol.transport = ImpairedTransport()
        protocol.datagram_received = datagram_received

    def _outbound(self, data: bytes, addr: Any, transport: Any, later: Any) -> None:
        now = self.clock()
        record = None
        rtp = is_rtp(data)
        if rtp:
            self.packets_sent += 1
            if self.config.keep_records:
                record = RtpRecord(
                    sequence_number=int.from_bytes(data[2:4], "big"),
                    rtp_timestamp=int.from_bytes(data[4:8], "big"),
                    sent_at=now,
                )
                self.records.append(record)
        dropped: Literal["outage", "loss"] | None = None
        if self.in_outage(now):
            dropped = "outage"
        elif rtp and self.config.loss_ratio and self._rng.random() < self.config.loss_ratio:
            dropped = "loss"
        if dropped is not None:
            if rtp:
                self.packets_dropped += 1
            if record:
                record.dropped = dropped
            return
        delay = self.config.delay_seconds
        if self.config.jitter_seconds:
            spread = self.config.jitter_seconds
            delay = max(0.0, delay + self._rng.uniform(-spread, spread))

        def deliver() -> None:
            if record:
                record.delivered_at = self.clock()
            try:
                transport.sendto(data, addr)
            except (OSError, AttributeError):
                pass  # the socket closed while the packet was in flight

        later(delay, deliver)

    def cancel_pending(self) -> None:
        """Forget packets still in flight (the publisher is closing)."""
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
