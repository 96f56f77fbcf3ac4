"""A placed dialogue's two legs as microphones would send them: levels, rooms, suppression, echo.

Each leg is its role's voice (phrases at their placed times, with the recording's own breaths
and floor in the pauses around them), brought to an active speech level 12 dB apart from the
other leg's, plus what the variant adds:
- room: coloured noise (pink, with rumble and mains hum) at 15–30 dB SNR;
- floor: what browser noise suppression sends: the voice with a little residual room noise
  while the suppressor is open, and only white noise at about −60 dBFS between words (a
  level of −63 to −57 dBFS drawn each time it closes: abrupt steps); the suppressor closes
  50–150 ms after speech (pauses ≥ 200 ms included) and takes breaths along;
- echo: a residual of the other leg, delayed 60–180 ms, band-limited and with a few
  reflections, at −35 to −25 dB under the other leg's speech level.
Every drawn number is kept in the leg's conditions; the same dialogue and variant give the
same audio.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from .corpus import DialogueTruth, Placement, Span
from .dialogue import ROLES
from .phrases import RATE, Pcm, Voice

LOUD_DBFS = -24.0
"Active speech level of the louder leg."
LEVEL_DIFFERENCE_DB = 12.0
STUDIO_FLOOR_DBFS = -70.0
"The clean variant's floor: white noise, as the espeak fixtures have."
SUPPRESSED_FLOOR_DBFS = (-63.0, -57.0)
"The suppressed floor's level, drawn anew each time the suppressor closes."
SUPPRESSION_DB = 15.0
"How far the suppressor lowers room noise while it is open."
SUPPRESSOR_HANGOVER_SECONDS = (0.05, 0.15)
SUPPRESSOR_RAMP_SECONDS = 0.002
ECHO_DELAY_SECONDS = (0.06, 0.18)
ECHO_BAND_HZ = (200.0, 3800.0)
ECHO_HALF_TAPS = 64
FADE_SECONDS = 0.005
Float = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Variant:
    """What the room and the browser add to both legs."""

    name: str
    room_snr_db: tuple[float, float] | None = None
    "Room noise at an SNR drawn per leg from this range; None: a studio floor at −70 dBFS."
    suppressed: bool = False
    "Noise suppression: between words only white noise at about −60 dBFS, in abrupt steps."
    echo_db: tuple[float, float] | None = None
    "Residual echo of the other leg, relative to that leg's speech level, drawn per leg."


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("clean"),
        Variant("room", room_snr_db=(15.0, 30.0)),
        Variant("floor", room_snr_db=(15.0, 30.0), suppressed=True),
        Variant("echo", echo_db=(-35.0, -25.0)),
        Variant("room_echo", room_snr_db=(15.0, 30.0), echo_db=(-35.0, -25.0)),
    )
}


@dataclass(frozen=True)
class LegConditions:
    """Everything drawn for one leg (levels in dBFS, full scale 1.0)."""

    level_dbfs: float
    "Active speech level: RMS over the role's phrase-level speech."
    snr_db: float | None
    "Speech level over the room noise's RMS; None without room noise."
    floor_dbfs: tuple[float, ...]
    "The white floor's level(s): one for the studio, the steps under suppression, else none."
    hangover_seconds: float | None
    "How long the suppressor stays open after speech; None without one."
    echo_db: float | None
    "Echo RMS over the other role's (delayed) speech, relative to that role's speech level."
    echo_delay_seconds: float | None


@dataclass(frozen=True)
class Leg:
    """One role's leg at 16 kHz, full scale 1.0, and the parts it is the sum of."""

    speech: Pcm
    "The role's own voice as sent (breaths and recording floor in its pauses included)."
    noise: Pcm
    "Studio floor, room noise, or the suppressor's output between words."
    echo: Pcm
    mix: Pcm

    def pcm16(self) -> npt.NDArray[np.int16]:
        return np.round(np.clip(self.mix, -1.0, 32767 / 32768) * 32768).astype(np.int16)


@dataclass(frozen=True)
class RenderedDialogue:
    """A dialogue in one variant: its truth, both legs and what was drawn for them."""

    truth: DialogueTruth
    variant: Variant
    conditions: Mapping[str, LegConditions]
    legs: Mapping[str, Leg]

    @property
    def name(self) -> str:
        return f"{self.truth.name}/{self.variant.name}"


def mask(spans: Sequence[Span], samples: int, *, shift: int = 0) -> npt.NDArray[np.bool_]:
    """Samples inside the spans (seconds), moved by `shift` samples."""
    out = np.zeros(samples, dtype=bool)
    for start, end in spans:
        out[max(0, round(start * RATE) + shift) : max(0, round(end * RATE) + shift)] = True
    return out


def level_dbfs(pcm: npt.ArrayLike, where: npt.NDArray[np.bool_] | None = None) -> float:
    x = np.asarray(pcm, dtype=np.float64)
    if where is not None:
        x = x[where]
    return float(10 * np.log10(np.mean(x**2) + 1e-20))


def _fade(chunk: Float, samples: int) -> None:
    n = min(samples, len(chunk) // 2)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n))
    chunk[:n] *= ramp
    chunk[len(chunk) - n :] *= ramp[::-1]


def voice_track(truth: DialogueTruth, role: str, voice: Voice) -> Float:
    """The role's phrases at their places, each brought to the same RMS plus its gain, with the
    recording's own lead-in and lead-out filling the pauses around them (split between the
    two phrases of a pause); a phrase cut off by an interruption has no lead-out."""
    samples = round(truth.seconds * RATE)
    track = np.zeros(samples)
    own = [p for p in truth.placements if p.role == role]
    outs = [0 if p.cut_off else p.phrase.lead_out for p in own]
    for i, p in enumerate(own):
        before_gap = p.at - (own[i - 1].end if i else 0)
        after_gap = (own[i + 1].at if i + 1 < len(own) else samples) - p.end
        after = min(outs[i], after_gap // 2 if i + 1 < len(own) else after_gap)
        previous_after = min(outs[i - 1], before_gap // 2) if i else 0
        before = min(p.phrase.lead_in, before_gap - previous_after)
        track[p.at - before : p.end + after] += _chunk(voice, p, before, after)
    return track


def _chunk(voice: Voice, p: Placement, before: int, after: int) -> Float:
    whole = voice.audio(p.phrase).astype(np.float64)
    scale = 10 ** (p.gain_db / 20) / float(np.sqrt(np.mean(whole**2)))
    chunk = voice.audio(p.phrase, before=before, after=after).astype(np.float64)
    chunk = chunk[: before + p.samples + after] * scale
    _fade(chunk, round(FADE_SECONDS * RATE * (2 if p.cut_off else 1)))
    return chunk


def _rng(truth: DialogueTruth, variant: Variant, role: str) -> np.random.Generator:
    return np.random.default_rng(
        [zlib.crc32(truth.name.encode()), zlib.crc32(variant.name.encode()), ROLES.index(role)]
    )


def room_noise(rng: np.random.Generator, samples: int) -> Float:
    """Unit-RMS room noise: pink, more rumble under 200 Hz, little above 5 kHz, mains hum."""
    size = 1 << (samples - 1).bit_length()  # a power of two: the FFT stays fast
    bins = size // 2 + 1
    spectrum = rng.normal(size=bins) + 1j * rng.normal(size=bins)
    f = np.maximum(np.fft.rfftfreq(size, 1 / RATE), 20.0)
    shape = np.sqrt(100.0 / f) * (1 + 1.5 / (1 + (f / 200.0) ** 2)) / (1 + (f / 5000.0) ** 4)
    noise = np.fft.irfft(spectrum * shape, size)[:samples]
    noise /= np.sqrt(np.mean(noise**2))
    t = np.arange(RATE // 50) / RATE  # one period of 50 Hz, repeated
    hum = sum(np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
    noise += 0.1 * np.resize(hum, samples)
    return np.asarray(noise / np.sqrt(np.mean(noise**2)))


def _floor_envelope(
    rng: np.random.Generator, spans: Sequence[Span], hangover: float, samples: int
) -> tuple[Float, tuple[float, ...]]:
    """The suppressed floor's level (linear): a new one each time the suppressor closes."""
    closes = [0, *(min(samples, round((b + hangover) * RATE)) for _, b in spans), samples]
    envelope = np.empty(samples)
    levels: list[float] = []
    for a, b in itertools.pairwise(closes):
        levels.append(float(rng.uniform(*SUPPRESSED_FLOOR_DBFS)))
        envelope[a:b] = 10 ** (levels[-1] / 20)
    return envelope, tuple(levels)


def _gate(spans: Sequence[Span], samples: int, hangover: float) -> Float:
    """1 while the suppressor is open (speech plus hangover), 0 when closed, 2 ms ramps."""
    gate = mask([(a, b + hangover) for a, b in spans], samples).astype(np.float64)
    ramp = round(SUPPRESSOR_RAMP_SECONDS * RATE)
    smooth = np.convolve(gate, np.ones(ramp) / ramp, mode="same")
    return np.asarray(smooth)


def _echo_response(rng: np.random.Generator) -> Float:
    """Band-limited (loudspeaker and microphone) with three decaying reflections."""
    taps = np.arange(-ECHO_HALF_TAPS, ECHO_HALF_TAPS + 1)
    low, high = (f / RATE for f in ECHO_BAND_HZ)
    band = (2 * high * np.sinc(2 * high * taps) - 2 * low * np.sinc(2 * low * taps)) * np.hamming(
        len(taps)
    )
    response = np.zeros(len(taps) + round(0.04 * RATE))
    response[: len(taps)] += band
    for lo_ms, hi_ms, db in ((3, 9, -6), (10, 19, -10), (22, 38, -14)):
        at = round(rng.uniform(lo_ms, hi_ms) / 1000 * RATE)
        sign = 1 if rng.random() < 0.5 else -1
        response[at : at + len(taps)] += sign * 10 ** (db / 20) * band
    return response


def _convolve(x: Float, h: Float, *, skip: int = 0) -> Float:
    """x filtered by h, as long as x, its first `skip` samples (h's own delay) left out."""
    size = 1 << (len(x) + len(h)).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)
    return np.asarray(y[skip : skip + len(x)])


def _voice_and_noise(
    truth: DialogueTruth, role: str, voice: Voice, variant: Variant, rng: np.random.Generator
) -> tuple[Float, Float, LegConditions]:
    """The role's voice at its level, and what the room (and the suppressor) add to it."""
    samples = round(truth.seconds * RATE)
    spans = truth.speech[role]
    target = LOUD_DBFS - (LEVEL_DIFFERENCE_DB if role == truth.quieter else 0.0)
    track = voice_track(truth, role, voice)
    track *= 10 ** ((target - level_dbfs(track, mask(spans, samples))) / 20)
    conditions = LegConditions(target, None, (), None, None, None)
    if variant.room_snr_db is None:
        conditions = replace(conditions, floor_dbfs=(STUDIO_FLOOR_DBFS,))
        noise = rng.normal(0.0, 10 ** (STUDIO_FLOOR_DBFS / 20), samples)
    else:
        snr = float(rng.uniform(*variant.room_snr_db))
        conditions = replace(conditions, snr_db=snr)
        noise = room_noise(rng, samples) * 10 ** ((target - snr) / 20)
    if variant.suppressed:
        hangover = float(rng.uniform(*SUPPRESSOR_HANGOVER_SECONDS))
        gate = _gate(spans, samples, hangover)
        envelope, levels = _floor_envelope(rng, spans, hangover, samples)
        white = rng.normal(size=samples) * envelope
        noise = gate * noise * 10 ** (-SUPPRESSION_DB / 20) + (1 - gate) * white
        track = track * gate
        conditions = replace(conditions, hangover_seconds=hangover, floor_dbfs=levels)
    return track, noise, conditions


def _echo(
    far: Float,
    far_spans: Sequence[Span],
    far_level: float,
    echo_db: float,
    delay: int,
    rng: np.random.Generator,
) -> Float:
    """The far leg as it comes back: filtered, delayed, at echo_db under its speech level."""
    filtered = _convolve(far, _echo_response(rng), skip=ECHO_HALF_TAPS)
    heard = np.concatenate([np.zeros(delay), filtered])[: len(far)]
    region = mask(far_spans, len(far), shift=delay)
    return heard * 10 ** ((far_level + echo_db - level_dbfs(heard, region)) / 20)


def render(truth: DialogueTruth, voices: Mapping[str, Voice], variant: Variant) -> RenderedDialogue:
    """Both legs of a dialogue in a variant (16 kHz float32, full scale 1.0)."""
    rngs = {role: _rng(truth, variant, role) for role in ROLES}
    parts = {
        role: _voice_and_noise(truth, role, voices[truth.voices[role]], variant, rngs[role])
        for role in ROLES
    }
    conditions = {role: parts[role][2] for role in ROLES}
    echoes = {role: np.zeros(round(truth.seconds * RATE)) for role in ROLES}
    if variant.echo_db is not None:
        for role in ROLES:
            other, rng = ROLES[1 - ROLES.index(role)], rngs[role]
            echo_db = float(rng.uniform(*variant.echo_db))
            delay = round(rng.uniform(*ECHO_DELAY_SECONDS) * RATE)
            far = parts[other][0] + parts[other][1]
            far_level = conditions[other].level_dbfs
            echoes[role] = _echo(far, truth.speech[other], far_level, echo_db, delay, rng)
            conditions[role] = replace(
                conditions[role], echo_db=echo_db, echo_delay_seconds=delay / RATE
            )
    legs = {
        role: Leg(
            speech=parts[role][0].astype(np.float32),
            noise=parts[role][1].astype(np.float32),
            echo=echoes[role].astype(np.float32),
            mix=(parts[role][0] + parts[role][1] + echoes[role]).astype(np.float32),
        )
        for role in ROLES
    }
    return RenderedDialogue(truth, variant, conditions, legs)
