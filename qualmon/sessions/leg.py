"""One measured leg: what a source delivers, turned into loss, jitter, RTT, dropouts and speech.

The leg knows nothing of how media arrives (see `core/leg_source.py`): a WHIP peer and a
plain-RTP port feed it the same way. Its timers are its own, since aiortc notices a dead
peer only after ~30 s: 2 s without RTP is a stall, 20 s a lost leg.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..config import Settings
from ..core.emodel import estimated_mos
from ..core.leg_source import LegSource, RtpPacketView
from ..core.rtp_stats import Dropout, RtpLegStats
from ..core.rtt import RttTracker
from ..core.speech import SpeechSegmenter
from ..core.video import VideoCodec, VideoSnapshot, VideoStats
from ..core.voice import VoiceClassifier

log = logging.getLogger(__name__)

LegState = Literal["connecting", "live", "stalled", "ended"]
EndReason = Literal["closed", "lost", "replaced", "failed", "never_connected", "shutdown"]


@dataclass(frozen=True)
class LegSnapshot:
    """One leg's measurements at one moment (monotonic times)."""

    state: LegState
    end_reason: EndReason | None
    packets_received: int
    packets_expected: int
    packets_lost: int
    loss_ratio: float
    recent_loss_ratio: float
    jitter_seconds: float
    rtt_seconds: float | None
    mos: float | None
    "Estimated MOS (E-model); None before the first packet."
    dropouts: int
    dropout_seconds: float
    bitrate_bps: float
    seconds_since_last_packet: float | None
    dropouts_in_speech: int
    "Dropouts with speech just before and after them: words the listener lost."
    dropout_in_speech_seconds: float
    video: VideoSnapshot | None = None
    "The leg's video (RTP-level frames, freezes, resolution); None for an audio-only leg."


class Leg:
    """A participant's leg as the session sees it; fed by a `LegSource`, owns its timers."""

    def __init__(
        self,
        *,
        resource_id: str,
        session_id: str,
        role: str,
        settings: Settings,
        on_dropout: Callable[[Leg, Dropout], None] | None = None,
        on_rtt: Callable[[Leg, float], None] | None = None,
        on_dropout_in_speech: Callable[[Leg, Dropout], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.resource_id = resource_id
        self.session_id = session_id
        self.role = role
        self._settings = settings
        self._clock = clock
        self._on_dropout = on_dropout
        self._on_rtt = on_rtt
        self._on_dropout_in_speech = on_dropout_in_speech
        self.created_at = clock()
        self.state: LegState = "connecting"
        self.end_reason: EndReason | None = None
        self.stats = RtpLegStats(
            dropout_threshold_seconds=settings.dropout_threshold_seconds,
            recent_window_seconds=settings.recent_window_seconds,
        )
        self.rtt = RttTracker()
        self.segmenter = SpeechSegmenter()
        self.voice = VoiceClassifier(self.segmenter)
        self._clock_rate_hz = 48000
        # Dropouts waiting until the audio after them has been classified.
        self._pending_dropouts: list[Dropout] = []
        self.dropouts_in_speech: list[Dropout] = []
        self.video: VideoStats | None = None
        "Set when the source says the leg carries video (`use_video_codec`)."
        self.source: LegSource[Any] | None = None
        "Released when the leg ends, with every native resource behind it."
        self._frames_at_close = 0
        self._closing: asyncio.Task[None] | None = None
        self.ended = asyncio.Event()

    @property
    def kind(self) -> str:
        return self.source.kind if self.source is not None else "none"

    def use_segmenter(self, segmenter: SpeechSegmenter, voice: VoiceClassifier) -> None:
        """Feed speech into the role's classifier and segmenter (shared across reconnects);
        `voice` feeds `segmenter`."""
        self.segmenter = segmenter
        self.voice = voice

    # -- LegFeed: what the source delivers ----------------------------------------

    def use_clock_rate(self, clock_rate_hz: int) -> None:
        self._clock_rate_hz = clock_rate_hz

    def on_rtp(self, packet: RtpPacketView, arrival_seconds: float) -> None:
        if self.state == "ended":
            return
        dropout = self.stats.on_packet(
            ssrc=packet.ssrc,
            sequence_number=packet.sequence_number,
            rtp_timestamp=packet.timestamp,
            clock_rate=self._clock_rate_hz,
            payload_bytes=len(packet.payload),
            arrival_seconds=arrival_seconds,
        )
        if self.state != "live":
            self.state = "live"
        if dropout is not None:
            self.segmenter.add_unknown(dropout.media_start, dropout.media_end)
            self._pending_dropouts.append(dropout)
            if self._on_dropout is not None:
                self._on_dropout(self, dropout)

    def use_video_codec(self, codec: VideoCodec) -> None:
        if self.video is None or self.video.codec != codec:
            self.video = VideoStats(codec)

    def on_video_rtp(self, packet: RtpPacketView, arrival_seconds: float) -> None:
        # Video says nothing of the leg's liveness: its timers and state follow the audio,
        # which a browser keeps sending (silence included) while the camera may be off.
        video = self.video
        if video is None or self.state == "ended":
            return
        video.on_packet(
            ssrc=packet.ssrc,
            sequence_number=packet.sequence_number,
            rtp_timestamp=packet.timestamp,
            marker=bool(packet.marker),
            payload=packet.payload,
            arrival_seconds=arrival_seconds,
        )

    def note_keyframe_request(self) -> None:
        if self.video is not None:
            self.video.note_keyframe_request()

    def add_frame(
        self,
        start: float,
        seconds: float,
        is_speech: bool,
        level_dbfs: float | None = None,
        low_band_ratio: float | None = None,
        periodicity: float | None = None,
    ) -> None:
        self.voice.add_frame(start, seconds, is_speech, level_dbfs, low_band_ratio, periodicity)
        if self._pending_dropouts:
            self._resolve_dropouts(final=False)

    def add_level(self, at: float, rms: float) -> None:
        self.voice.add_level(at, rms)

    def on_rtt(self, rtt_seconds: float | None) -> None:
        if rtt_seconds is None:
            self.rtt.add_timeout()
            return
        self.rtt.add_sample(rtt_seconds, self._clock())
        if self._on_rtt is not None:
            self._on_rtt(self, rtt_seconds)

    def on_failed(self) -> None:
        if self.state != "ended":
            self.request_close("failed")

    def session_time_of(self, rtp_timestamp: int) -> float | None:
        return self.stats.session_time_of(rtp_timestamp)

    @property
    def receiving(self) -> bool:
        return self.state in ("live", "stalled")

    # -- measures --------------------------------------------------------------

    @property
    def vad_frames(self) -> int:
        """20 ms frames classified so far by the source's speech path."""
        source = self.source
        return source.frames_classified if source is not None else self._frames_at_close

    def seconds_since_last_packet(self, now: float) -> float | None:
        return self.stats.seconds_since_last_packet(now)

    def rtt_seconds(self, now: float) -> float | None:
        return self.rtt.snapshot(now).rtt_seconds

    def mos(self, now: float, rtt_seconds: float | None) -> float | None:
        """Estimated MOS (E-model) now; None before the first packet."""
        if not self.stats.packets_received:
            return None
        return estimated_mos(
            rtt_seconds=rtt_seconds,
            jitter_seconds=self.stats.jitter_seconds,
            loss_ratio=self.stats.recent_loss_ratio(now),
            params=self._settings.emodel,
        )

    def snapshot(self, now: float) -> LegSnapshot:
        rtp = self.stats.snapshot(now)
        rtt_seconds = self.rtt_seconds(now)
        return LegSnapshot(
            state=self.state,
            end_reason=self.end_reason,
            packets_received=rtp.packets_received,
            packets_expected=rtp.packets_expected,
            packets_lost=rtp.packets_lost,
            loss_ratio=rtp.loss_ratio,
            recent_loss_ratio=rtp.recent_loss_ratio,
            jitter_seconds=rtp.jitter_seconds,
            rtt_seconds=rtt_seconds,
            mos=self.mos(now, rtt_seconds),
            dropouts=rtp.dropouts,
            dropout_seconds=rtp.dropout_seconds,
            bitrate_bps=rtp.bitrate_bps,
            seconds_since_last_packet=self.stats.seconds_since_last_packet(now),
            dropouts_in_speech=len(self.dropouts_in_speech),
            dropout_in_speech_seconds=sum(d.duration_seconds for d in self.dropouts_in_speech),
            video=self.video.snapshot(now) if self.video is not None else None,
        )

    # -- timers ------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Apply the no-media timers; aiortc itself notices a dead peer only after ~30 s."""
        if self.state == "ended":
            return
        silent = self.stats.seconds_since_last_packet(now)
        if silent is None:
            if now - self.created_at >= self._settings.connect_timeout_seconds:
                self.request_close("never_connected")
            return
        if silent >= self._settings.lost_after_seconds:
            self.request_close("lost")
        elif silent >= self._settings.stall_after_seconds:
            self.state = "stalled"
            self.voice.flush()  # no audio is coming to finish the held run
            if self._pending_dropouts:
                # No audio is coming to tell; a gap nobody spoke around is not "in speech".
                self._resolve_dropouts(final=True)

    def _resolve_dropouts(self, *, final: bool) -> None:
        still: list[Dropout] = []
        for dropout in self._pending_dropouts:
            verdict = self.segmenter.speech_around(dropout.media_start, dropout.media_end)
            if verdict is None and not final:
                still.append(dropout)
            elif verdict:
                self.dropouts_in_speech.append(dropout)
                if self._on_dropout_in_speech is not None:
                    self._on_dropout_in_speech(self, dropout)
        self._pending_dropouts = still

    # -- teardown ----------------------------------------------------------------

    def request_close(self, reason: EndReason) -> asyncio.Task[None]:
        """End the leg (idempotent); the first reason given wins."""
        if self._closing is None:
            self.end_reason = reason
            self.state = "ended"
            self._closing = asyncio.ensure_future(self._close())
        return self._closing

    async def close(self, reason: EndReason) -> None:
        await asyncio.shield(self.request_close(reason))

    async def _close(self) -> None:
        source = self.source
        try:
            if source is not None:
                try:
                    await source.close()
                except Exception:
                    log.exception("leg source close failed (leg %s)", self.resource_id[:8])
                self._frames_at_close = source.frames_classified
            self.voice.flush()
            self._resolve_dropouts(final=True)
        finally:
            # Whatever happened while closing (even a cancellation from inside the media
            # stack), the leg has ended: DELETE, shutdown and the report wait on this.
            self.source = None
            self.ended.set()
