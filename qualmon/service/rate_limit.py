"""A per-key minimum interval between requests; the caller passes the time."""

from __future__ import annotations

MIN_SAMPLE_INTERVAL_SECONDS = 0.5
"Per (session, role): requests closer together than this get 429."
_FORGET_AFTER_SECONDS = 60.0
_PRUNE_ABOVE = 1024


class RateLimiter:
    """Last request time per key; the caller passes the time."""

    def __init__(self, min_interval_seconds: float = MIN_SAMPLE_INTERVAL_SECONDS) -> None:
        self.min_interval_seconds = min_interval_seconds
        self._last: dict[tuple[str, str], float] = {}

    def retry_after(self, key: tuple[str, str], now: float) -> float:
        """Seconds to wait (0: go ahead, and the attempt is noted)."""
        last = self._last.get(key)
        if last is not None and now - last < self.min_interval_seconds:
            return self.min_interval_seconds - (now - last)
        self._last[key] = now
        if len(self._last) > _PRUNE_ABOVE:
            self._last = {k: t for k, t in self._last.items() if now - t < _FORGET_AFTER_SECONDS}
        return 0.0
