"""Round-trip time from STUN binding transactions on the selected ICE pair."""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class RttSnapshot:
    """RTT estimate of one leg."""

    rtt_seconds: float | None
    "Median of the last few samples (robust to one delayed probe); None until measured."
    last_rtt_seconds: float | None
    "The newest sample."
    samples: int
    "Transactions answered so far."
    timeouts: int
    "Transactions that got no answer."
    last_sample_at: float | None
    "When the newest sample was taken (monotonic seconds)."


class RttTracker:
    """Keeps recent RTT samples; the caller passes the time of each."""

    def __init__(self, *, median_of: int = 3, stale_after_seconds: float = 10.0) -> None:
        self._recent: deque[float] = deque(maxlen=median_of)
        self._stale_after = stale_after_seconds
        self.samples = 0
        self.timeouts = 0
        self.last_sample_at: float | None = None

    def add_sample(self, rtt_seconds: float, now: float) -> None:
        if rtt_seconds < 0:
            raise ValueError("rtt_seconds must be >= 0")
        self._recent.append(rtt_seconds)
        self.samples += 1
        self.last_sample_at = now

    def add_timeout(self) -> None:
        self.timeouts += 1

    def snapshot(self, now: float) -> RttSnapshot:
        fresh = self.last_sample_at is not None and now - self.last_sample_at <= self._stale_after
        return RttSnapshot(
            rtt_seconds=statistics.median(self._recent) if fresh and self._recent else None,
            last_rtt_seconds=self._recent[-1] if self._recent else None,
            samples=self.samples,
            timeouts=self.timeouts,
            last_sample_at=self.last_sample_at,
        )
