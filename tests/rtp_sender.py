"""A small RTP/SRTP sender for tests: what an SFU's forwarder sends, from a UDP socket of its
own on loopback (aiortc's RtpPacket builds the packets, pylibsrtp protects them)."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import Callable, Sequence
from typing import Any

import pylibsrtp
from aiortc.rtp import RtpPacket

from qualmon.sim.dialogue import load_fixture

OPUS_TICKS = 960
"20 ms of Opus at its 48 kHz RTP clock."


def client_speech(start_seconds: float, seconds: float) -> list[bytes]:
    """The committed espeak dialogue's client packets (20 ms Opus) from `start_seconds` on."""
    packets = load_fixture("balanced").packets["client"]
    first = round(start_seconds / 0.02)
    return packets[first : first + round(seconds / 0.02)]


def free_udp_port() -> int:
    """A UDP port free on loopback just now (the pool skips it should that change)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def srtp_session(key: bytes) -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(
        key=key,
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
        srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    )
    return pylibsrtp.Session(policy)


class RtpSender:
    """Sends numbered Opus packets to (host, port), as plain RTP or, with `srtp_key` (the
    attach answer's base64), as SRTP. Sequence numbers start near the wrap on purpose."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        payload_type: int = 111,
        srtp_key: str | None = None,
        ssrc: int = 0x5EED1234,
        first_sequence: int = 65_500,
        first_timestamp: int = 4_294_000_000,
    ) -> None:
        self.target = (host, port)
        self.payload_type = payload_type
        self.ssrc = ssrc
        self.first_sequence = first_sequence
        self.first_timestamp = first_timestamp
        self._srtp = srtp_session(base64.b64decode(srtp_key)) if srtp_key else None
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.sent = 0

    def __enter__(self) -> RtpSender:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.socket.close()

    def packet(self, index: int, payload: bytes, *, payload_type: int | None = None) -> bytes:
        """The `index`-th packet of the stream (20 ms apart), protected if SRTP."""
        packet = RtpPacket(
            payload_type=self.payload_type if payload_type is None else payload_type,
            sequence_number=(self.first_sequence + index) & 0xFFFF,
            timestamp=(self.first_timestamp + index * OPUS_TICKS) & 0xFFFFFFFF,
            ssrc=self.ssrc,
        )
        packet.payload = payload
        data = packet.serialize()
        return self._srtp.protect(data) if self._srtp is not None else data

    def send_raw(self, data: bytes) -> None:
        self.socket.sendto(data, self.target)
        self.sent += 1

    async def send(
        self,
        payloads: Sequence[bytes],
        *,
        interval: float = 0.020,
        skip: Callable[[int], bool] = lambda index: False,
        first_index: int = 0,
    ) -> int:
        """Send payloads as packets `first_index`…, one per `interval` (on a fixed schedule,
        so pacing does not drift); indexes where `skip` is true are left out (lost before
        us). Returns how many were sent."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        for offset, payload in enumerate(payloads):
            index = first_index + offset
            delay = start + offset * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if skip(index):
                continue
            self.send_raw(self.packet(index, payload))
            sent += 1
        return sent
