"""A WHIP leg's media end: a receive-only aiortc peer, its RTP tap, speech path, RTT probe
and, when the offer sends video, its tapped video (`video_source.py`).

Everything measured goes to the leg (`LegFeed`) as it arrives; nothing is measured here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcicetransport import RTCIceCandidate
from aiortc.sdp import candidate_from_sdp

from ..config import Settings
from ..core.leg_source import LegFeed, RtpPacketView
from . import opus
from .fast_rtp import install_fast_audio_path
from .negotiated import NegotiatedCodec, frame_time_mapper, negotiated_codec
from .offer import OfferError, ValidatedOffer, check_candidate
from .speech import OpusPacketSpeech, SpeechPipeline
from .stun_probe import measure_rtt
from .tap import install_rtp_tap, skip_aiortc_decoding
from .video_source import VideoReceiving

log = logging.getLogger(__name__)


class TrickleError(ValueError):
    """A trickle fragment that cannot be applied; the message is safe to show the client."""


class IceRestartError(TrickleError):
    """The fragment asks for an ICE restart (new ufrag/pwd), which is not supported."""


@functools.cache
def _warn_no_libopus() -> None:
    log.warning(
        "libopus not found (neither in PyAV's wheel nor the system): speech activity falls "
        "back to aiortc's 48 kHz frames and a resampler, at about 2.5x the CPU per leg"
    )


async def _within(work: asyncio.Future[Any], seconds: float, what: str) -> None:
    """Wait for `work` at most `seconds`; past that, cancel it and go on without it."""
    done, _ = await asyncio.wait({work}, timeout=seconds)
    if not done:
        work.cancel()
        work.add_done_callback(_retrieve)
        log.warning("%s did not finish within %.0f s; left behind", what, seconds)
        return
    exc = None if work.cancelled() else work.exception()
    if exc is not None:
        log.error("%s failed: %s", what, type(exc).__name__)


def _retrieve(work: asyncio.Future[Any]) -> None:
    # Read the outcome of work left behind, so asyncio does not log it as never retrieved.
    if not work.cancelled():
        work.exception()


class WhipSource:
    """Receives one participant's audio (and video) over WHIP and hands it to its leg."""

    kind = "whip"

    def __init__(self, feed: LegFeed, *, offer: ValidatedOffer, settings: Settings) -> None:
        self._feed = feed
        self._offer = offer
        self._settings = settings
        # Speech comes either from tapped Opus payloads (the usual case) or, for other
        # codecs, from aiortc's decoded frames; decided once the answer is made.
        self._speech: SpeechPipeline | None = None
        self._opus_speech: OpusPacketSpeech | None = None
        self._opus_payload_type: int | None = None
        self._aiortc_decoding_wanted = True
        self._first_rtp_timestamp: int | None = None
        self._frame_time: Callable[[int], float | None] = lambda pts: None
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._tasks: set[asyncio.Task[None]] = set()
        self._uninstall_taps: list[Callable[[], None]] = []
        self.video: VideoReceiving | None = None
        "The measured video, when the offer sends VP8 or H.264 (`media/video_source.py`)."
        self._frames_classified = 0
        self._closed = False

    # -- LegSource ---------------------------------------------------------------

    async def start(self) -> str:
        """Apply the validated offer and return the recvonly SDP answer."""
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_connection_state)
        sdp = self._offer.sdp
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "audio":
                transceiver.direction = "recvonly"
                self._uninstall_taps.append(install_rtp_tap(transceiver.receiver, self._on_rtp))
                self._frame_time = frame_time_mapper(
                    transceiver.receiver,
                    self._feed.session_time_of,
                    lambda: self._first_rtp_timestamp,
                )
                skip_aiortc_decoding(transceiver.receiver, lambda: not self._aiortc_decoding_wanted)
            elif self._is_measured_video(transceiver.kind, transceiver.mid):
                self.video = VideoReceiving(
                    self._feed, transceiver, self._offer.video_payload_codecs
                )
            else:
                # A video section that does not send: declining it saves receiving it.
                transceiver.direction = "inactive"
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        answer: str = self.pc.localDescription.sdp
        if self.video is not None:
            self.video.use_answer(answer)
        codec = negotiated_codec(answer)
        self._feed.use_clock_rate(codec.clock_rate)
        self._start_speech(codec)
        self._take_fast_path()
        self._spawn(self._probe_rtt())
        return answer

    def _take_fast_path(self) -> None:
        # Only where aiortc's decoder is stopped: the short way skips what feeds it.
        if not self._settings.fast_rtp or self._aiortc_decoding_wanted:
            return
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "audio":
                uninstall = install_fast_audio_path(transceiver.receiver, self._on_rtp)
                if uninstall is not None:
                    self._uninstall_taps.append(uninstall)

    def _is_measured_video(self, kind: str, mid: str | None) -> bool:
        wanted = self._offer.video_mid
        return (
            kind == "video"
            and self.video is None
            and bool(self._offer.video_payload_codecs)
            and (wanted is None or mid == wanted)
        )

    @property
    def frames_classified(self) -> int:
        for path in (self._opus_speech, self._speech):
            if path is not None:
                return path.frames_classified
        return self._frames_classified

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for uninstall in self._uninstall_taps:
            uninstall()
        if self.video is not None:
            self.video.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # A dead peer can make aiortc's close() wait on DTLS/ICE, and a close cancelled
        # half-way can leave it waiting for ever; asyncio.wait_for would then wait for the
        # cancellation too. Bounded waits that give up, never a hung leg.
        timeout = self._settings.close_timeout_seconds
        await _within(asyncio.ensure_future(self.pc.close()), timeout, "peer connection close")
        if tasks:
            await _within(asyncio.gather(*tasks, return_exceptions=True), timeout, "leg tasks")
        self._frames_classified = self.frames_classified
        if self._speech is not None:
            self._speech.close()
            self._speech = None
        if self._opus_speech is not None:
            self._opus_speech.close()
            self._opus_speech = None

    # -- trickle ICE (PATCH) -------------------------------------------------------

    async def add_trickle(self, fragment_lines: list[str]) -> None:
        """Apply a trickle-ICE SDP fragment's candidates; TrickleError if it cannot be."""
        remote = self.pc.remoteDescription
        for line in fragment_lines:
            if line.startswith(("a=ice-ufrag:", "a=ice-pwd:")):
                value = line.split(":", 1)[1]
                if remote is None or value not in remote.sdp:
                    raise IceRestartError("ICE restart is not supported")
        candidates: list[RTCIceCandidate] = []
        for line in fragment_lines:
            if line.startswith("a=candidate:"):
                value = line[len("a=candidate:") :]
                try:
                    check_candidate(value)  # aiortc int()s "٣" as 3
                    candidate = candidate_from_sdp(value)
                except (OfferError, ValueError, IndexError, KeyError, AssertionError):
                    raise TrickleError("bad candidate line") from None
                candidates.append(candidate)
        mid = next((t.mid for t in self.pc.getTransceivers() if t.kind == "audio"), None)
        for candidate in candidates:
            try:
                ipaddress.ip_address(candidate.ip)
            except ValueError:
                continue  # host names (mDNS) would make aioice resolve DNS inside the loop
            candidate.sdpMid = mid
            await self.pc.addIceCandidate(candidate)

    # -- internals -----------------------------------------------------------------

    def _start_speech(self, codec: NegotiatedCodec) -> None:
        """Choose the audio path; aiortc decodes only for codecs we do not decode ourselves."""
        if not self._settings.speech_enabled:
            self._aiortc_decoding_wanted = False
        elif codec.name == "opus" and opus.available():
            self._opus_speech = OpusPacketSpeech(
                sink=self._feed,
                session_time_of=self._feed.session_time_of,
                vad_mode=self._settings.vad_mode,
                clock_rate=codec.clock_rate,
            )
            self._opus_payload_type = codec.payload_type
            self._aiortc_decoding_wanted = False
        else:
            if codec.name == "opus":
                _warn_no_libopus()
            self._speech = SpeechPipeline(
                sink=self._feed,
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
                del frame  # audio is not kept past classification

    def _on_connection_state(self) -> None:
        if self.pc.connectionState == "failed":
            self._feed.on_failed()

    def _on_rtp(self, packet: RtpPacketView, arrival_seconds: float) -> None:
        if self._closed:
            return
        if self._first_rtp_timestamp is None:
            self._first_rtp_timestamp = packet.timestamp
        self._feed.on_rtp(packet, arrival_seconds)
        speech = self._opus_speech
        if speech is not None and packet.payload_type == self._opus_payload_type:
            speech.on_packet(
                ssrc=packet.ssrc,
                sequence_number=packet.sequence_number,
                rtp_timestamp=packet.timestamp,
                payload=packet.payload,
            )

    async def _probe_rtt(self) -> None:
        interval = self._settings.rtt_probe_interval_seconds
        # Not `while True`: a cancellation lost on the way (Python 3.11's wait_for could lose
        # one; measure_rtt no longer uses it) must not keep the loop, and the peer it holds,
        # alive after close; that once hung a leg's close in a 30-minute soak.
        while not self._closed:
            await asyncio.sleep(interval)
            if self._feed.receiving and not self._closed:
                self._feed.on_rtt(await measure_rtt(self.pc))
