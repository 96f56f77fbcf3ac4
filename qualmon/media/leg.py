"""One WHIP leg: a receive-only aiortc peer, its RTP tap, RTT probe and media timers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket

from ..config import Settings
from ..core.emodel import estimated_mos
from ..core.rtp_stats import Dropout, RtpLegStats
from ..core.rtt import RttTracker
from ..core.speech import SpeechSegmenter
from . import opus
from .negotiated import NegotiatedCodec, frame_time_mapper, negotiated_codec
from .offer import ValidatedOffer
from .speech import OpusPacketSpeech, SpeechPipeline
from .stun_probe import measure_rtt
from .tap import install_rtp_tap, skip_aiortc_decoding

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


@functools.cache
def _warn_no_libopus() -> None:
    log.warning(
        "libopus not found (neither in PyAV's wheel nor the system): speech activity falls "
        "back to aiortc's 48 kHz frames and a resampler, at about 2.5x the CPU per leg"
    )


class WhipLeg:
    """Receives one participant's audio and measures it; owns its tasks and peer."""

    def __init__(
        self,
        *,
        resource_id: str,
        session_id: str,
        role: str,
        settings: Settings,
        on_dropout: Callable[[WhipLeg, Dropout], None] | None = None,
        on_rtt: Callable[[WhipLeg, float], None] | None = None,
        on_dropout_in_speech: Callable[[WhipLeg, Dropout], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.resource_id = resource_id
        self.session_id = session_id
        self.role = role
        self._settings = settings
        self._clock = clock
        self._on_dropout = on_dropout
        self._on_rtt = on_rtt
        self.created_at = clock()
        self.state: LegState = "connecting"
        self.end_reason: EndReason | None = None
        self.stats = RtpLegStats(
            dropout_threshold_seconds=settings.dropout_threshold_seconds,
            recent_window_seconds=settings.recent_window_seconds,
        )
        self.rtt = RttTracker()
        self._on_dropout_in_speech = on_dropout_in_speech
        self.segmenter = SpeechSegmenter()
        # Speech comes either from tapped Opus payloads (the usual case) or, for other
        # codecs, from aiortc's decoded frames; decided once the answer is made.
        self._speech: SpeechPipeline | None = None
        self._opus_speech: OpusPacketSpeech | None = None
        self._opus_payload_type: int | None = None
        self._aiortc_decoding_wanted = True
        self._first_rtp_timestamp: int | None = None
        self._frame_time: Callable[[int], float | None] = lambda pts: None
        # Dropouts waiting until the audio after them has been classified.
        self._pending_dropouts: list[Dropout] = []
        self.dropouts_in_speech: list[Dropout] = []
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._tasks: set[asyncio.Task[None]] = set()
        self._uninstall_taps: list[Callable[[], None]] = []
        self._clock_rate = 48000
        self._closing: asyncio.Task[None] | None = None
        self.ended = asyncio.Event()

    # -- setup ---------------------------------------------------------------

    def use_segmenter(self, segmenter: SpeechSegmenter) -> None:
        """Feed speech into the role's segmenter (shared across reconnects)."""
        self.segmenter = segmenter
        if self._speech is not None:
            self._speech.segmenter = segmenter
        if self._opus_speech is not None:
            self._opus_speech.segmenter = segmenter

    async def accept(self, offer: ValidatedOffer) -> str:
        """Apply a validated offer and return the recvonly SDP answer."""
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_connection_state)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "audio":
                transceiver.direction = "recvonly"
                self._uninstall_taps.append(install_rtp_tap(transceiver.receiver, self._on_rtp))
                self._frame_time = frame_time_mapper(
                    transceiver.receiver,
                    self.stats.session_time_of,
                    lambda: self._first_rtp_timestamp,
                )
                skip_aiortc_decoding(transceiver.receiver, lambda: not self._aiortc_decoding_wanted)
            else:
                # Only audio is measured; declining video saves decoding it.
                transceiver.direction = "inactive"
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        answer = self.pc.localDescription.sdp
        codec = negotiated_codec(answer)
        self._clock_rate = codec.clock_rate
        self._start_speech(codec)
        self._spawn(self._probe_rtt())
        return answer

    def _start_speech(self, codec: NegotiatedCodec) -> None:
        """Choose the audio path; aiortc decodes only for codecs we do not decode ourselves."""
        if not self._settings.speech_enabled:
            self._aiortc_decoding_wanted = False
        elif codec.name == "opus" and opus.available():
            self._opus_speech = OpusPacketSpeech(
                segmenter=self.segmenter,
                session_time_of=self.stats.session_time_of,
                vad_mode=self._settings.vad_mode,
                clock_rate=codec.clock_rate,
            )
            self._opus_payload_type = codec.payload_type
            self._aiortc_decoding_wanted = False
        else:
            if codec.name == "opus":
                _warn_no_libopus()
            self._speech = SpeechPipeline(
                segmenter=self.segmenter,
                session_time_of=self._frame_time,
                vad_mode=self._settings.vad_mode,
            )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_track(self, track: MediaStreamTrack) -> None:
        # An unread remote track grows memory ~70 MB/min: drain every one.
        self._spawn(self._drain(track))

    async def _drain(self, track: MediaStreamTrack) -> None:
        # Frames matter only on the frame path (codecs other than Opus), which is chosen
        # after the track event: look it up per frame. Otherwise aiortc's decoder is
        # stopped and the track ends at once.
        audio = track.kind == "audio"
        recv = track.recv
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await recv()
                speech = self._speech
                if audio and speech is not None:
                    # An audio track yields AudioFrames; aiortc types recv() as Frame | Packet.
                    speech.process(frame)  # type: ignore[arg-type]
                    if self._pending_dropouts:
                        self._resolve_dropouts(final=False)
                del frame  # audio is not kept past classification

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

    @property
    def vad_frames(self) -> int:
        """20 ms frames classified so far (either audio path)."""
        for path in (self._opus_speech, self._speech):
            if path is not None:
                return path.frames_classified
        return 0

    def _on_connection_state(self) -> None:
        if self.pc.connectionState == "failed" and self.state != "ended":
            self.request_close("failed")

    # -- measurement ---------------------------------------------------------

    def _on_rtp(self, packet: RtpPacket, arrival_seconds: float) -> None:
        if self.state == "ended":
            return
        if self._first_rtp_timestamp is None:
            self._first_rtp_timestamp = packet.timestamp
        payload = packet.payload
        dropout = self.stats.on_packet(
            ssrc=packet.ssrc,
            sequence_number=packet.sequence_number,
            rtp_timestamp=packet.timestamp,
            clock_rate=self._clock_rate,
            payload_bytes=len(payload),
            arrival_seconds=arrival_seconds,
        )
        if self.state in ("connecting", "stalled"):
            self.state = "live"
        if dropout is not None:
            self.segmenter.add_unknown(dropout.media_start, dropout.media_end)
            self._pending_dropouts.append(dropout)
            if self._on_dropout is not None:
                self._on_dropout(self, dropout)
        speech = self._opus_speech
        if speech is not None and packet.payload_type == self._opus_payload_type:
            speech.on_packet(
                ssrc=packet.ssrc,
                sequence_number=packet.sequence_number,
                rtp_timestamp=packet.timestamp,
                payload=payload,
            )
            if self._pending_dropouts:
                self._resolve_dropouts(final=False)

    async def _probe_rtt(self) -> None:
        interval = self._settings.rtt_probe_interval_seconds
        while True:
            await asyncio.sleep(interval)
            if self.state not in ("live", "stalled"):
                continue
            rtt = await measure_rtt(self.pc, clock=self._clock)
            if rtt is None:
                self.rtt.add_timeout()
                continue
            self.rtt.add_sample(rtt, self._clock())
            if self._on_rtt is not None:
                self._on_rtt(self, rtt)

    # -- timers --------------------------------------------------------------

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
            if self._pending_dropouts:
                # No audio is coming to tell; a gap nobody spoke around is not "in speech".
                self._resolve_dropouts(final=True)

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
        rtt = self.rtt.snapshot(now)
        mos = self.mos(now, rtt.rtt_seconds)
        return LegSnapshot(
            state=self.state,
            end_reason=self.end_reason,
            packets_received=rtp.packets_received,
            packets_expected=rtp.packets_expected,
            packets_lost=rtp.packets_lost,
            loss_ratio=rtp.loss_ratio,
            recent_loss_ratio=rtp.recent_loss_ratio,
            jitter_seconds=rtp.jitter_seconds,
            rtt_seconds=rtt.rtt_seconds,
            mos=mos,
            dropouts=rtp.dropouts,
            dropout_seconds=rtp.dropout_seconds,
            bitrate_bps=rtp.bitrate_bps,
            seconds_since_last_packet=self.stats.seconds_since_last_packet(now),
            dropouts_in_speech=len(self.dropouts_in_speech),
            dropout_in_speech_seconds=sum(d.duration_seconds for d in self.dropouts_in_speech),
        )

    # -- teardown ------------------------------------------------------------

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
        for uninstall in self._uninstall_taps:
            uninstall()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        try:
            # A dead peer can make close() wait on DTLS/ICE; never let it hang a leg.
            await asyncio.wait_for(self.pc.close(), self._settings.close_timeout_seconds)
        except TimeoutError:
            log.warning("peer connection close timed out (leg %s)", self.resource_id[:8])
        except Exception:
            log.exception("peer connection close failed (leg %s)", self.resource_id[:8])
        await asyncio.gather(*tasks, return_exceptions=True)
        self._resolve_dropouts(final=True)
        if self._speech is not None:
            self._speech.close()
            self._speech = None
        if self._opus_speech is not None:
            self._opus_speech.close()
            self._opus_speech = None
        self.ended.set()
