"""Decoded audio → 16 kHz mono → webrtcvad → speech segments; audio is dropped at once.

Decoded frames are used for speech activity only, never to measure the network: aiortc's
jitter buffer reshapes loss and delay. A frame's place on the session clock comes from
its RTP timestamp (frame.pts) through the leg's RTP statistics.
"""

from __future__ import annotations

from collections.abc import Callable

import av
import numpy as np
import webrtcvad

from ..core.speech import SpeechSegmenter

VAD_RATE = 16000
VAD_FRAME_SECONDS = 0.020
VAD_FRAME_BYTES = int(VAD_RATE * VAD_FRAME_SECONDS) * 2
# One numpy call per this many VAD frames (0.5 s) for the level, not one per frame.
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
        self._pcm = bytearray()
        self._pcm_at = 0.0
        self._level_chunks: list[bytes] = []
        self.frames_classified = 0

    def process(self, frame: av.AudioFrame) -> None:
        """Classify one decoded frame's audio; keeps < 20 ms of it until the next frame."""
        if self._resampler is None or self._vad is None or frame.pts is None:
            return
        at = self._session_time_of(frame.pts)
        if at is None:
            return
        expected = self._pcm_at + len(self._pcm) / (2 * VAD_RATE)
        if abs(at - expected) > 0.03:
            # A gap (loss or DTX) or the first frame: restart the 20 ms framing here.
            self._pcm.clear()
            self._pcm_at = at
        for out in self._resampler.resample(frame):
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
        self._pcm.clear()
        self._level_chunks.clear()
        self._resampler = None
        self._vad = None
