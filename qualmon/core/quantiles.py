"""Percentiles of a long series in bounded memory: a log-binned histogram."""

from __future__ import annotations

import math

# 2 % wide bins: any percentile is within 1 % of an exact one, and a 10 µs..10 s range
# needs ~700 bins at most (a session's samples usually fill a few dozen).
DEFAULT_BIN_RATIO = 1.02
DEFAULT_FLOOR = 1e-5


class LogHistogram:
    """Counts of positive values in geometric bins; values at or below `floor` count as 0."""

    def __init__(self, *, floor: float = DEFAULT_FLOOR, ratio: float = DEFAULT_BIN_RATIO) -> None:
        if floor <= 0 or ratio <= 1:
            raise ValueError("floor must be > 0 and ratio > 1")
        self._floor = floor
        self._log_ratio = math.log(ratio)
        self._ratio = ratio
        self._bins: dict[int, int] = {}
        self._zeros = 0
        self.count = 0
        self.min: float | None = None
        self.max: float | None = None

    def add(self, value: float) -> None:
        if math.isnan(value):
            return
        self.count += 1
        self.min = value if self.min is None else min(self.min, value)
        self.max = value if self.max is None else max(self.max, value)
        if value <= self._floor:
            self._zeros += 1
            return
        index = int(math.log(value / self._floor) / self._log_ratio)
        self._bins[index] = self._bins.get(index, 0) + 1

    def quantile(self, q: float) -> float | None:
        """Nearest-rank q-quantile (0 < q <= 1), None without samples."""
        if not 0 < q <= 1:
            raise ValueError("q must be within (0, 1]")
        if self.count == 0 or self.min is None or self.max is None:
            return None
        rank = max(1, math.ceil(q * self.count))
        if rank <= self._zeros:
            return max(0.0, self.min)
        seen = self._zeros
        for index in sorted(self._bins):
            seen += self._bins[index]
            if seen >= rank:
                # The bin's geometric middle, kept within what was really observed.
                middle = self._floor * self._ratio ** (index + 0.5)
                return min(self.max, max(self.min, middle))
        return self.max
