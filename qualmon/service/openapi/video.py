"""The schema of a leg's video measures (`core.video.VideoSnapshot`), as `legs.<role>.video`."""

from __future__ import annotations

from typing import get_args

from ...core.video import VideoCodec
from .schemas import COUNT, RATIO, SECONDS, Schema, closed, described, maybe

_PIXELS: Schema = {"type": "integer", "minimum": 1}

VIDEO_SCHEMAS: dict[str, Schema] = {
    "Video": closed(
        {
            "codec": {"type": "string", "enum": list(get_args(VideoCodec))},
            "frames_received": described(COUNT, "Complete frames (every packet arrived)."),
            "frames_incomplete": described(
                COUNT, "Frames with a packet missing, given up once a later frame completed."
            ),
            "frames_per_second": described(
                {"type": "number", "minimum": 0}, "Complete frames in the last second."
            ),
            "freezes": described(
                COUNT,
                "W3C webrtc-stats freezeCount on complete frames: an inter-frame delay"
                " ≥ max(3 × the mean of the last 30, mean + 150 ms), once 5 frames were seen.",
            ),
            "freeze_seconds": described(SECONDS, "Sum of the inter-frame delays that froze."),
            "pauses": described(COUNT, "More than 5 s without a frame (not a freeze)."),
            "pause_seconds": SECONDS,
            "keyframes": COUNT,
            "width": described(
                maybe(_PIXELS), "From the last keyframe (VP8 header, H.264 SPS); null before."
            ),
            "height": maybe(_PIXELS),
            "packets_received": COUNT,
            "packets_lost": {"type": "integer"},
            "loss_ratio": RATIO,
            "jitter_seconds": described(SECONDS, "RFC 3550 interarrival jitter at 90 kHz."),
            "bitrate_bps": described({"type": "number", "minimum": 0}, "Over the last second."),
            "keyframe_requests": described(COUNT, "PLI/FIR qualmon's receiver sent."),
        }
    ),
}
