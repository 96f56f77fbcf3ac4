"""The bounded percentile histogram."""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence

import numpy as np
import pytest

from qualmon.core.quantiles import LogHistogram, percentile


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 1))
    return ordered[int(rank) - 1]


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99, 1.0])
def test_quantiles_within_one_percent(q: float) -> None:
    """Log-normal jitter-like samples: every percentile within 1 % of the exact one."""
    rng = random.Random(7)
    values = [rng.lognormvariate(-6, 0.8) for _ in range(5000)]
    hist = LogHistogram()
    for v in values:
        hist.add(v)
    assert hist.count == 5000
    got = hist.quantile(q)
    assert got == pytest.approx(exact(values, q), rel=0.01)


def test_empty_and_zero_values() -> None:
    """No samples: None. Zeros (jitter before the second packet) count as 0."""
    hist = LogHistogram()
    assert hist.quantile(0.5) is None
    for v in (0.0, 0.0, 0.0, 0.010):
        hist.add(v)
    assert hist.quantile(0.5) == 0.0
    assert hist.quantile(1.0) == pytest.approx(0.010, rel=0.01)


def test_memory_is_bounded() -> None:
    """A day of once-a-second samples spread over six decades keeps few hundred bins."""
    hist = LogHistogram()
    rng = random.Random(1)
    for _ in range(86400):
        hist.add(10 ** rng.uniform(-5, 1))
    assert len(hist._bins) < 800


# -- percentile of a list ------------------------------------------------------


def turns_percentile_until_now(values: Sequence[float], q: float) -> float:
    """core/turns.py's own percentile before there was one for all (the p90 of gaps)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def samples(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(-1, 1) for _ in range(n)]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 57, 1000])
def test_percentile_is_the_turns_p90_to_the_bit(n: int) -> None:
    """Replacing turns.py's function changed no result: equal, not approximately equal."""
    values = samples(n, seed=n)
    for q in (0.0, 0.1, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0):
        assert percentile(values, q) == turns_percentile_until_now(values, q)


@pytest.mark.parametrize("n", [2, 3, 10, 101])
def test_percentile_is_the_documented_definition(n: int) -> None:
    """Hyndman & Fan 7: numpy's default and statistics.quantiles(method='inclusive')."""
    values = samples(n, seed=100 + n)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    for k in range(1, 100):
        assert percentile(values, k / 100) == pytest.approx(cuts[k - 1], rel=1e-12)
        assert percentile(values, k / 100) == pytest.approx(
            float(np.percentile(values, k)), rel=1e-12
        )
    assert percentile(values, 0.5) == pytest.approx(statistics.median(values), rel=1e-15)
    assert (percentile(values, 0), percentile(values, 1)) == (min(values), max(values))


def test_percentile_of_a_small_list_by_hand() -> None:
    """Position q(n-1): p90 of five gaps lies 60 % of the way from the 4th to the 5th."""
    assert percentile([1.0, 0.2, 0.3, 0.4, 0.1], 0.9) == pytest.approx(0.76)
    assert percentile([5.0], 0.95) == 5.0
    assert percentile(iter([3.0, 1.0]), 0.5) == 2.0


def test_percentile_refuses_nothing_and_out_of_range_q() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)
    for q in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="q must be within"):
            percentile([1.0], q)
