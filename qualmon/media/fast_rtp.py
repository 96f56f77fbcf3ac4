"""A short way in for a measured audio leg's SRTP packets, past aiortc's per-packet machinery.

aiortc hands every datagram from aioice's protocol to an asyncio.Queue, which its DTLS
transport's task drains one `await` at a time (the task wakes per packet), then parses,
routes and passes the packet through its receiver: RTCP statistics, the depacketiser and a
jitter buffer that only feeds the decoder. On a receive-only Opus leg whose aiortc decoder
qualmon stopped (tap.skip_aiortc_decoding), the jitter buffer's frames go nowhere. Profiled
at 40 legs, the queue hop, the task wake-up and the receiver's unused work were about a
quarter of the network pipeline's CPU.

So for the SSRCs of the receivers registered here, this module wraps each aioice protocol's
`datagram_received` (asyncio calls it per datagram; aioice would first try the datagram as a
STUN message) and, for any other way in, the connection's `data_received`, with a function
that, in the same call: unprotects SRTP, reads the RTP header (core/rtp_header.py: no header
extensions, which only routing needed), gives the packet to the receiver's tap sink, and
keeps what aiortc still needs of it — the stream statistics its RTCP receiver reports are
made from. Everything else (DTLS, SRTCP,
STUN, video, packets of an SSRC not yet routed, and any packet while older ones still wait
in aiortc's queue, so order is kept) goes the usual way.

The one module that touches these internals of aiortc and aioice; tests/media/test_fast_rtp.py
fails loudly when a new aiortc or aioice renames one, and the fast path then stays off
(logged once), never a broken leg.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pylibsrtp
from aiortc import RTCRtpReceiver
from aiortc.rtcrtpreceiver import StreamStatistics

from ..core.leg_source import RtpPacketView
from ..core.rtp_header import RtpHeader, parse_rtp_header

log = logging.getLogger(__name__)

RECEIVER_STREAMS = "_RTCRtpReceiver__remote_streams"
"aiortc's per-SSRC RTCP statistics of a receiver (what its receiver reports say)."
RECEIVER_CODECS = "_RTCRtpReceiver__codecs"
DTLS_INTERNALS = ("_rx_srtp", "_rtp_router", "transport")
ICE_CONNECTION = "_connection"
CONNECTION_PROTOCOLS = "_protocols"
CONNECTION_QUEUE = "_queue"
ROUTER_SSRCS = "ssrc_table"

PacketSink = Callable[[RtpPacketView, float], None]
"Called with each RTP packet as it comes off SRTP and its arrival time (the path's clock)."


class FastAudioPath:
    """The short way for one DTLS transport's measured audio receivers.

    `packets` counts those that took it (the tests read it to know the path ran).
    """

    def __init__(self, dtls: Any, connection: Any, clock: Callable[[], float]) -> None:
        self._dtls = dtls
        self._connection = connection
        self._queue = getattr(connection, CONNECTION_QUEUE)
        self._router = dtls._rtp_router
        self._ssrcs: dict[int, Any] = getattr(self._router, ROUTER_SSRCS)
        self._clock = clock
        self._receivers: dict[Any, Callable[[RtpHeader], None]] = {}
        self._original = connection.data_received
        self.packets = 0
        self.failures = 0
        connection.data_received = self._data_received
        self._protocols: list[tuple[Any, Any]] = []
        for protocol in getattr(connection, CONNECTION_PROTOCOLS):
            self._protocols.append((protocol, self._wrap(protocol)))

    def _wrap(self, protocol: Any) -> Callable[[bytes, Any], None]:
        original = protocol.datagram_received
        take = self._take

        def datagram_received(data: bytes, addr: Any) -> None:
            if not take(data):
                original(data, addr)

        protocol.datagram_received = datagram_received
        return datagram_received

    def add(self, receiver: RTCRtpReceiver, sink: PacketSink) -> None:
        """Take this receiver's packets the short way from now on, giving them to sink."""
        streams: dict[int, StreamStatistics] = getattr(receiver, RECEIVER_STREAMS)
        codecs: dict[int, Any] = getattr(receiver, RECEIVER_CODECS)
        clock = self._clock
        receiver_any: Any = receiver

        def handle(packet: RtpHeader) -> None:
            # aiortc's _handle_rtp_packet for an audio receiver, less what only fed the
            # stopped decoder (depacketising, the jitter buffer) and the synchronization
            # sources' wall-clock stamps nothing here reads.
            if not receiver_any._enabled:
                return
            sink(packet, clock())
            codec = codecs.get(packet.payload_type)
            if codec is None:
                return
            stream = streams.get(packet.ssrc)
            if stream is None:
                stream = streams[packet.ssrc] = StreamStatistics(codec.clockRate)
            stream.add(packet)  # type: ignore[arg-type]  # reads sequence_number, timestamp

        self._receivers[receiver] = handle

    def remove(self, receiver: RTCRtpReceiver) -> None:
        self._receivers.pop(receiver, None)

    def uninstall(self) -> None:
        self._receivers.clear()
        if self._connection.__dict__.get("data_received") == self._data_received:
            del self._connection.data_received
        for protocol, wrapper in self._protocols:
            if protocol.__dict__.get("datagram_received") is wrapper:
                del protocol.datagram_received

    def _data_received(self, data: bytes, component: int) -> None:
        if not self._take(data):
            self._original(data, component)

    def _take(self, data: bytes) -> bool:
        """Handle this datagram the short way if it is one of ours; False leaves it.

        Ours: RTP (first byte 128–191, second not an RTCP type 192–223), past DTLS, of an
        SSRC aiortc has already routed to a registered receiver, with nothing older still
        queued on the usual way (so packets reach the sink in arrival order).
        """
        if len(data) < 12 or not 127 < data[0] < 192 or 191 < data[1] < 224:
            return False
        srtp = self._dtls._rx_srtp
        if srtp is None or self._queue.qsize():
            return False
        handle = self._receivers.get(self._ssrcs.get(int.from_bytes(data[8:12], "big")))
        if handle is None:
            return False
        try:
            plain = srtp.unprotect(data)
        except pylibsrtp.Error:
            return True  # as aiortc: a packet SRTP refuses (replayed, forged) is dropped
        packet = parse_rtp_header(plain)
        if packet is None:
            return True  # as aiortc: dropped
        self.packets += 1
        try:
            handle(packet)
        except Exception:
            # A fault of ours must not reach the transport (asyncio would log it per
            # packet): counted and logged once, the leg goes on.
            self.failures += 1
            if self.failures == 1:
                log.exception("fast RTP path: a packet's handling failed")
        return True


def install_fast_audio_path(
    receiver: RTCRtpReceiver,
    sink: PacketSink,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[], None] | None:
    """Take this audio receiver's SRTP packets the short way (see the module's docstring).

    Call it when aiortc's decoder for the receiver is not wanted and after the remote
    description is set (the receiver has its DTLS transport then). Returns an uninstaller,
    or None when aiortc's internals are not what this module knows (then nothing changed).
    """
    dtls: Any = receiver.transport
    try:
        for name in DTLS_INTERNALS:
            getattr(dtls, name)
        connection = getattr(dtls.transport, ICE_CONNECTION)
        getattr(dtls._rtp_router, ROUTER_SSRCS)
        getattr(connection, CONNECTION_QUEUE)
        getattr(connection, CONNECTION_PROTOCOLS)
        for name in (RECEIVER_STREAMS, RECEIVER_CODECS, "_enabled"):
            getattr(receiver, name)
    except AttributeError as exc:
        log.warning("aiortc internals changed (%s): the fast RTP path is off", exc)
        return None
    existing: FastAudioPath | None = getattr(dtls, "_qualmon_fast_path", None)
    # One per transport: with BUNDLE every m-line of the peer shares it.
    path = existing if existing is not None else FastAudioPath(dtls, connection, clock)
    dtls._qualmon_fast_path = path
    path.add(receiver, sink)
    return lambda: path.remove(receiver)
