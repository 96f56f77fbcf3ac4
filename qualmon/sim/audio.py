"""Speech-like audio, Opus-encoded once and replayed as packets (encoding costs 2× receiving)."""

from __future__ import annotations

import asyncio
import fractions
import math
import os
import time
from collections.abc import Sequence

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

SAMPLE_RATE = 48000
PTIME_SECONDS = 0.020
SAMPLES_PER_PACKET = int(SAMPLE_RATE * PTIME_SECONDS)
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
OPUS_INPUT_RATES = (8000, 12000, 16000, 24000, 48000)


def speech_like_pcm(seconds: float, *, seed: int = 1) -> npt.NDArray[np.int16]:
    """Voiced bursts at syllable rate with pauses: a harmonic tone, amplitude-modulated.

    Not speech, but with the level and rhythm of speech, so an encoder spends bits the
    way it would on a voice. Returns int16 mono at 48 kHz.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    pitch = 140 + 30 * np.sin(2 * math.pi * 0.3 * t)
    phase = 2 * math.pi * np.cumsum(pitch) / SAMPLE_RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    syllables = np.clip(np.sin(2 * math.pi * 4.0 * t), 0, None) ** 0.5
    # phrases of ~2 s with ~0.7 s pauses
    phrase = ((t % 2.7) < 2.0).astype(float)
    noise = rng.normal(0, 0.02, n)
    signal = 0.25 * voice * syllables * phrase + noise
    pcm: npt.NDArray[np.int16] = (np.clip(signal, -1, 1) * 32767).astype(np.int16)
    return pcm


def encode_opus(
    pcm: np.ndarray, *, bit_rate: int = 32000, sample_rate: int = SAMPLE_RATE
) -> list[bytes]:
    """Encode mono int16 PCM into 20 ms Opus packets (bit_rate in bits per second).

    libopus takes 8, 12, 16, 24 or 48 kHz input; the packets are the same 20 ms Opus packets
    whatever the input rate (RTP counts them at 48 kHz), only their audio bandwidth differs.
    """
    if sample_rate not in OPUS_INPUT_RATES:
        raise ValueError(f"libopus takes {OPUS_INPUT_RATES} Hz, not {sample_rate}")
    time_base = fractions.Fraction(1, sample_rate)
    per_packet = round(sample_rate * PTIME_SECONDS)
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = sample_rate
    codec.layout = "mono"
    codec.format = "s16"
    codec.bit_rate = bit_rate
    codec.time_base = time_base
    packets: list[bytes] = []
    whole = len(pcm) - len(pcm) % per_packet
    for start in range(0, whole, per_packet):
        frame = av.AudioFrame.from_ndarray(
            pcm[start : start + per_packet].reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = time_base
        packets.extend(bytes(p) for p in codec.encode(frame))
    packets.extend(bytes(p) for p in codec.encode(None))
    return packets


def packets_from_file(path: str | os.PathLike[str]) -> list[bytes]:
    """Decode any audio file FFmpeg reads into 20 ms Opus packets (48 kHz mono).

    Raises OSError if the file cannot be opened, av.FFmpegError if it cannot be decoded,
    and ValueError if it holds no audio (or less than one packet's worth).
    """
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    container = av.open(os.fspath(path))
    try:
        if not container.streams.audio:
            raise ValueError("no audio stream in the file")
        for frame in container.decode(container.streams.audio[0]):
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
        chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    finally:
        # Both hold FFmpeg buffers and file handles; a long-lived publisher should not keep them.
        container.close()
        del resampler
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    if len(pcm) < SAMPLES_PER_PACKET:
        raise ValueError("the file holds less than 20 ms of audio")
    return encode_opus(pcm.astype(np.int16, copy=False))


_cache: dict[tuple[float, int], list[bytes]] = {}


def speech_like_packets(seconds: float = 10.0, *, seed: int = 1) -> list[bytes]:
    """Pre-encoded speech-like Opus packets, cached per process."""
    key = (seconds, seed)
    if key not in _cache:
        _cache[key] = encode_opus(speech_like_pcm(seconds, seed=seed))
    return _cache[key]


DTX_EVERY_PACKETS = 20
"Opus DTX: during silence one packet per 400 ms (20 frames of 20 ms) keeps comfort noise."


def dtx_packets(seconds: float = 2.0) -> list[bytes]:
    """Opus packets of silence (3 bytes each): what a muted or silent participant's DTX
    sends, for benches that hold many legs at a low packet rate."""
    key = (-seconds, 0)  # apart from speech_like_packets' keys
    if key not in _cache:
        _cache[key] = encode_opus(np.zeros(int(seconds * SAMPLE_RATE), dtype=np.int16))
    return _cache[key]


class EncodedAudioTrack(MediaStreamTrack):
    """Replays Opus packets in real time; aiortc's sender packs av.Packet without encoding."""

    kind = "audio"

    def __init__(
        self, packets: Sequence[bytes], *, loop_forever: bool = True, every_packets: int = 1
    ) -> None:
        """`every_packets` > 1 sends one packet per that many 20 ms frames, its RTP timestamp
        moved on by all of them, as Opus DTX does for a silent participant (with
        dtx_packets(): one comfort-noise packet every 400 ms at 20)."""
        super().__init__()
        if not packets:
            raise ValueError("no packets to replay")
        if every_packets < 1:
            raise ValueError(f"every_packets must be >= 1, got {every_packets}")
        self._packets = packets
        self._loop_forever = loop_forever
        self._pts_step = SAMPLES_PER_PACKET * every_packets
        self._index = 0
        self._pts = 0
        self._start: float | None = None
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._paused_at: float | None = None

    def pause(self) -> None:
        """Stop handing out packets (the publisher goes quiet without closing)."""
        if self._paused_at is None:
            self._paused_at = time.monotonic()
            self._resumed.clear()

    def resume(self) -> None:
        """Continue; the RTP timestamps jump by the paused time, as a live source's would."""
        if self._paused_at is not None:
            paused_seconds = time.monotonic() - self._paused_at
            if self._start is not None:
                self._pts += (
                    int(paused_seconds * SAMPLE_RATE) // SAMPLES_PER_PACKET * SAMPLES_PER_PACKET
                )
            self._paused_at = None
            self._resumed.set()

    async def recv(self) -> av.Packet[av.stream.Stream]:
        await self._resumed.wait()
        if self.readyState != "live":
            raise MediaStreamError
        if self._index >= len(self._packets):
            if not self._loop_forever:
                self.stop()
                raise MediaStreamError
            self._index = 0
        if self._start is None:
            self._start = time.monotonic()
        # Pace against the start time, not the previous packet, so delays do not add up.
        due = self._start + self._pts / SAMPLE_RATE
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        packet = av.Packet(self._packets[self._index])
        packet.pts = self._pts
        packet.time_base = TIME_BASE
        self._index += 1
        self._pts += self._pts_step
        return packet
