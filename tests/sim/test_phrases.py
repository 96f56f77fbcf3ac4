"""Cutting recordings into phrases the way an annotator marks speech (synthetic recordings)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from qualmon.sim.phrases import (
    HOP,
    MAX_PHRASE_SECONDS,
    RATE,
    Phrase,
    cut,
    make_voice,
    read_clip,
    speech_runs,
)


def vowel(seconds: float, *, level: float = 0.1) -> np.ndarray:
    """A voiced sound: 140 Hz with harmonics."""
    t = np.arange(round(seconds * RATE)) / RATE
    return level * sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 6))


def hiss(seconds: float, *, level: float, seed: int = 1) -> np.ndarray:
    """Unvoiced sound (a breath, an "s")."""
    return np.random.default_rng(seed).normal(0, level, round(seconds * RATE))


def silence(seconds: float) -> np.ndarray:
    return np.random.default_rng(2).normal(0, 1e-5, round(seconds * RATE))


def recording(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts).astype(np.float32)


def test_pause_under_200_ms_is_inside_a_phrase_and_one_of_200_ms_ends_it() -> None:
    pcm = recording(
        silence(0.5), vowel(0.6), silence(0.15), vowel(0.5), silence(0.25), vowel(0.7), silence(0.5)
    )
    phrases = cut("x", pcm, gap_seconds=0.2)
    assert [(p.start / RATE, p.end / RATE) for p in phrases] == [
        pytest.approx((0.5, 1.75), abs=0.011),
        pytest.approx((2.0, 2.7), abs=0.011),
    ]
    first, second = phrases
    assert len(first.runs) == 2, "the 150 ms pause is kept as a gap between runs"
    assert first.lead_in == pytest.approx(0.4 * RATE, abs=HOP)  # capped at 0.4 s
    # Both may reach across the whole pause; a dialogue splits it between them.
    assert first.lead_out == second.lead_in == pytest.approx(0.25 * RATE, abs=HOP)


def test_a_breath_is_not_speech_but_a_fricative_next_to_a_vowel_is() -> None:
    pcm = recording(
        silence(0.5),
        hiss(0.3, level=0.01),  # a breath on its own
        silence(0.3),
        hiss(0.1, level=0.02, seed=3),  # "s" …
        vowel(0.5),  # … "o"
        silence(0.5),
    )
    runs = speech_runs(pcm)
    assert len(runs) == 1
    start, end = runs[0]
    assert start / 100 == pytest.approx(1.1, abs=0.011)
    assert end / 100 == pytest.approx(1.7, abs=0.011)


def test_long_phrases_are_cut_at_their_widest_gap() -> None:
    parts = [silence(0.3)]
    for i in range(8):
        parts += [vowel(0.8), silence(0.17 if i != 4 else 0.19)]
    pcm = recording(*parts, silence(0.3))
    phrases = cut("x", pcm, gap_seconds=0.2)
    assert len(phrases) >= 2
    assert all(p.samples <= MAX_PHRASE_SECONDS * RATE for p in phrases)
    assert phrases[0].end / RATE == pytest.approx(0.3 + 5 * 0.8 + 4 * 0.17, abs=0.011)


def test_voice_keeps_turn_phrases_and_single_words_apart() -> None:
    pcm = recording(
        silence(0.4), vowel(0.4), silence(0.4), vowel(1.2), silence(0.08), vowel(0.6), silence(0.4)
    )
    voice = make_voice("v", {"x": pcm})
    assert [round(p.samples / RATE, 1) for p in voice.phrases] == [1.9]
    assert sorted(round(p.samples / RATE, 1) for p in voice.words) == [0.4, 0.6]
    assert all(w.lead_in == w.lead_out == 0 for w in voice.words)
    phrase = voice.phrases[0]
    assert len(voice.audio(phrase, before=10, after=10)) == phrase.samples + 20
    with pytest.raises(ValueError):
        voice.audio(Phrase("x", phrase.start, phrase.end, 0, 0, ()), before=1)


def test_read_clip_doubles_8_khz_and_removes_dc(tmp_path: Path) -> None:
    t = np.arange(8000) / 8000
    tone = (0.3 * np.sin(2 * np.pi * 1000 * t) + 0.05) * 32767
    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(tone.astype("<i2").tobytes())
    pcm = read_clip(path, 8000)
    assert len(pcm) == RATE
    assert abs(float(pcm.mean())) < 1e-4
    expected = 0.3 * np.sin(2 * np.pi * 1000 * np.arange(RATE) / RATE)
    assert np.max(np.abs(pcm[100:-100] - expected[100:-100])) < 0.01
    raw = tmp_path / "tone.raw"
    raw.write_bytes((expected * 32767).astype("<i2").tobytes())
    assert np.allclose(read_clip(raw, RATE, headerless=True), expected, atol=1e-3)
