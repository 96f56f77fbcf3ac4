"""A simulated camera: 320×240 frames at 30 fps with scripted stalls, encoded by aiortc (VP8).

Frames are cheap to make (a solid colour that changes per frame, or a few precomputed blocky
noise pictures when frames must span several RTP packets). Every frame's hand-over time is kept as
ground truth, so a test compares measured freezes with the inter-frame delays really sent.
"""

from __future__ import annotations

import asyncio
import fractions
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Literal

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

VIDEO_CLOCK_RATE_HZ = 90000
TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE_HZ)
NOISE_PICTURES = 4
"Distinct noise pictures cycled through: each frame differs wholly from the previous one."

NOISE_BLOCK = 8
"Pixels per side of a noise block; width and height must be multiples of it for noise."

Picture = Literal["solid", "noise"]


class ScriptedVideoTrack(MediaStreamTrack):
    """Raw frames paced against a start time; `stalls` maps a frame index to the delay
    (seconds) before the next frame, instead of 1/fps: a camera or encoder that stalls.

    RTP timestamps follow the hand-over times (a live capture's would), so a stall is a gap
    in both timestamps and arrivals, as a browser's frozen camera is.
    """

    kind = "video"

    def __init__(
        self,
        *,
        width: int = 320,
        height: int = 240,
        fps: float = 30.0,
        stalls: dict[int, float] | None = None,
        picture: Picture = "solid",
        seed: int = 16,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if width % 2 or height % 2 or width <= 0 or height <= 0:
            raise ValueError("width and height must be positive and even (YUV 4:2:0)")
        if picture == "noise" and (width % NOISE_BLOCK or height % NOISE_BLOCK):
            raise ValueError(f"noise pictures need sizes in multiples of {NOISE_BLOCK}")
        self.width = width
        self.height = height
        self.frame_seconds = 1.0 / fps
        self.stalls = dict(stalls or {})
        self._clock = clock
        self._index = 0
        self._start: float | None = None
        self._due = 0.0
        self._resumed = asyncio.Event()
        self._resumed.set()
        self.handed_over: list[float] = []
        "When each frame was handed to the encoder (monotonic seconds): the ground truth."
        rows = height * 3 // 2  # a Y plane, then U and V at a quarter each
        shape = (height // NOISE_BLOCK, width // NOISE_BLOCK)
        if picture == "noise":
            # Noise in 8×8 blocks, grey chroma: aiortc's VP8 at its 0.5–1.5 Mbit/s makes
            # frames of 2–3 packets of these (pixel noise would be ~10 at 4 Mbit/s).
            rng = np.random.default_rng(seed)
            block = np.ones((NOISE_BLOCK, NOISE_BLOCK), dtype=np.uint8)
            chroma = np.full((rows - height, width), 128, dtype=np.uint8)
            self._pictures: Sequence[np.ndarray] = [
                np.vstack([np.kron(rng.integers(0, 256, shape, dtype=np.uint8), block), chroma])
                for _ in range(NOISE_PICTURES)
            ]
        else:
            self._pictures = []
        self._solid = np.empty((rows, width), dtype=np.uint8)

    def pause(self) -> None:
        """Hand out nothing until resume() (the publisher waits for its impairment)."""
        self._resumed.clear()

    def resume(self) -> None:
        self._resumed.set()

    def inter_frame_delays(self) -> list[float]:
        """Seconds between consecutive frames as handed over (the truth a freeze is judged on)."""
        times = self.handed_over
        return [b - a for a, b in itertools.pairwise(times)]

    async def recv(self) -> av.VideoFrame:
        await self._resumed.wait()
        if self.readyState != "live":
            raise MediaStreamError
        now = self._clock()
        if self._start is None:
            self._start = self._due = now
        # Paced against the start, not the previous frame, so encode times do not add up.
        wait = self._due - now
        if wait > 0:
            await asyncio.sleep(wait)
        frame = av.VideoFrame.from_ndarray(self._picture(self._index), format="yuv420p")
        frame.pts = round((self._due - self._start) * VIDEO_CLOCK_RATE_HZ)
        frame.time_base = TIME_BASE
        self.handed_over.append(self._clock())
        self._due += self.stalls.get(self._index, self.frame_seconds)
        self._index += 1
        return frame

    def _picture(self, index: int) -> np.ndarray:
        if self._pictures:
            return self._pictures[index % len(self._pictures)]
        # A solid colour stepping through luma values: a new picture every frame, cheaply.
        self._solid.fill((index * 37) % 256)
        return self._solid
