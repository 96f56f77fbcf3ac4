"""Tap RTP packets before aiortc's jitter buffer, which is no measuring instrument.

With fast_rtp.py, one of the two modules that touch aiortc's internals (here the receiver's
`_handle_rtp_packet`, `receive`, the name-mangled `__stop_decoder`, `_send_rtcp_pli`);
tests/media/test_tap.py fails loudly when aiortc renames one. Packets that fast_rtp.py takes
the short way reach the same sink without passing `_handle_rtp_packet`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.rtp import RtpPacket

log = logging.getLogger(__name__)

PLI_SENDER = "_send_rtcp_pli"
"aiortc 1.16's receiver method that sends a Picture Loss Indication; it sends no FIR."
DECODER_STOPPER = "_RTCRtpReceiver__stop_decoder"

PacketSink = Callable[[RtpPacket, float], None]
"Called with each RTP packet as it comes off SRTP and its arrival time (the tap's clock)."


def install_rtp_tap(
    receiver: RTCRtpReceiver,
    sink: PacketSink,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[], None]:
    """Route every RTP packet of this receiver through sink first; returns an uninstaller.

    RTCDtlsTransport looks up `receiver._handle_rtp_packet` on each packet, so an
    instance attribute sees packets as they come off SRTP, before NACK, depacketising
    and the jitter buffer (which hides loss as 100 ms gaps and adds delay).
    """
    original = receiver._handle_rtp_packet

    # A plain function handing back the original coroutine: no extra coroutine frame per
    # packet (this runs 50 times a second per leg).
    def tapped(packet: RtpPacket, arrival_time_ms: int) -> Coroutine[Any, Any, None]:
        sink(packet, clock())
        return original(packet, arrival_time_ms)

    receiver_any: Any = receiver
    receiver_any._handle_rtp_packet = tapped

    def uninstall() -> None:
        if receiver_any.__dict__.get("_handle_rtp_packet") is tapped:
            del receiver_any._handle_rtp_packet

    return uninstall


def skip_aiortc_decoding(receiver: RTCRtpReceiver, wanted: Callable[[], bool]) -> None:
    """Stop aiortc's decoder thread for this receiver once it starts, if wanted() then.

    Used when nothing needs aiortc's 48 kHz stereo frames (speech is decoded from tapped
    payloads, or speech is off): its thread-per-receiver decode and the hop of every frame
    onto the event loop cost more than our whole speech path. Packets still go through
    aiortc's receiver (RTCP reports, jitter buffer); completed frames are just not decoded.
    The remote track then ends at once, so nothing queues up unread.
    """
    original = receiver.receive
    receiver_any: Any = receiver

    async def receive(parameters: Any) -> None:
        await original(parameters)
        stop = getattr(receiver, DECODER_STOPPER, None)
        if stop is not None and wanted():
            stop()

    receiver_any.receive = receive


def count_keyframe_requests(
    receiver: RTCRtpReceiver, on_request: Callable[[], None]
) -> Callable[[], None]:
    """Call on_request each time this receiver sends the sender a keyframe request; returns
    an uninstaller.

    aiortc's receiver asks for a keyframe with a PLI (jitter buffer overrun, decoder error)
    and never with a FIR, so wrapping its PLI method sees every request it makes. If aiortc
    renamed the method, requests go uncounted (logged once per receiver), never a failed leg.
    """
    original = getattr(receiver, PLI_SENDER, None)
    if original is None:
        log.warning("aiortc receiver has no %s: keyframe requests are not counted", PLI_SENDER)
        return lambda: None

    def counted(media_ssrc: int) -> Coroutine[Any, Any, None]:
        on_request()
        result: Coroutine[Any, Any, None] = original(media_ssrc)
        return result

    receiver_any: Any = receiver
    setattr(receiver_any, PLI_SENDER, counted)

    def uninstall() -> None:
        if receiver_any.__dict__.get(PLI_SENDER) is counted:
            delattr(receiver_any, PLI_SENDER)

    return uninstall
