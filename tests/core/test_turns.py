"""Unit tests of the talk-turn engine on hand-made segment lists."""

from __future__ import annotations

import pytest

from qualmon.core.speech import Segment
from qualmon.core.turns import compute_turns

T, C = "therapist", "client"


def segs(*pairs: tuple[float, float]) -> list[Segment]:
    return [Segment(a, b) for a, b in pairs]


def test_clean_alternation() -> None:
    """Three alternating turns with known gaps; shares from speech only."""
    stats = compute_turns({T: segs((0, 4), (9, 12)), C: segs((4.5, 8))}, span=(0, 12))
    assert stats.turn_count == {T: 2, C: 1}
    assert stats.speech_seconds == {T: 7, C: 3.5}
    assert stats.talk_share[T] == pytest.approx(7 / 10.5)
    assert stats.overlap_seconds == 0
    assert stats.response_gaps[C].median_seconds == pytest.approx(0.5)  # type: ignore[union-attr]
    assert stats.response_gaps[T].median_seconds == pytest.approx(1.0)  # type: ignore[union-attr]
    assert stats.silence_ratio == pytest.approx(1.5 / 12)
    assert stats.longest_turn_seconds[T] == 4
    assert stats.mean_turn_seconds[T] == pytest.approx(3.5)


def test_pauses_stay_inside_a_turn() -> None:
    """One role's segments with only silence between them are one turn."""
    stats = compute_turns({T: segs((0, 2), (3, 5), (7, 8)), C: []})
    assert stats.turn_count == {T: 1, C: 0}
    assert stats.longest_turn_seconds[T] == 8
    assert stats.talk_share == {T: 1.0, C: 0.0}
    assert stats.response_gaps == {T: None, C: None}


def test_backchannel_does_not_take_the_floor() -> None:
    """A short overlap inside the holder's speech is a backchannel, not a turn."""
    stats = compute_turns({C: segs((0, 6)), T: segs((2.0, 2.4))})
    assert stats.backchannels == {T: 1, C: 0}
    assert stats.interruptions == {T: 0, C: 0}
    assert stats.turn_count == {C: 1, T: 0}
    assert stats.overlap_seconds == pytest.approx(0.4)


def test_interruption_takes_the_floor() -> None:
    """Speaking over the holder, who stops while the newcomer goes on: interruption."""
    stats = compute_turns({T: segs((0, 5)), C: segs((4.5, 9))})
    assert stats.interruptions == {T: 0, C: 1}
    assert stats.turn_count == {T: 1, C: 1}
    assert stats.overlap_seconds == pytest.approx(0.5)
    assert stats.response_gaps[C].median_seconds == pytest.approx(-0.5)  # type: ignore[union-attr]


def test_long_overlap_outlasted_is_neither() -> None:
    """An overlap ≥ 1 s that the holder outlasts is overlap only."""
    stats = compute_turns({T: segs((0, 10)), C: segs((2, 5))})
    assert stats.interruptions == {T: 0, C: 0}
    assert stats.backchannels == {T: 0, C: 0}
    assert stats.turn_count == {T: 1, C: 0}
    assert stats.overlap_seconds == pytest.approx(3)


def test_segment_boundaries_touching() -> None:
    """A response starting exactly when the other ends is a zero gap, no overlap."""
    stats = compute_turns({T: segs((0, 2)), C: segs((2, 3))})
    assert stats.overlap_seconds == 0
    assert stats.interruptions == {T: 0, C: 0}
    assert stats.response_gaps[C].median_seconds == 0  # type: ignore[union-attr]


def test_one_role_absent_and_nobody_spoke() -> None:
    empty = compute_turns({}, span=(0, 10))
    assert empty.talk_share == {}
    assert empty.silence_ratio == 1.0
    assert empty.turn_count == {T: 0, C: 0}
    assert empty.mean_turn_seconds == {T: None, C: None}


def test_unknown_is_excluded_from_speech_and_span() -> None:
    """Missing audio inside a segment is not speech; it is not silence either."""
    stats = compute_turns(
        {T: [Segment(0, 4, unknown_seconds=1.0)], C: segs((5, 6))},
        span=(0, 6),
        unknown_seconds=1.0,
    )
    assert stats.speech_seconds[T] == 3
    assert stats.silence_ratio == pytest.approx(1.0 / 5.0)


def test_gap_percentiles() -> None:
    """Median and p90 of the response gaps of one responder."""
    t, c = [], []
    at = 0.0
    for gap in (0.1, 0.2, 0.3, 0.4, 1.0):
        t.append((at, at + 1))
        c.append((at + 1 + gap, at + 2 + gap))
        at += 3
    stats = compute_turns({T: segs(*t), C: segs(*c)})
    gaps = stats.response_gaps[C]
    assert gaps is not None and gaps.count == 5
    assert gaps.median_seconds == pytest.approx(0.3)
    assert gaps.p90_seconds == pytest.approx(0.76)
