"""A plain-RTP leg's media end: one UDP port an SFU or gateway sends a participant's audio to.

No ICE, no DTLS: the sender is told a host, a port and (for SRTP) a key, out of band; an
SFU forwarder (Janus `rtp_forward`, a mediasoup PlainTransport) sends RTP or SDES-keyed SRTP
and no RTCP worth reading. So this source only receives: the first sender whose packet is
valid is latched and everyone else is ignored, packets of the attached payload type go to
the leg and, for Opus, to the speech path, everything else is counted and dropped. There is
no RTT on this path; `report_rtt` takes one measured elsewhere (an SFU's own stats).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import pylibsrtp
from aiortc.rtp import RtpPacket

from ..config import Settings
from ..core.leg_source import LegFeed
from . import opus
from .rtp_ports import PortLease
from .speech import OpusPacketSpeech

log = logging.getLogger(__name__)

SRTP_SUITE = "AES_CM_128_HMAC_SHA1_80"
"The one SRTP suite offered: what Janus (`srtp_suite` 80) and mediasoup both send."
SRTP_KEY_BYTES = 30
"AES-128 master key (16 bytes) and master salt (14), as SDES and Janus' srtp_crypto carry it."
OPUS_CLOCK_RATE = 48000
"RFC 7587: Opus is always clocked at 48 kHz on RTP, whatever its audio bandwidth."
RTCP_TYPES = range(192, 224)
"RFC 5761 §4: with RTP and RTCP on one port, a second byte in 192..223 is RTCP (SR 200, RR"
" 201, SDES, BYE, APP, feedback); so RTP payload types 64..95 cannot be used on it."

IgnoredReason = Literal["foreign_source", "rtcp", "srtp", "malformed", "payload_type"]
IGNORED_REASONS: tuple[IgnoredReason, ...] = (
    "foreign_source",
    "rtcp",
    "srtp",
    "malformed",
    "payload_type",
)
"Why a datagram was not measured: from another address than the latched sender; RTCP; SRTP"
" that does not authenticate under the leg's key (or replayed); not RTP; another payload type."


class IgnoredPackets(Protocol):
    """Where ignored datagrams are counted (the service's metrics); no leg id, by design."""

    def on_ignored(self, reason: IgnoredReason) -> None: ...


@dataclass(frozen=True)
class RtpParams:
    """What the sender will send: checked by the caller (the HTTP route) before a port is
    taken."""

    payload_type: int
    "The RTP payload type measured; any other is ignored."
    clock_rate: int = OPUS_CLOCK_RATE
    codec: Literal["opus"] = "opus"
    srtp: bool = True
    "SRTP; False: plain RTP, for a sender on a trusted network."
    srtp_key: bytes | None = field(default=None, repr=False)
    "The sender's own SRTP key (SRTP_KEY_BYTES) where it chooses one (a mediasoup"
    " PlainTransport encrypts with its own); None: a fresh key per leg, given to the sender"
    " (Janus' rtp_forward takes it as srtp_crypto)."

    def __post_init__(self) -> None:
        if self.srtp_key is not None and (not self.srtp or len(self.srtp_key) != SRTP_KEY_BYTES):
            raise ValueError(f"an SRTP key is {SRTP_KEY_BYTES} bytes, and only with SRTP")


@dataclass(frozen=True)
class RtpAttachment:
    """What the sender needs: where to send and, with SRTP, the key."""

    host: str
    port: int
    srtp_key: bytes | None = field(repr=False)
    "30 bytes (key + salt) for AES_CM_128_HMAC_SHA1_80; None for plain RTP."

    @property
    def srtp_suite(self) -> str | None:
        return SRTP_SUITE if self.srtp_key is not None else None

    @property
    def srtp_key_base64(self) -> str | None:
        return base64.b64encode(self.srtp_key).decode("ascii") if self.srtp_key else None


@functools.cache
def _warn_no_libopus() -> None:
    log.warning("libopus not found: plain-RTP legs are measured without speech activity")


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Any], None]) -> None:
        self._on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors only answer what a socket sent; this one sends nothing.
        pass


class RtpSource:
    """Receives one participant's audio as plain RTP or SRTP on a leased port."""

    kind = "rtp"

    def __init__(
        self,
        feed: LegFeed,
        *,
        lease: PortLease,
        params: RtpParams,
        settings: Settings,
        ignored: IgnoredPackets | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._feed = feed
        self._lease = lease
        self._params = params
        self._settings = settings
        self._observer = ignored
        self._clock = clock
        self._srtp_key = (
            (params.srtp_key or secrets.token_bytes(SRTP_KEY_BYTES)) if params.srtp else None
        )
        self._srtp: pylibsrtp.Session | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._peer: Any = None
        self._speech: OpusPacketSpeech | None = None
        self._frames_classified = 0
        self._closed = False
        self.ignored: Counter[IgnoredReason] = Counter()
        "Datagrams this leg did not measure, by reason."

    # -- LegSource ---------------------------------------------------------------

    async def start(self) -> RtpAttachment:
        """Start receiving on the leased port; returns where and how to send."""
        if self._srtp_key is not None:
            policy = pylibsrtp.Policy(
                key=self._srtp_key,
                # Any SSRC: an SFU keeps the publisher's, which changes when it republishes.
                ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
                srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
            )
            self._srtp = pylibsrtp.Session(policy)
        self._feed.use_clock_rate(self._params.clock_rate)
        self._start_speech()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Receiver(self.on_datagram), sock=self._lease.socket
        )
        self._transport = transport
        if self._closed:  # closed while the endpoint was being made
            transport.close()
        return RtpAttachment(self._lease.host, self._lease.port, self._srtp_key)

    @property
    def frames_classified(self) -> int:
        speech = self._speech
        return speech.frames_classified if speech is not None else self._frames_classified

    async def close(self) -> None:
        """Stop receiving and give the port back at once; idempotent, never waits."""
        if self._closed:
            return
        self._closed = True
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()  # stops reading now; its own socket close comes later
        # Closes the socket now (the transport's later close is then a no-op), so the port
        # can be bound again as soon as this returns.
        self._lease.release()
        self._srtp = None
        speech, self._speech = self._speech, None
        if speech is not None:
            self._frames_classified = speech.frames_classified
            speech.close()

    # -- what an SFU integration adds ---------------------------------------------

    def report_rtt(self, rtt_seconds: float | None) -> None:
        """A round trip measured elsewhere on this participant's path (an SFU's stats of its
        connections): plain RTP brings none, since no RTCP comes back through a forwarder."""
        if not self._closed:
            self._feed.on_rtt(rtt_seconds)

    # -- internals -----------------------------------------------------------------

    def _start_speech(self) -> None:
        if not self._settings.speech_enabled:
            return
        if not opus.available():
            _warn_no_libopus()
            return
        self._speech = OpusPacketSpeech(
            sink=self._feed,
            session_time_of=self._feed.session_time_of,
            vad_mode=self._settings.vad_mode,
            clock_rate=self._params.clock_rate,
        )

    def _ignore(self, reason: IgnoredReason) -> None:
        self.ignored[reason] += 1
        if self._observer is not None:
            self._observer.on_ignored(reason)

    def on_datagram(self, data: bytes, addr: Any) -> None:
        """Every datagram that reaches the port, whoever sent it (`addr`): measured, or
        counted as ignored. Cheap refusals come first, since anyone can send."""
        if self._closed:
            return
        arrival = self._clock()
        peer = self._peer
        if peer is not None and addr != peer:
            self._ignore("foreign_source")
            return
        if len(data) >= 2 and data[1] in RTCP_TYPES:
            self._ignore("rtcp")
            return
        srtp = self._srtp
        if srtp is not None:
            try:
                data = srtp.unprotect(data)
            except (pylibsrtp.Error, ValueError):  # ValueError: longer than libsrtp's buffer
                self._ignore("srtp")
                return
        try:
            packet = RtpPacket.parse(data)
        except ValueError:
            self._ignore("malformed")
            return
        if packet.payload_type != self._params.payload_type:
            self._ignore("payload_type")
            return
        if peer is None:
            # Latched on a packet that is RTP of the attached type (and, with SRTP, carries
            # the key): stray traffic to a fresh port cannot take it over.
            self._peer = addr
        self._feed.on_rtp(packet, arrival)
        speech = self._speech
        if speech is not None:
            speech.on_packet(
                ssrc=packet.ssrc,
                sequence_number=packet.sequence_number,
                rtp_timestamp=packet.timestamp,
                payload=packet.payload,
            )
