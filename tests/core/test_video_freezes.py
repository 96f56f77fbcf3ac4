"""Unit tests of the freeze window: growth of cumulative counters, summed over recent time."""

from __future__ import annotations

import pytest

from qualmon.core.video_freezes import FreezeCounts, FreezeWindow, frozen_score, grown


def test_growth_of_cumulative_counters() -> None:
    """Growth is the difference; a counter that went down is a restarted stream."""
    assert grown(FreezeCounts(2, 0.5), FreezeCounts(3, 0.7)) == FreezeCounts(1, pytest.approx(0.2))
    assert grown(FreezeCounts(2, 0.5), FreezeCounts(2, 0.5)) == FreezeCounts(0, 0.0)
    assert grown(FreezeCounts(5, 2.0), FreezeCounts(1, 0.3)) == FreezeCounts(1, 0.3)


@pytest.mark.parametrize(
    ("freezes", "seconds", "reaches_one"),
    [
        (0, 0.0, False),
        (1, 0.2, False),  # one short freeze: a blip
        (1, 0.99, False),
        (1, 1.0, True),  # one freeze of a second
        (2, 0.37, True),  # two freezes of any length
        (3, 0.6, True),
    ],
)
def test_score_is_two_freezes_or_one_second(
    freezes: int, seconds: float, reaches_one: bool
) -> None:
    """frozen_score ≥ 1 exactly when ≥ 2 freezes or ≥ 1 s frozen."""
    assert (frozen_score(FreezeCounts(freezes, seconds)) >= 1.0) is reaches_one


def test_window_sums_what_grew_within_it() -> None:
    """Freezes count from when they were observed; they leave the window after its span."""
    window = FreezeWindow(keep_seconds=30.0)
    assert window.observe(100.0, FreezeCounts(0, 0.0)) == FreezeCounts()
    window.observe(101.0, FreezeCounts(1, 0.25))
    window.observe(110.0, FreezeCounts(2, 0.5))
    assert window.since(110.0, 30.0) == FreezeCounts(2, 0.5)
    assert window.since(110.0, 5.0) == FreezeCounts(1, 0.25)
    window.observe(131.0, FreezeCounts(2, 0.5))  # 30 s after the first freeze: it is gone
    assert window.since(131.0, 30.0) == FreezeCounts(1, 0.25)
    window.observe(140.0, FreezeCounts(2, 0.5))
    assert window.since(140.0, 30.0) == FreezeCounts(0, 0.0)


def test_a_restarted_stream_counts_its_new_freezes() -> None:
    """A new SSRC restarts the counters at 0: its freezes are new, the old ones stay counted."""
    window = FreezeWindow()
    window.observe(0.0, FreezeCounts(4, 1.0))
    window.observe(1.0, FreezeCounts(1, 0.2))
    assert window.since(1.0, 30.0) == FreezeCounts(5, pytest.approx(1.2))
