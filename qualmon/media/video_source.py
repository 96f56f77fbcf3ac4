"""A WHIP leg's video: its receiver's RTP tapped into the leg's video measures, never decoded.

Frame rate, freezes and resolution come from RTP headers and payload descriptors alone
(`core/video.py`), so aiortc's video decoder is stopped as soon as it starts: no decoder
thread, no frames queued on a track nobody reads. The receiver still runs RTCP (receiver
reports, NACK, REMB) and its own PLIs, which are counted.
"""

from __future__ import annotations

from collections.abc import Callable

from aiortc import RTCRtpTransceiver
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription

from ..core.leg_source import LegFeed
from ..core.video import VideoCodec
from .tap import count_keyframe_requests, install_rtp_tap, skip_aiortc_decoding


class VideoReceiving:
    """The measured video of one leg: one recvonly transceiver, tapped.

    Built after the offer is applied and before the answer is made; `use_answer` then says
    which codec was negotiated. Only packets of that codec's payload types reach the leg:
    RTX retransmissions (their own SSRC and payload type) would read as a new stream.
    """

    def __init__(
        self, feed: LegFeed, transceiver: RTCRtpTransceiver, codecs: dict[int, VideoCodec]
    ) -> None:
        self._feed = feed
        self._codecs = codecs
        self._mid = transceiver.mid
        self._payload_types: frozenset[int] = frozenset()
        self._closed = False
        transceiver.direction = "recvonly"
        receiver = transceiver.receiver
        self._uninstall: list[Callable[[], None]] = [
            install_rtp_tap(receiver, self._on_rtp),
            count_keyframe_requests(receiver, self._on_keyframe_request),
        ]
        skip_aiortc_decoding(receiver, lambda: True)

    @property
    def codec(self) -> VideoCodec | None:
        """The negotiated codec, once the answer is made."""
        for pt in self._payload_types:
            return self._codecs[pt]
        return None

    def use_answer(self, answer_sdp: str) -> None:
        """Take the codec aiortc's answer put first for this section (the sender uses it)."""
        media = next(
            (
                m
                for m in SessionDescription.parse(answer_sdp).media
                if m.kind == "video" and (self._mid is None or m.rtp.muxId == self._mid)
            ),
            None,
        )
        chosen = (
            next((self._codecs[pt] for pt in media.fmt if pt in self._codecs), None)
            if media
            else None
        )
        if media is None or chosen is None:
            return  # nothing we measure was accepted: the leg stays without video measures
        self._payload_types = frozenset(
            pt for pt in media.fmt if isinstance(pt, int) and self._codecs.get(pt) == chosen
        )
        self._feed.use_video_codec(chosen)

    def close(self) -> None:
        self._closed = True
        for uninstall in self._uninstall:
            uninstall()

    def _on_rtp(self, packet: RtpPacket, arrival_seconds: float) -> None:
        if not self._closed and packet.payload_type in self._payload_types:
            self._feed.on_video_rtp(packet, arrival_seconds)

    def _on_keyframe_request(self) -> None:
        if not self._closed:
            self._feed.note_keyframe_request()
