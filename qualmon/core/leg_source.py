"""The leg-source interface: what any media edge hands a measured leg, and how it stops.

A session is fed by legs; each leg is fed by one source. A WHIP peer is the first source
(`media/whip_source.py`); a plain-RTP port or an SFU forwarder is another class with the same
shape. Sources (media) and the session layer both import this module and never each other,
so a new kind of ingest is a new file in media/, not an edit to sessions, warnings or reports.
It lives in the core because it is protocols only: no IO, no clock, no aiortc.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from .video import VideoCodec


class RtpPacketView(Protocol):
    """An RTP packet as a source hands it over; aiortc's `RtpPacket` is one."""

    @property
    def ssrc(self) -> int: ...
    @property
    def sequence_number(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def payload_type(self) -> int: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def marker(self) -> int:
        """The RTP marker bit, 0 or 1 (aiortc keeps it as an int): a video frame's last
        packet."""
        ...


class VoiceSink(Protocol):
    """Where 20 ms speech decisions and audio levels go, on the session clock (seconds).

    `core.voice.VoiceClassifier` is one; `core.speech.SpeechSegmenter` too (it takes the
    decisions as given); the measured leg is another (it passes frames to its role's
    classifier and settles whether a dropout fell inside speech).
    """

    def add_frame(
        self,
        start: float,
        seconds: float,
        is_speech: bool,
        level_dbfs: float | None = None,
        low_band_ratio: float | None = None,
        periodicity: float | None = None,
    ) -> None:
        """One webrtcvad decision; the frame's level and, for speech frames, the share of its
        energy below 1 kHz and its periodicity (autocorrelation peak at a pitch lag over
        energy), which `core.voice.VoiceClassifier` uses to tell voice from breaths, floors
        and echo (None where the source has only decisions)."""
        ...

    def add_level(self, at: float, rms: float) -> None: ...


class LegFeed(VoiceSink, Protocol):
    """What a source delivers to: the measured leg of `qualmon.sessions`."""

    def use_clock_rate(self, clock_rate_hz: int) -> None:
        """The negotiated codec's RTP clock rate, once known (before the first packet)."""
        ...

    def on_rtp(self, packet: RtpPacketView, arrival_seconds: float) -> None:
        """Every RTP packet as it arrives, before any jitter buffer (monotonic seconds)."""
        ...

    def use_video_codec(self, codec: VideoCodec) -> None:
        """The leg also carries video in this codec (once the answer is made, before the
        first video packet); a leg never told has no video measures."""
        ...

    def on_video_rtp(self, packet: RtpPacketView, arrival_seconds: float) -> None:
        """Every RTP packet of the video stream (its negotiated codec's payload type only,
        no retransmissions), before any jitter buffer (monotonic seconds)."""
        ...

    def note_keyframe_request(self) -> None:
        """The source's receiver asked the video sender for a keyframe (PLI or FIR)."""
        ...

    def on_rtt(self, rtt_seconds: float | None) -> None:
        """One round-trip measurement; None when a probe got no answer in time."""
        ...

    def on_failed(self) -> None:
        """The transport gave up (ICE or DTLS failed); the leg ends."""
        ...

    def session_time_of(self, rtp_timestamp: int) -> float | None:
        """Session time (seconds) of an RTP timestamp; None before the first packet."""
        ...

    @property
    def receiving(self) -> bool:
        """Media has flowed and the leg has not ended (worth probing RTT)."""
        ...


AnswerT_co = TypeVar("AnswerT_co", covariant=True)


class LegSource(Protocol[AnswerT_co]):
    """The media end of one leg. Built around a `LegFeed`, then started once.

    `start()` returns what the caller must hand back to the sender (a WHIP source: the SDP
    answer). `close()` stops media and frees every native resource; it is idempotent and
    bounded in time, since a dead peer must never hang a leg.
    """

    kind: str
    "What kind of ingest this is ('whip', …), for logs and the API."

    async def start(self) -> AnswerT_co: ...
    async def close(self) -> None: ...

    @property
    def frames_classified(self) -> int:
        """20 ms audio frames this source's speech path classified so far."""
        ...
