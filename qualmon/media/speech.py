"""Audio → 16 kHz mono → webrtcvad → speech segments; audio is dropped at once.

Audio is used for speech activity only, never to measure the network: aiortc's jitter
buffer reshapes loss and delay. Audio is placed on the session clock by its RTP timestamp
through the leg's RTP statistics.

Two ways in:
- `OpusPacketSpeech` (the usual one): the RTP tap's Opus payloads, decoded by libopus
  straight to 16 kHz mono (media/opus.py); aiortc's own decoder is then not needed.
- `SpeechPipeline`: aiortc's decoded frames for other codecs (G.711), resampled by PyAV.
  A resampler call has a large fixed overhead inside a busy service (measured 60 µs a call
  among 40 legs, against 12 µs alone), so contiguous frames are batched per 200 ms.
Each 20 ms frame also gets its level and, if webrtcvad calls it speech, the share of its
energy below 1 kHz: the voice classifier (core/voice.py) needs both.
"""

from __future__ import annotations

import fractions
import math
from collections.abc import Callable

import av
import numpy as np
import numpy.typing as npt
import webrtcvad

from ..core.leg_source import VoiceSink
from ..core.speech import CONTIGUITY_TOLERANCE_SECONDS
from ..core.voice import PERIODIC_LOW_BAND_RATIO, VOICED_LOW_BAND_RATIO
from .opus import RATE as OPUS_RATE
from .opus import OpusDecoder16k

VAD_RATE = 16000
VAD_FRAME_SECONDS = 0.020
VAD_FRAME_SAMPLES = int(VAD_RATE * VAD_FRAME_SECONDS)
VAD_FRAME_BYTES = VAD_FRAME_SAMPLES * 2
BYTES_PER_SECOND = VAD_RATE * 2
BATCH_SECONDS = 0.200
LEVEL_BATCH_FRAMES = 25
FEATURE_BATCH_FRAMES = 10
"Frames whose features are computed in one go: decisions reach the sink up to 200 ms late."
FULL_SCALE = 32768.0
FRAME_FULL_SCALE_ENERGY = VAD_FRAME_SAMPLES * FULL_SCALE**2
# Voiced speech has most of its energy below 1 kHz; breaths and hiss do not (core/voice.py).
_WINDOW = np.hanning(VAD_FRAME_SAMPLES).astype(np.float32)
_BIN_HZ = VAD_RATE / VAD_FRAME_SAMPLES
_LOW_BAND = (round(100 / _BIN_HZ), round(1000 / _BIN_HZ) + 1)
_PITCH_LAGS = (round(VAD_RATE / 400), round(VAD_RATE / 80))
LATE_PACKETS = 50  # further behind than this is a restarted stream, not a late packet
# Contiguous packets are timed by counting; the session clock is re-read this often anyway,
# since the transit floor under it follows sender/receiver clock skew (50 ppm ≈ 180 ms/h).
REANCHOR_PACKETS = 50


def low_band_ratios(frames: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Per 20 ms frame (a row): the share of its energy above 100 Hz that lies below 1 kHz."""
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=1)) ** 2
    low, high = _LOW_BAND
    total = power[:, low:].sum(axis=1)
    below = power[:, low:high].sum(axis=1)
    ratio: npt.NDArray[np.float64] = np.divide(
        below, total, out=np.zeros_like(total), where=total > 0
    )
    return ratio


def periodicities(frames: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Per frame: the autocorrelation peak at a pitch lag (2.5–12.5 ms: 80–400 Hz) over the
    frame's energy."""
    spectrum = np.fft.rfft(frames, 2 * VAD_FRAME_SAMPLES, axis=1)
    correlation = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, axis=1)
    energy = correlation[:, 0]
    low, high = _PITCH_LAGS
    peak = correlation[:, low:high].max(axis=1)
    ratio: npt.NDArray[np.float64] = np.divide(
        peak, energy, out=np.zeros_like(energy), where=energy > 0
    )
    return ratio


def low_band_ratio(samples: npt.NDArray[np.float32]) -> float:
    """`low_band_ratios` of one frame."""
    return float(low_band_ratios(samples[np.newaxis])[0])


def periodicity(samples: npt.NDArray[np.float32]) -> float:
    """`periodicities` of one frame."""
    return float(periodicities(samples[np.newaxis])[0])


class VadFramer:
    """16 kHz mono s16 in; 20 ms webrtcvad decisions and levels out to a VoiceSink."""

    def __init__(self, sink: VoiceSink, vad_mode: int = 3) -> None:
        if vad_mode not in (0, 1, 2, 3):
            raise ValueError("vad_mode must be 0..3")
        self.sink = sink
        self._vad: webrtcvad.Vad | None = webrtcvad.Vad(vad_mode)
        # 16 kHz mono not yet classified (< 20 ms) and where it starts.
        self._pcm = bytearray()
        self._pcm_at = 0.0
        # Classified frames whose features are computed together: (start, audio, speech).
        self._batch: list[tuple[float, bytes, bool]] = []
        self._level_energy = 0.0
        self._level_frames = 0
        self.frames_classified = 0

    def feed(self, pcm: bytes, at: float) -> None:
        """Audio starting at session time `at`; a jump restarts the 20 ms framing there."""
        vad = self._vad
        if vad is None:  # closed
            return
        buffered = self._pcm
        if buffered and abs(at - (self._pcm_at + len(buffered) / BYTES_PER_SECOND)) > (
            CONTIGUITY_TOLERANCE_SECONDS
        ):
            buffered.clear()
        if not buffered:
            self._pcm_at = at
            if len(pcm) == VAD_FRAME_BYTES:
                # The common case, kept lean: one 20 ms packet, one decision.
                self._decide(vad, pcm)
                return
        buffered += pcm
        while len(buffered) >= VAD_FRAME_BYTES:
            chunk = bytes(buffered[:VAD_FRAME_BYTES])
            del buffered[:VAD_FRAME_BYTES]
            self._decide(vad, chunk)

    def _decide(self, vad: webrtcvad.Vad, chunk: bytes) -> None:
        self._batch.append((self._pcm_at, chunk, vad.is_speech(chunk, VAD_RATE)))
        self._pcm_at += VAD_FRAME_SECONDS
        self.frames_classified += 1
        if len(self._batch) >= FEATURE_BATCH_FRAMES:
            self._flush_batch()

    def _flush_batch(self) -> None:
        """Levels and voice features of the held frames in a few numpy calls, then every
        frame to the sink in order. One call per frame costs ~10× more inside a busy service
        (numpy's fixed overhead per call), measured with `qualmon bench`."""
        batch = self._batch
        if not batch:
            return
        frames = np.frombuffer(b"".join(chunk for _, chunk, _ in batch), dtype=np.int16)
        samples = frames.reshape(len(batch), VAD_FRAME_SAMPLES).astype(np.float32)
        energies = np.einsum("ij,ij->i", samples, samples, dtype=np.float64)
        levels = 10 * np.log10(energies / FRAME_FULL_SCALE_ENERGY + 1e-12)
        # Spectrum only where the voice classifier asks (webrtcvad's speech frames), pitch
        # only where it decides (a frame neither clearly voiced nor clearly not).
        speech_rows = [i for i, (_, _, speech) in enumerate(batch) if speech]
        low_band: dict[int, float] = {}
        pitch: dict[int, float] = {}
        if speech_rows:
            ratios = low_band_ratios(samples[speech_rows])
            low_band = dict(zip(speech_rows, ratios.tolist(), strict=True))
            unsure = [
                i
                for i in speech_rows
                if PERIODIC_LOW_BAND_RATIO <= low_band[i] < VOICED_LOW_BAND_RATIO
            ]
            if unsure:
                pitch = dict(zip(unsure, periodicities(samples[unsure]).tolist(), strict=True))
        sink = self.sink
        # Python floats once: indexing a numpy array per frame makes a numpy scalar each time.
        level_list, energy_list = levels.tolist(), energies.tolist()
        for i, (start, _, speech) in enumerate(batch):
            sink.add_frame(
                start, VAD_FRAME_SECONDS, speech, level_list[i], low_band.get(i), pitch.get(i)
            )
            self._level_energy += energy_list[i]
            self._level_frames += 1
            if self._level_frames >= LEVEL_BATCH_FRAMES:
                self._flush_level(start + VAD_FRAME_SECONDS)
        batch.clear()

    def _flush_level(self, at: float) -> None:
        mean_square = self._level_energy / (self._level_frames * VAD_FRAME_SAMPLES)
        self._level_energy, self._level_frames = 0.0, 0
        self.sink.add_level(at, math.sqrt(mean_square) / FULL_SCALE)

    @property
    def holds_audio(self) -> bool:
        return bool(self._pcm or self._batch)

    def close(self) -> None:
        """Decide the held frames, then drop every byte of audio."""
        if self._vad is not None:
            self._flush_batch()
        self._pcm.clear()
        self._batch.clear()
        self._vad = None


class _FramedSpeech:
    """What both audio paths show their source: how many frames they classified."""

    _framer: VadFramer

    @property
    def frames_classified(self) -> int:
        return self._framer.frames_classified


class OpusPacketSpeech(_FramedSpeech):
    """One leg's Opus RTP payloads → libopus at 16 kHz → VAD; call close() when it ends.

    Packets are decoded in sequence order as they arrive; a late (reordered) packet's
    time has already passed without audio and it is skipped, like a lost one.
    """

    def __init__(
        self,
        *,
        sink: VoiceSink,
        session_time_of: Callable[[int], float | None],
        vad_mode: int = 3,
        clock_rate: int = 48000,
    ) -> None:
        self._framer = VadFramer(sink, vad_mode)
        self._session_time_of = session_time_of
        self._decoder: OpusDecoder16k | None = OpusDecoder16k()
        self._ticks_per_sample = clock_rate // OPUS_RATE
        self._ssrc: int | None = None
        self._last_seq: int | None = None
        self._next_ts = 0
        self._next_at = 0.0
        self._counted = 0

    @property
    def decode_errors(self) -> int:
        return 0 if self._decoder is None else self._decoder.errors

    def on_packet(
        self, *, ssrc: int, sequence_number: int, rtp_timestamp: int, payload: bytes
    ) -> None:
        decoder = self._decoder
        if decoder is None or not payload:
            return
        last = self._last_seq
        ahead = 1
        if ssrc != self._ssrc:
            if self._ssrc is not None:
                decoder.reset()
            self._ssrc, last = ssrc, None
        elif last is not None:
            ahead = (sequence_number - last) & 0xFFFF
            if ahead == 0 or 0x10000 - ahead <= LATE_PACKETS:
                return  # a duplicate, or late: its time is already past
        self._last_seq = sequence_number
        pcm = decoder.decode(payload)
        if not pcm:
            return
        if (
            last is not None
            and ahead == 1
            and rtp_timestamp == self._next_ts
            and self._counted < REANCHOR_PACKETS
        ):
            at = self._next_at
            self._counted += 1
        else:
            found = self._session_time_of(rtp_timestamp)
            if found is None:
                return
            at, self._counted = found, 0
        samples = len(pcm) // 2
        self._next_ts = (rtp_timestamp + samples * self._ticks_per_sample) & 0xFFFFFFFF
        self._next_at = at + samples / OPUS_RATE
        self._framer.feed(pcm, at)

    def close(self) -> None:
        """Drop every byte of audio and the native decoder."""
        self._framer.close()
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None


class SpeechPipeline(_FramedSpeech):
    """Decoded frames of codecs other than Opus → PyAV resampler → VAD; close() at the end."""

    def __init__(
        self,
        *,
        sink: VoiceSink,
        session_time_of: Callable[[int], float | None],
        vad_mode: int = 3,
    ) -> None:
        self._framer = VadFramer(sink, vad_mode)
        self._session_time_of = session_time_of
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
        pcm = b"".join(bytes(out.planes[0])[: out.samples * 2] for out in frames)
        if pcm:
            self._framer.feed(pcm, at)

    def close(self) -> None:
        """Drop every byte of audio and the native resampler (it owns ffmpeg threads)."""
        self._batch.clear()
        self._framer.close()
        self._resampler = None
