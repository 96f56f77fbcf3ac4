"""The bounded percentile histogram."""

from __future__ import annotations

import random

import pytest

from qualmon.core.quantiles import LogHistogram


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
