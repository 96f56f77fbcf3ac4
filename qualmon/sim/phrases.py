"""Recordings cut at their pauses into phrases, the units a corpus dialogue is built from.

A phrase is marked the way a human annotator marks speech: from the first sound of its
first word to the last of its last, pauses shorter than 200 ms inside it included; a pause
of 200 ms or more ends it. Speech is sound (10 ms frames within 40 dB of the recording's loud
frames and 10 dB above its floor) that holds voiced frames (the pitch shows in the
autocorrelation, at most 25 dB under the loud frames); unvoiced sound ("s", "t") counts up to
150 ms from them. Breaths hold no voiced frames, so they stay out.
The audio between phrases (breaths, the recording's own floor) is kept as each phrase's
lead-in and lead-out, to fill the pauses a dialogue puts around it.
"""

from __future__ import annotations

import wave
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .speech_sources import PACKAGES, clip_file

RATE = 16000
HOP = RATE // 100  # 10 ms frames
PAUSE_SECONDS = 0.200
"A pause this long is not speech: it ends a phrase (and is silence in the truth)."
WORD_GAP_SECONDS = 0.050
"Single words (backchannel material) are cut at gaps this long."
CORE_BELOW_TOP_DB = 25.0
EDGE_BELOW_TOP_DB = 40.0
EDGE_ABOVE_FLOOR_DB = 10.0
EDGE_MAX_SECONDS = 0.15
VOICED_CORRELATION = 0.5
MIN_VOICED_FRAMES = 4
PITCH_HZ = (60.0, 400.0)
MIN_PHRASE_SECONDS = 0.15
TURN_PHRASE_SECONDS = 0.9
"Phrases at least this long make up turns."
MAX_PHRASE_SECONDS = 5.0
"Longer phrases are cut at their widest inner gap (a turn target should not be overshot by 10 s)."
WORD_SECONDS = (0.25, 0.8)
"Words this long are backchannels."
UPSAMPLE_TAPS = 95
LEAD_IN_MAX_SECONDS = 0.4
LEAD_OUT_MAX_SECONDS = 0.3

Pcm = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Phrase:
    """A stretch of one recording that is speech from its first sample to its last."""

    clip: str
    "The recording's path inside its package."
    start: int
    "First sample in the 16 kHz recording."
    end: int
    lead_in: int
    "Samples of the recording's own audio before `start` that are no speech of another phrase."
    lead_out: int
    runs: tuple[tuple[int, int], ...]
    "Voiced-and-edge runs (samples from `start`): where a cut lands in sound, not in a gap."

    @property
    def samples(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Voice:
    """One speaker's recordings (16 kHz float) and the phrases and words cut from them."""

    name: str
    clips: Mapping[str, Pcm]
    phrases: tuple[Phrase, ...]
    "Turn material: phrases of at least TURN_PHRASE_SECONDS."
    words: tuple[Phrase, ...]
    "Backchannel material: single words within WORD_SECONDS."

    def audio(self, phrase: Phrase, *, before: int = 0, after: int = 0) -> Pcm:
        """The phrase with `before` samples of its lead-in and `after` of its lead-out."""
        if before > phrase.lead_in or after > phrase.lead_out:
            raise ValueError("more lead-in or lead-out than the recording has")
        return self.clips[phrase.clip][phrase.start - before : phrase.end + after]


def read_clip(path: Path, rate: int, *, headerless: bool = False) -> Pcm:
    """A 16-bit mono recording as 16 kHz float (full scale 1.0), its DC offset removed."""
    if headerless:
        raw = path.read_bytes()
    else:
        with wave.open(str(path), "rb") as w:
            if w.getnchannels() != 1 or w.getsampwidth() != 2:
                raise ValueError(f"{path.name}: not 16-bit mono")
            rate = w.getframerate()
            raw = w.readframes(w.getnframes())
    pcm = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    pcm -= pcm.mean()
    if rate == RATE // 2:
        # Band-limited doubling: zeros between the samples, then a low-pass at 4 kHz.
        doubled = np.zeros(2 * len(pcm))
        doubled[::2] = pcm
        taps = np.arange(-UPSAMPLE_TAPS // 2 + 1, UPSAMPLE_TAPS // 2 + 1)
        low_pass = np.sinc(taps / 2) * np.kaiser(UPSAMPLE_TAPS, 8.0)
        pcm = np.convolve(doubled, low_pass, mode="same")
    elif rate != RATE:
        raise ValueError(f"{path.name}: {rate} Hz, expected 8 or 16 kHz")
    return pcm.astype(np.float32)


def frame_levels(pcm: Pcm) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per 10 ms frame: level in dBFS, and voicing (peak autocorrelation at pitch lags, 0–1)."""
    count = len(pcm) // HOP
    frames = pcm[: count * HOP].astype(np.float64).reshape(count, HOP)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    window = 4 * HOP
    padded = np.concatenate([np.zeros(window // 2), pcm.astype(np.float64), np.zeros(window)])
    views = np.lib.stride_tricks.sliding_window_view(padded, window)[::HOP][:count]
    low, high = int(RATE / PITCH_HZ[1]), int(RATE / PITCH_HZ[0]) + 1
    voicing = np.zeros(count)
    for first in range(0, count, 1024):  # bounded memory for long prompts
        block = views[first : first + 1024]
        block = block - block.mean(axis=1, keepdims=True)
        power = np.abs(np.fft.rfft(block, 2 * window, axis=1)) ** 2
        lags = np.fft.irfft(power, axis=1)[:, :high]
        energy = lags[:, 0]
        ok = energy > 1e-10
        voicing[first : first + len(block)][ok] = lags[ok, low:high].max(axis=1) / energy[ok]
    return level, voicing


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def speech_runs(pcm: Pcm) -> list[tuple[int, int]]:
    """Runs of speech frames (10 ms units): sound that holds voiced frames, its unvoiced
    edges kept up to EDGE_MAX_SECONDS from them (a breath that runs into a word is cut there)."""
    level, voicing = frame_levels(pcm)
    top = float(np.percentile(level, 95))
    floor = float(np.percentile(level, 5))
    core = (level > top - CORE_BELOW_TOP_DB) & (voicing > VOICED_CORRELATION)
    sound = level > max(top - EDGE_BELOW_TOP_DB, floor + EDGE_ABOVE_FLOOR_DB)
    reach = round(EDGE_MAX_SECONDS * 100)
    runs = []
    for a, b in _runs(sound):
        voiced = np.flatnonzero(core[a:b])
        if len(voiced) < MIN_VOICED_FRAMES:
            continue  # a breath, a click or a blip of hum: no syllable in it
        runs.append((max(a, a + int(voiced[0]) - reach), min(b, a + int(voiced[-1]) + 1 + reach)))
    return runs


def _split(group: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """A phrase longer than MAX_PHRASE_SECONDS, cut at its widest inner gap (pieces ≥ 1 s)."""
    longest, least = round(MAX_PHRASE_SECONDS * 100), round(TURN_PHRASE_SECONDS * 100)
    if group[-1][1] - group[0][0] <= longest:
        return [group]
    cuts = [
        (group[i + 1][0] - group[i][1], i + 1)
        for i in range(len(group) - 1)
        if group[i][1] - group[0][0] >= least and group[-1][1] - group[i + 1][0] >= least
    ]
    if not cuts:
        return [group]
    _, at = max(cuts)
    return _split(group[:at]) + _split(group[at:])


def cut(
    clip: str, pcm: Pcm, *, gap_seconds: float, runs: list[tuple[int, int]] | None = None
) -> list[Phrase]:
    """The recording's phrases: speech runs joined across gaps shorter than gap_seconds."""
    if runs is None:
        runs = speech_runs(pcm)
    groups: list[list[tuple[int, int]]] = []
    for run in runs:
        if groups and run[0] - groups[-1][-1][1] < round(gap_seconds * 100):
            groups[-1].append(run)
        else:
            groups.append([run])
    groups = [
        piece
        for group in groups
        if group[-1][1] - group[0][0] >= round(MIN_PHRASE_SECONDS * 100)
        for piece in _split(group)
    ]
    phrases = []
    for i, group in enumerate(groups):
        start, end = group[0][0] * HOP, group[-1][1] * HOP
        previous_end = groups[i - 1][-1][1] * HOP if i else 0
        next_start = groups[i + 1][0][0] * HOP if i + 1 < len(groups) else len(pcm)
        phrases.append(
            Phrase(
                clip=clip,
                start=start,
                end=end,
                lead_in=min(start - previous_end, round(LEAD_IN_MAX_SECONDS * RATE)),
                lead_out=min(next_start - end, round(LEAD_OUT_MAX_SECONDS * RATE)),
                runs=tuple((a * HOP - start, b * HOP - start) for a, b in group),
            )
        )
    return phrases


def make_voice(name: str, clips: Mapping[str, Pcm]) -> Voice:
    """Cut every recording of a voice into turn phrases and backchannel words."""
    phrases: list[Phrase] = []
    words: list[Phrase] = []
    for clip, pcm in clips.items():
        runs = speech_runs(pcm)
        phrases += [
            p
            for p in cut(clip, pcm, gap_seconds=PAUSE_SECONDS, runs=runs)
            if p.samples >= TURN_PHRASE_SECONDS * RATE
        ]
        words += [
            # A word cut out of a phrase has no clean audio around it.
            Phrase(p.clip, p.start, p.end, 0, 0, p.runs)
            for p in cut(clip, pcm, gap_seconds=WORD_GAP_SECONDS, runs=runs)
            if WORD_SECONDS[0] * RATE <= p.samples <= WORD_SECONDS[1] * RATE
        ]
    return Voice(name, dict(clips), tuple(phrases), tuple(words))


def load_voices(root: Path) -> dict[str, Voice]:
    """Every corpus voice from the fetched recordings under `root` (see speech_sources)."""
    clips: dict[str, dict[str, Pcm]] = {}
    for package in PACKAGES:
        for clip in package.clips:
            path = clip_file(root, package, clip)
            clips.setdefault(clip.voice, {})[clip.path] = read_clip(
                path, clip.rate, headerless=clip.headerless
            )
    return {name: make_voice(name, voice_clips) for name, voice_clips in clips.items()}
