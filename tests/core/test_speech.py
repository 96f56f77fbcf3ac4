"""Unit tests of the speech segmenter (frame decisions in, segments out, time passed in)."""

from __future__ import annotations

import pytest

from qualmon.core.speech import SpeechParams, SpeechSegmenter

F = 0.02
NO_OVERHANG = SpeechParams(vad_overhang_seconds=0.0)


def feed(seg: SpeechSegmenter, pattern: str, start: float = 0.0) -> float:
    """'s' speech frame, '.' non-speech frame, '_' a missing frame (no decision)."""
    at = start
    for ch in pattern:
        if ch != "_":
            seg.add_frame(at, F, ch == "s")
        at += F
    return at


def test_onset_backdates_and_end_is_last_speech_frame() -> None:
    """A segment starts at its first speech frame and ends at its last one (no hangover)."""
    seg = SpeechSegmenter(NO_OVERHANG)
    feed(seg, "." * 10 + "s" * 50 + "." * 30)
    assert len(seg.segments) == 1
    assert seg.segments[0].start == pytest.approx(0.20)
    assert seg.segments[0].end == pytest.approx(1.20)
    assert seg.speech_seconds() == pytest.approx(1.0)


def test_blips_shorter_than_onset_are_not_speech() -> None:
    seg = SpeechSegmenter(SpeechParams(vad_overhang_seconds=0.0, onset_seconds=0.06))
    feed(seg, ".s..ss...s." * 5)
    assert seg.segments == [] and seg.open_segment() is None


def test_short_pause_is_bridged_long_pause_splits() -> None:
    """Pauses under the hangover stay inside one segment; longer ones split it."""
    seg = SpeechSegmenter(SpeechParams(vad_overhang_seconds=0.0, hangover_seconds=0.3))
    feed(seg, "s" * 20 + "." * 10 + "s" * 20 + "." * 20 + "s" * 20 + "." * 20)
    assert [(round(s.start, 2), round(s.end, 2)) for s in seg.segments] == [(0.0, 1.0), (1.4, 1.8)]


def test_open_segment_counts_until_closed() -> None:
    seg = SpeechSegmenter(NO_OVERHANG)
    feed(seg, "s" * 25)
    current = seg.open_segment()
    assert current is not None and current.end == pytest.approx(0.5)
    assert seg.speech_seconds() == pytest.approx(0.5)
    assert seg.segments == []


def test_dropout_inside_speech_is_unknown_not_silence() -> None:
    """A missing stretch marked unknown neither splits the segment nor counts as speech."""
    seg = SpeechSegmenter(SpeechParams(vad_overhang_seconds=0.0, hangover_seconds=0.3))
    seg.add_unknown(0.5, 1.0)
    feed(seg, "s" * 25 + "_" * 25 + "s" * 25 + "." * 20)
    assert len(seg.segments) == 1
    segment = seg.segments[0]
    assert (segment.start, segment.end) == pytest.approx((0.0, 1.5))
    assert segment.unknown_seconds == pytest.approx(0.5)
    assert seg.speech_seconds() == pytest.approx(1.0)


def test_gap_without_loss_is_silence() -> None:
    """A frame gap not explained by a dropout (DTX) is silence and ends the segment."""
    seg = SpeechSegmenter(SpeechParams(vad_overhang_seconds=0.0, hangover_seconds=0.3))
    feed(seg, "s" * 25 + "_" * 25 + "s" * 25 + "." * 20)
    assert len(seg.segments) == 2
    assert seg.speech_seconds() == pytest.approx(1.0)


def test_speaker_stopping_during_a_dropout() -> None:
    """Speech, then a dropout, then silence: the unknown stretch is not added to the segment."""
    seg = SpeechSegmenter(SpeechParams(vad_overhang_seconds=0.0, hangover_seconds=0.3))
    seg.add_unknown(0.5, 1.0)
    feed(seg, "s" * 25 + "_" * 25 + "." * 30)
    assert len(seg.segments) == 1
    assert seg.segments[0].end == pytest.approx(0.5)
    assert seg.segments[0].unknown_seconds == 0.0


def test_speech_around_a_gap() -> None:
    """In speech: speech frames within the margin before and after the gap."""
    seg = SpeechSegmenter(SpeechParams(vad_overhang_seconds=0.0, speech_margin_seconds=0.3))
    seg.add_unknown(0.5, 1.0)
    feed(seg, "s" * 25 + "_" * 25)
    assert seg.speech_around(0.5, 1.0) is None  # not decidable yet
    feed(seg, "s" * 20, start=1.0)
    assert seg.speech_around(0.5, 1.0) is True
    quiet = SpeechSegmenter(NO_OVERHANG)
    quiet.add_unknown(0.5, 1.0)
    feed(quiet, "." * 25 + "_" * 25 + "s" * 20)
    assert quiet.speech_around(0.5, 1.0) is False


def test_mic_silent_after_threshold() -> None:
    """No speech and only sub-threshold levels for the configured time → mic_silent."""
    seg = SpeechSegmenter(
        SpeechParams(vad_overhang_seconds=0.0, mic_silent_after_seconds=2.0, silence_rms=0.001)
    )
    end = feed(seg, "." * 50)
    seg.add_level(end, 0.0)
    assert not seg.mic_silent()
    end = feed(seg, "." * 60, start=end)
    seg.add_level(end, 0.0001)
    assert seg.mic_silent()
    seg.add_level(end, 0.01)  # a sound: no longer silent
    assert not seg.mic_silent()


def test_speech_resets_mic_silent() -> None:
    seg = SpeechSegmenter(SpeechParams(vad_overhang_seconds=0.0, mic_silent_after_seconds=1.0))
    end = feed(seg, "." * 60)
    assert seg.mic_silent()
    feed(seg, "sss", start=end)
    assert not seg.mic_silent()


def test_vad_overhang_is_taken_off_segment_ends() -> None:
    """webrtcvad's own trailing 'speech' frames are not counted as speech."""
    seg = SpeechSegmenter(SpeechParams(vad_overhang_seconds=0.1))
    feed(seg, "s" * 50 + "." * 30)
    assert seg.segments[0].end == pytest.approx(0.9)
    assert seg.speech_seconds() == pytest.approx(0.9)


def test_overhang_table_follows_webrtcvad() -> None:
    """kOverHangMax2: 7 frames (modes 0–1) or 5 (modes 2–3) of 20 ms."""
    from qualmon.core.speech import vad_overhang_seconds

    assert vad_overhang_seconds(0) == pytest.approx(0.14)
    assert vad_overhang_seconds(2) == pytest.approx(0.10)
    assert vad_overhang_seconds(3, 0.03) == pytest.approx(0.09)


def test_segments_since_matches_a_full_filter() -> None:
    """The backwards scan returns exactly the segments a full filter would."""
    seg = SpeechSegmenter(NO_OVERHANG)
    feed(seg, ("s" * 20 + "." * 20) * 10 + "s" * 10)
    for since in (0.0, 3.3, 7.0, 7.9, 100.0):
        expected = [s for s in seg.all_segments() if s.end >= since]
        assert seg.segments_since(since) == expected
