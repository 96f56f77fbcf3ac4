"""Video quality from RTP alone: frames, frame rate, freezes, pauses, keyframes, resolution.

No frame is decoded. Packets are grouped into frames by RTP timestamp; a frame is complete
when every packet from its first (the payload header says where a frame starts) to the one
with the marker bit arrived. Freezes follow the W3C webrtc-stats definition on complete
frames: an inter-frame delay ≥ max(3 × the mean of the last 30 delays, mean + 150 ms),
judged once 5 delays were seen; a pause is > 5 s without a frame (not a freeze).

Pure: numbers in, numbers out, time passed in.

Rules, precisely (as libwebrtc's VideoQualityObserver judges rendered frames):
- A frame's time is the arrival of the packet that completed it (the last to arrive).
- Only complete frames are frames: an incomplete frame is skipped, so one lost frame at
  30 fps makes a 67 ms inter-frame delay, far below the 183 ms freeze threshold; only a run
  of ≥ 5 lost frames (a stall the viewer sees) reaches it.
- The mean is over the last 30 delays *including* the one judged; a delay is judged once
  the window holds 5 delays (the 6th complete frame's is the first judged).
- A delay > 5 s is a pause: counted in pauses/pause_seconds, kept out of the freeze window;
  `snapshot(now)` counts a pause in progress (> 5 s since the last complete frame).
- A new SSRC is a new stream: frames waiting are given up, the freeze window, the last
  frame time and the picture size start afresh (the gap across the switch is judged by
  nobody but a pause in progress, closed then); totals keep counting.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from .rtp_stats import RtpLegStats
from .video_frames import FrameAssembler
from .video_payload import VideoCodec, parse_payload

__all__ = ["VideoCodec", "VideoSnapshot", "VideoStats"]

CLOCK_RATE_HZ = 90000
FREEZE_MIN_EXTRA_SECONDS = 0.150
FREEZE_FACTOR = 3.0
FREEZE_WINDOW_FRAMES = 30
FREEZE_MIN_FRAMES = 5
PAUSE_SECONDS = 5.0
FPS_WINDOW_SECONDS = 1.0
FPS_MEMORY_FRAMES = 512
"Arrival times kept for the frame rate: rates above 512 fps read as 512."
BITRATE_WINDOW_SECONDS = 1.0
BITRATE_MEMORY_PACKETS = 4096
"Packets kept for the bitrate: above 4096 packets/s (~40 Mbit/s) it reads low."


@dataclass(frozen=True)
class VideoSnapshot:
    """One video leg's measures at one moment."""

    codec: VideoCodec
    frames_received: int
    "Complete frames."
    frames_incomplete: int
    "Frames with a packet missing (lost), given up once a later frame completed."
    frames_per_second: float
    "Complete frames in the last second."
    freezes: int
    freeze_seconds: float
    "Sum of the inter-frame delays that were freezes."
    pauses: int
    pause_seconds: float
    keyframes: int
    width: int | None
    height: int | None
    "From the last keyframe's payload header (VP8) or SPS (H.264); None before one."
    packets_received: int
    packets_lost: int
    loss_ratio: float
    jitter_seconds: float
    "RFC 3550 interarrival jitter at 90 kHz."
    bitrate_bps: float
    "Over the last second."
    keyframe_requests: int
    "PLI/FIR qualmon's receiver sent."


class VideoStats:
    """One video stream's measures (one SSRC at a time; a new SSRC starts afresh)."""

    def __init__(self, codec: VideoCodec) -> None:
        self.codec: VideoCodec = codec
        # Loss, jitter and duplicates: rtp_stats' RFC 3550 arithmetic at 90 kHz. Its
        # dropouts are audio's notion (a missing stretch of speech): never recorded. Its
        # bitrate spans 1–1.25 s of checkpoints; the last second is counted here instead.
        self._rtp = RtpLegStats(dropout_threshold_seconds=math.inf)
        self._recent: deque[tuple[float, int]] = deque()
        self._recent_bytes = 0
        self._frames = FrameAssembler()
        self._ssrc: int | None = None
        self._delays: deque[float] = deque(maxlen=FREEZE_WINDOW_FRAMES)
        self._last_frame_at: float | None = None
        self._frame_times: deque[float] = deque(maxlen=FPS_MEMORY_FRAMES)
        self.frames_received = 0
        self.freezes = 0
        self.freeze_seconds = 0.0
        self.pauses = 0
        self.pause_seconds = 0.0
        self.keyframe_requests = 0

    def on_packet(
        self,
        *,
        ssrc: int,
        sequence_number: int,
        rtp_timestamp: int,
        marker: bool,
        payload: bytes,
        arrival_seconds: float,
    ) -> None:
        """One RTP packet as it arrived (monotonic seconds), before any jitter buffer."""
        if ssrc != self._ssrc:
            self._new_stream(ssrc, arrival_seconds)
        rtp = self._rtp
        duplicates = rtp.duplicates
        rtp.on_packet(
            ssrc=ssrc,
            sequence_number=sequence_number,
            rtp_timestamp=rtp_timestamp,
            clock_rate=CLOCK_RATE_HZ,
            payload_bytes=len(payload),
            arrival_seconds=arrival_seconds,
        )
        if rtp.duplicates == duplicates:
            self._count_bytes(arrival_seconds, len(payload))
        # Frames judge duplicates themselves: rtp_stats also calls a packet older than the
        # stream's first a duplicate (for loss), yet it may be that frame's start.
        completed = self._frames.on_packet(
            sequence_number=sequence_number,
            rtp_timestamp=rtp_timestamp,
            marker=marker,
            info=parse_payload(self.codec, payload),
        )
        if completed:
            self._on_frame(arrival_seconds)

    def _count_bytes(self, at: float, size: int) -> None:
        recent = self._recent
        while recent and (
            recent[0][0] <= at - BITRATE_WINDOW_SECONDS or len(recent) >= BITRATE_MEMORY_PACKETS
        ):
            self._recent_bytes -= recent.popleft()[1]
        recent.append((at, size))
        self._recent_bytes += size

    def bitrate_bps(self, now: float) -> float:
        """RTP payload bits that arrived in the last second, (now − 1 s, now]."""
        total = self._recent_bytes
        for at, size in self._recent:
            if at > now - BITRATE_WINDOW_SECONDS:
                break
            total -= size
        return total * 8 / BITRATE_WINDOW_SECONDS

    def _new_stream(self, ssrc: int, arrival: float) -> None:
        if self._ssrc is not None:
            self._close_pause(arrival)
        self._ssrc = ssrc
        self._frames.restart(forget_size=True)
        self._delays.clear()
        self._last_frame_at = None

    def _close_pause(self, now: float) -> None:
        """A pause in progress when the stream changes is over: count it (counters never
        go back from what a snapshot showed)."""
        if self._last_frame_at is not None and now - self._last_frame_at > PAUSE_SECONDS:
            self.pauses += 1
            self.pause_seconds += now - self._last_frame_at

    def _on_frame(self, at: float) -> None:
        """A complete frame: the W3C freeze rule on its inter-frame delay."""
        self.frames_received += 1
        self._frame_times.append(at)
        last, self._last_frame_at = self._last_frame_at, at
        if last is None:
            return
        delay = max(0.0, at - last)
        if delay > PAUSE_SECONDS:
            self.pauses += 1
            self.pause_seconds += delay
            return
        delays = self._delays
        delays.append(delay)
        if len(delays) < FREEZE_MIN_FRAMES:
            return
        mean = sum(delays) / len(delays)
        if delay >= max(FREEZE_FACTOR * mean, mean + FREEZE_MIN_EXTRA_SECONDS):
            self.freezes += 1
            self.freeze_seconds += delay

    def note_keyframe_request(self) -> None:
        """The receiver asked the sender for a keyframe (PLI or FIR)."""
        self.keyframe_requests += 1

    def frames_per_second(self, now: float) -> float:
        """Complete frames that arrived in the last second, (now − 1 s, now]."""
        count = 0
        for at in reversed(self._frame_times):
            if at <= now - FPS_WINDOW_SECONDS:
                break
            if at <= now:
                count += 1
        return count / FPS_WINDOW_SECONDS

    def snapshot(self, now: float) -> VideoSnapshot:
        """The measures at `now` (monotonic seconds); a pause in progress counts."""
        pauses, pause_seconds = self.pauses, self.pause_seconds
        last = self._last_frame_at
        if last is not None and now - last > PAUSE_SECONDS:
            pauses += 1
            pause_seconds += now - last
        rtp = self._rtp.snapshot(now)
        frames = self._frames
        return VideoSnapshot(
            codec=self.codec,
            frames_received=self.frames_received,
            frames_incomplete=frames.frames_incomplete,
            frames_per_second=self.frames_per_second(now),
            freezes=self.freezes,
            freeze_seconds=self.freeze_seconds,
            pauses=pauses,
            pause_seconds=pause_seconds,
            keyframes=frames.keyframes,
            width=frames.width,
            height=frames.height,
            packets_received=rtp.packets_received,
            packets_lost=rtp.packets_lost,
            loss_ratio=rtp.loss_ratio,
            jitter_seconds=rtp.jitter_seconds,
            bitrate_bps=self.bitrate_bps(now),
            keyframe_requests=self.keyframe_requests,
        )
