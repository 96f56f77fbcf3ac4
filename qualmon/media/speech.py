"""Decoded audio → 16 kHz mono → webrtcvad → speech segments; audio is dropped at once.

Decoded frames are used for speech activity only, never to measure the network: aiortc's
jitter buffer reshapes loss and delay. A frame's place on the session clock comes from
its RTP timestamp (frame.pts) through the leg's RTP statistics.

Cost: a resampler call has a large fixed overhead inside a busy service (measured 60 µs a
call among 40 legs, against 12 µs alone), so contiguous 20 ms frames are batched into one
call per 200 ms; the level is one numpy call per 0.5 s.
"""

from __future__ import annotations

import fractions
from collections.abc import Callable

import av
import numpy as np
import webrtcvad

from ..core.speech import SpeechSegmenter

VAD_RATE = 16000
VAD_FRAME_SECONDS = 0.020
VAD_FRAME_BYTES = int(VAD_RATE * VAD_FRAME_SECONDS) * 2
BATCH_SECONDS = 0.200
LEVEL_BATCH_FRAMES = 25
FULL_SCALE = 32768.0


class SpeechPipeline:
    """One leg's audio path; call close() when the leg ends (frees ffmpeg's threads)."""

    def __init__(
        self,
        *,
        segmenter: SpeechSegmenter,
        session_time_of: Callable[[int], float | None],
        vad_mode: int = 2,
    ) -> None:
        if vad_mode not in (0, 1, 2, 3):
            raise ValueError("vad_mode must be 0..3")
        self.segmenter = segmenter
        self._session_time_of = session_time_of
        self._vad: webrtcvad.Vad | None = webrtcvad.Vad(vad_mode)
        self._resampler: av.AudioResampler | None = av.AudioResampler(
            format="s16", layout="mono", rate=VAD_RATE
        )
        # Decoded audio waiting for the next resampler call (≤ BATCH_SECONDS of it).
        self._batch = bytearray()
        self._batch_at = 0.0
        self._batch_seconds = 0.0
        self._batch_key: tuple[str, int] | None = None  # (layout, rate)
        self._fed_samples = 0
        self._next_pts: int | None = None
        self._frame_bytes = 4
        self._batch_rate = 48000
        # 16 kHz mono not yet classified (< 20 ms) and where it starts.
        self._pcm = bytearray()
        self._pcm_at = 0.0
        self._level_chunks: list[bytes] = []
        self.frames_classified = 0

    def process(self, frame: av.AudioFrame) -> None:
        """Queue one decoded frame; classifies whenever a batch is complete."""
        pts = frame.pts
        if pts is None or self._resampler is None:
            return
        samples = frame.samples
        if self._batch and pts == self._next_pts:
            # The common case, kept lean: 50 calls a second per leg.
            self._batch += memoryview(frame.planes[0])[: samples * self._frame_bytes]
            self._batch_seconds += samples / self._batch_rate
            self._next_pts = pts + samples
            if self._batch_seconds >= BATCH_SECONDS - 1e-9:
                self._flush()
            return
        self._flush()
        at = self._session_time_of(pts)
        if at is None:
            return
        layout, rate = frame.layout.name, frame.sample_rate
        if frame.format.name != "s16" or layout not in ("mono", "stereo"):
            # Not what aiortc's decoders give; take the slow path rather than guess.
            self._classify(self._resampler.resample(frame), at)
            return
        self._frame_bytes = 4 if layout == "stereo" else 2
        self._batch_at, self._batch_key, self._batch_rate = at, (layout, rate), rate
        self._batch += memoryview(frame.planes[0])[: samples * self._frame_bytes]
        self._batch_seconds = samples / rate
        self._next_pts = pts + samples

    def _flush(self) -> None:
        if not self._batch or self._resampler is None or self._batch_key is None:
            return
        layout, rate = self._batch_key
        channels = 2 if layout == "stereo" else 1
        samples = len(self._batch) // (2 * channels)
        frame = av.AudioFrame(format="s16", layout=layout, samples=samples)
        frame.planes[0].update(bytes(self._batch))
        frame.sample_rate = rate
        # Continuous pts for the resampler: gaps are handled here, not by it padding.
        frame.pts = self._fed_samples
        frame.time_base = fractions.Fraction(1, rate)
        self._fed_samples += samples
        at = self._batch_at
        self._batch.clear()
        self._next_pts = None
        self._classify(self._resampler.resample(frame), at)

    def _classify(self, frames: list[av.AudioFrame], at: float) -> None:
        if self._vad is None:
            return
        expected = self._pcm_at + len(self._pcm) / (2 * VAD_RATE)
        if abs(at - expected) > 0.03:
            # A gap (loss or DTX) or the first audio: restart the 20 ms framing here.
            self._pcm.clear()
            self._pcm_at = at
        for out in frames:
            self._pcm += bytes(out.planes[0])[: out.samples * 2]
        vad, pcm = self._vad, self._pcm
        while len(pcm) >= VAD_FRAME_BYTES:
            chunk = bytes(pcm[:VAD_FRAME_BYTES])
            del pcm[:VAD_FRAME_BYTES]
            self.segmenter.add_frame(
                self._pcm_at, VAD_FRAME_SECONDS, vad.is_speech(chunk, VAD_RATE)
            )
            self._pcm_at += VAD_FRAME_SECONDS
            self.frames_classified += 1
            self._level_chunks.append(chunk)
            if len(self._level_chunks) >= LEVEL_BATCH_FRAMES:
                self._flush_level()

    def _flush_level(self) -> None:
        samples = np.frombuffer(b"".join(self._level_chunks), dtype=np.int16)
        self._level_chunks.clear()
        rms = float(np.sqrt(np.mean(samples.astype(np.float32) ** 2))) / FULL_SCALE
        self.segmenter.add_level(self._pcm_at, rms)

    def close(self) -> None:
        """Drop every byte of audio and the native resampler (it owns ffmpeg threads)."""
        self._batch.clear()
        self._pcm.clear()
        self._level_chunks.clear()
        self._resampler = None
        self._vad = None
