"""The arithmetic of the API-scale benches (issue 17): spreads, goals, memory slopes and the
printed lines. Pure: no process, no network (connect.py, metrics_scale.py and memory.py
measure)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from ..core.quantiles import percentile

GOAL_WHIP_SERVER_P95_SECONDS = 0.020
GOAL_CONNECT_P95_SECONDS = 0.050
GOAL_METRICS_SECONDS = 0.020
GOAL_MEMORY_MB_PER_LEG = 0.5


@dataclass(frozen=True)
class Spread:
    """Median, 95th percentile and maximum of some timings, in seconds."""

    p50: float
    p95: float
    max: float
    n: int

    @staticmethod
    def of(seconds: Sequence[float]) -> Spread | None:
        """None for no timings at all."""
        if not seconds:
            return None
        return Spread(
            percentile(seconds, 0.5), percentile(seconds, 0.95), max(seconds), len(seconds)
        )

    def ms(self) -> str:
        return f"{self.p50 * 1000:.1f} / {self.p95 * 1000:.1f} / {self.max * 1000:.1f} ms"


def server_timing_seconds(header: str | None, name: str = "answer") -> float | None:
    """The `dur` (milliseconds) of metric `name` in a Server-Timing header, in seconds; None
    if the header is missing or does not carry it."""
    for metric in (header or "").split(","):
        parts = [p.strip() for p in metric.split(";")]
        if parts[0] != name:
            continue
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip() == "dur":
                try:
                    duration = float(value.strip())
                except ValueError:
                    return None
                return duration / 1000 if math.isfinite(duration) and duration >= 0 else None
    return None


def verdict(value: float | None, goal: float) -> str:
    """`met`, `missed` (a value above the goal) or `not measured`."""
    if value is None:
        return "not measured"
    return "met" if value <= goal else "MISSED"


def goal_line(what: str, value: float | None, goal: float, unit: str = "ms") -> str:
    """`what: <value> (goal <= <goal>) — met|MISSED`; times given in seconds and shown in
    ms, any other unit shown as given."""
    scale, digits = (1000.0, 1) if unit == "ms" else (1.0, 3)
    shown = "–" if value is None else f"{value * scale:.{digits}f} {unit}"
    return f"{what}: {shown}  (goal <= {goal * scale:g} {unit}) — {verdict(value, goal)}"


@dataclass(frozen=True)
class RssPoint:
    """A receiver's resident memory holding `legs` live legs."""

    legs: int
    rss_mb: float


def mb_per_leg(low: RssPoint, high: RssPoint) -> float:
    """The slope between two leg counts of one kind of receiver: what one more leg costs,
    with what the process holds whatever its legs (imports, caches) cancelled out."""
    if high.legs == low.legs:
        raise ValueError("two different leg counts are needed for a slope")
    return (high.rss_mb - low.rss_mb) / (high.legs - low.legs)


def beyond_bare(qualmon: tuple[RssPoint, RssPoint], bare: tuple[RssPoint, RssPoint]) -> float:
    """MB per leg qualmon holds beyond a bare aiortc receiver: the difference of slopes."""
    return mb_per_leg(*qualmon) - mb_per_leg(*bare)


def metric_sum(text: str, name: str) -> float:
    """The sum of every sample named `name` (all label sets) in a /metrics exposition."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )
