"""Video quality from RTP alone: frames, frame rate, freezes, pauses, keyframes, resolution.

No frame is decoded. Packets are grouped into frames by RTP timestamp; a frame is complete
when every packet from its first (the payload header says where a frame starts) to the one
with the marker bit arrived. Freezes follow the W3C webrtc-stats definition on complete
frames: an inter-frame delay ≥ max(3 × the mean of the last 30 delays, mean + 150 ms),
judged once 5 frames were seen; a pause is > 5 s without a frame (not a freeze).

Pure: numbers in, numbers out, time passed in.

SKELETON: the snapshot and the methods' shape are fixed (other modules code against them);
the implementation is being written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

VideoCodec = Literal["vp8", "h264"]
CLOCK_RATE_HZ = 90000
FREEZE_MIN_EXTRA_SECONDS = 0.150
FREEZE_FACTOR = 3.0
FREEZE_WINDOW_FRAMES = 30
FREEZE_MIN_FRAMES = 5
PAUSE_SECONDS = 5.0


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
        self.codec = codec

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
        raise NotImplementedError

    def note_keyframe_request(self) -> None:
        """The receiver asked the sender for a keyframe (PLI or FIR)."""
        raise NotImplementedError

    def snapshot(self, now: float) -> VideoSnapshot:
        """The measures at `now` (monotonic seconds); a pause in progress counts."""
        raise NotImplementedError
