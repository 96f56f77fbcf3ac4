"""Freezes within a recent window, from a video leg's cumulative counters; pure.

`VideoSnapshot` counts freezes and their seconds since the stream began. The `video_frozen`
warning, the metrics and the report want what happened lately, so this keeps the growth of
those counters per observation (time passed in) and sums it over a window.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

FREEZE_FLOOR_SECONDS = 0.5
"In `frozen_score` each freeze counts at least this long: two freezes of any length reach"
" one second, as one freeze of a second or more does."


@dataclass(frozen=True)
class FreezeCounts:
    """Freezes and their summed inter-frame delays (seconds): cumulative, or their growth."""

    freezes: int = 0
    freeze_seconds: float = 0.0


def grown(previous: FreezeCounts, current: FreezeCounts) -> FreezeCounts:
    """Growth from previous to current; a counter that went down means the stream restarted
    (a new SSRC starts its counters afresh), so all of current is new."""
    if current.freezes < previous.freezes or current.freeze_seconds < previous.freeze_seconds:
        return current
    return FreezeCounts(
        current.freezes - previous.freezes, current.freeze_seconds - previous.freeze_seconds
    )


def frozen_score(counts: FreezeCounts) -> float:
    """max(freeze seconds, 0.5 s × freezes): ≥ 1 exactly when there were ≥ 2 freezes or
    ≥ 1 s of freezing (the video_frozen rule's two conditions in one number)."""
    return max(counts.freeze_seconds, FREEZE_FLOOR_SECONDS * counts.freezes)


class FreezeWindow:
    """The growth of one video stream's freeze counters over the last `keep_seconds`."""

    def __init__(self, keep_seconds: float = 30.0) -> None:
        self._keep_seconds = keep_seconds
        self._last = FreezeCounts()
        self._growth: deque[tuple[float, FreezeCounts]] = deque()
        "(when observed, growth since the previous observation), only non-zero ones."

    def observe(self, now: float, cumulative: FreezeCounts) -> FreezeCounts:
        """The stream's counters at `now`; returns their growth since the last call."""
        growth = grown(self._last, cumulative)
        self._last = cumulative
        if growth.freezes or growth.freeze_seconds:
            self._growth.append((now, growth))
        while self._growth and self._growth[0][0] <= now - self._keep_seconds:
            self._growth.popleft()
        return growth

    def restart(self) -> None:
        """A new stream follows (a reconnected leg): its counters start from zero, while
        the freezes already in the window stay there."""
        self._last = FreezeCounts()

    def since(self, now: float, seconds: float) -> FreezeCounts:
        """Freezes observed within the last `seconds` (at most keep_seconds)."""
        freezes, total = 0, 0.0
        for at, growth in reversed(self._growth):
            if at <= now - seconds:
                break
            freezes += growth.freezes
            total += growth.freeze_seconds
        return FreezeCounts(freezes, total)
