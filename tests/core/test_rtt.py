"""Unit tests of the RTT tracker."""

from __future__ import annotations

import pytest

from qualmon.core.rtt import RttTracker


def test_none_until_measured() -> None:
    """No sample yet → rtt_seconds is None."""
    assert RttTracker().snapshot(1.0).rtt_seconds is None


def test_median_ignores_one_outlier() -> None:
    """One delayed probe among three does not move the estimate."""
    tracker = RttTracker(median_of=3)
    for i, rtt in enumerate([0.100, 0.400, 0.102]):
        tracker.add_sample(rtt, float(i))
    snap = tracker.snapshot(3.0)
    assert snap.rtt_seconds == pytest.approx(0.102)
    assert snap.last_rtt_seconds == pytest.approx(0.102)
    assert snap.samples == 3


def test_follows_a_lasting_change() -> None:
    """After median_of new samples the old level is gone."""
    tracker = RttTracker(median_of=3)
    for i in range(5):
        tracker.add_sample(0.05, float(i))
    for i in range(5, 8):
        tracker.add_sample(0.3, float(i))
    assert tracker.snapshot(8.0).rtt_seconds == pytest.approx(0.3)


def test_stale_estimate_is_withdrawn() -> None:
    """An estimate older than stale_after is not reported as current."""
    tracker = RttTracker(stale_after_seconds=10.0)
    tracker.add_sample(0.1, 0.0)
    tracker.add_timeout()
    snap = tracker.snapshot(11.0)
    assert snap.rtt_seconds is None
    assert snap.last_rtt_seconds == pytest.approx(0.1)
    assert snap.timeouts == 1


def test_negative_sample_rejected() -> None:
    """A negative RTT is a caller bug."""
    with pytest.raises(ValueError):
        RttTracker().add_sample(-0.1, 0.0)
