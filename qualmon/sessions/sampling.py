"""When each leg and session is sampled: once a second each, but not all on the same tick.

Sampling every leg and session on one tick held the event loop for 30 ms and more at 250
legs (`qualmon bench --connect`, QUALMON_BENCH_TIME_CALLS=1): a WHIP answer or a datagram
arriving then waited for all of it. Each key keeps its own phase instead — its first sample
on the first tick that sees it, the next ones a second apart — so legs and sessions that
start at different moments are sampled on different ticks and each tick does a share.
"""

from __future__ import annotations

SAMPLE_EVERY_SECONDS = 1.0


class SampleSchedule:
    """Per key (a leg's resource id, a session id): is a sample due on this tick?"""

    def __init__(self, every_seconds: float = SAMPLE_EVERY_SECONDS) -> None:
        self._every = every_seconds
        self._due: dict[str, float] = {}

    def due(self, key: str, now: float) -> bool:
        """True at most once per period per key; the first call for a key is due."""
        at = self._due.get(key)
        if at is not None and now < at:
            return False
        # Keep the phase; after a stall (now far past), start afresh from now.
        self._due[key] = (
            now + self._every if at is None or now - at >= self._every else at + self._every
        )
        return True

    def forget(self, key: str) -> None:
        self._due.pop(key, None)

    def __len__(self) -> int:
        return len(self._due)
