"""A camera's VP8, encoded once and replayed as packets (encoding costs far more than sending).

`moving_picture_vp8()` encodes a few seconds of a moving test picture with libvpx (PyAV) at a
target bitrate, keyframes every few seconds; `EncodedVideoTrack` hands those frames out in
real time as av.Packet, which aiortc's VP8 sender splits into RTP payloads without encoding
(as EncodedAudioTrack does for Opus). What `qualmon bench --video` publishes.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Sequence

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .video import TIME_BASE, VIDEO_CLOCK_RATE_HZ


def moving_picture_yuv(
    index: int, width: int, height: int, *, seed: int = 16
) -> npt.NDArray[np.uint8]:
    """Frame `index` of a moving test picture, yuv420p rows (Y, then U and V).

    Blocky noise scrolling sideways, a bright square crossing it and a band of fresh noise
    each frame: motion an encoder can predict and detail it cannot, so a rate-controlled
    encoder spends its bitrate on every frame as on a camera's.
    """
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (height // 8, width // 4), dtype=np.uint8)
    base = np.kron(blocks, np.ones((8, 8), np.uint8))  # twice as wide as the picture
    shift = (index * 4) % width
    luma = np.ascontiguousarray(base[:height, shift : shift + width])
    side = height // 4
    x = (index * 6) % max(1, width - side)
    luma[side : 2 * side, x : x + side] = 235
    fresh = np.random.default_rng(seed + 1 + index)
    band = height // 16
    luma[height - band :, :] = fresh.integers(16, 240, (band, width), dtype=np.uint8)
    u = np.full((height // 4, width), 96 + (index % 64), dtype=np.uint8)
    v = np.full((height // 4, width), 160 - (index % 64), dtype=np.uint8)
    return np.vstack([luma, u, v])


def encode_vp8(
    seconds: float = 4.0,
    *,
    width: int = 640,
    height: int = 480,
    fps: int = 30,
    bit_rate: int = 1_000_000,
    keyframe_seconds: float = 2.0,
) -> list[bytes]:
    """VP8 frames (one bytes per picture, in order) of the moving test picture."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width = width
    codec.height = height
    codec.pix_fmt = "yuv420p"
    codec.framerate = fractions.Fraction(fps)
    codec.time_base = TIME_BASE
    codec.bit_rate = bit_rate
    codec.gop_size = max(1, round(keyframe_seconds * fps))
    # Real-time, constant-rate and no invisible alt-ref frames: what a browser's encoder makes.
    codec.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "auto-alt-ref": "0",
        "minrate": str(bit_rate),
        "maxrate": str(bit_rate),
        "bufsize": str(bit_rate),
    }
    frames: list[bytes] = []
    step = VIDEO_CLOCK_RATE_HZ // fps
    for index in range(round(seconds * fps)):
        picture = av.VideoFrame.from_ndarray(
            moving_picture_yuv(index, width, height), format="yuv420p"
        )
        picture.pts = index * step
        picture.time_base = TIME_BASE
        frames.extend(bytes(p) for p in codec.encode(picture))
    frames.extend(bytes(p) for p in codec.encode(None))
    return frames


_cache: dict[tuple[float, int, int, int, int], list[bytes]] = {}


def moving_picture_vp8(
    seconds: float = 4.0,
    *,
    width: int = 640,
    height: int = 480,
    fps: int = 30,
    bit_rate: int = 1_000_000,
) -> list[bytes]:
    """encode_vp8's frames, cached per process (encoding 4 s at 640×480 takes a second)."""
    key = (seconds, width, height, fps, bit_rate)
    if key not in _cache:
        _cache[key] = encode_vp8(seconds, width=width, height=height, fps=fps, bit_rate=bit_rate)
    return _cache[key]


class EncodedVideoTrack(MediaStreamTrack):
    """Replays VP8 frames at `fps` in real time, looping; RTP timestamps at 90 kHz."""

    kind = "video"

    def __init__(self, frames: Sequence[bytes], *, fps: int = 30) -> None:
        super().__init__()
        if not frames:
            raise ValueError("no frames to replay")
        self._frames = frames
        self._step = VIDEO_CLOCK_RATE_HZ // fps
        self._index = 0
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet[av.stream.Stream]:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        # Paced against the start time, not the previous frame, so delays do not add up.
        wait = self._start + self._pts / VIDEO_CLOCK_RATE_HZ - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        packet = av.Packet(self._frames[self._index % len(self._frames)])
        packet.pts = self._pts
        packet.time_base = TIME_BASE
        self._index += 1
        self._pts += self._step
        return packet
