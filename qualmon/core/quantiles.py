"""Percentiles: of a list held in memory (`percentile`), and of a long series in bounded
memory (`LogHistogram`)."""

from __future__ import annotations

import math
from collections.abc import Iterable

# 2 % wide bins: any percentile is within 1 % of an exact one, and a 10 µs..10 s range
# needs ~700 bins at most (a session's samples usually fill a few dozen).
DEFAULT_BIN_RATIO = 1.02
DEFAULT_FLOOR = 1e-5


def percentile(values: Iterable[float], q: float) -> float:
    """The q-quantile (0 <= q <= 1) of `values` by linear interpolation between closest ranks.

    Definition 7 of Hyndman & Fan (1996): numpy's default, `statistics.quantiles(...,
    method="inclusive")`, spreadsheets' PERCENTILE.INC. Position q·(n−1) in the sorted values,
    interpolated between its neighbours: q = 0.5 is the median (equal to statistics.median
    up to the last bit), 0 the minimum, 1 the maximum; one value is every percentile.
    Every list in qualmon takes its percentiles here; a stream too long to keep goes
    into a LogHistogram instead.
    """
    if not 0 <= q <= 1:
        raise ValueError(f"q must be within [0, 1], got {q!r}")
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values: a percentile needs at least one")
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


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
                middle = self._floor * math.pow(self._ratio, index + 0.5)
                return min(self.max, max(self.min, middle))
        return self.max
