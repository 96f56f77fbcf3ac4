"""The arithmetic of `qualmon bench --workers`: what a worker's /metrics says, its capacity at
a CPU budget, and the report over rounds. Pure: no process, no network (workers.py measures).

Capacity. On a 2-core machine that also runs the load generator, neither configuration can be
loaded until its event loops lag: the publishers would take the cores first. So each worker's
capacity is extrapolated from what one leg costs it: the legs that fit in `budget` of a core
(0.7 by default) at the measured cost, summed over the workers. `capacity` charges the worker's
whole CPU to its legs (cost = CPU rate / legs); `capacity_marginal` first takes off what the
worker burns with no leg at all (timers, the lag sampler, the membership heartbeat), which is
spent once per worker whatever its load, and extrapolates only the cost that grows with legs.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

GOAL_RATIO = 1.8
DEFAULT_BUDGET = 0.7
LAG_METRIC = "qualmon_event_loop_lag_seconds"
LEGS_METRIC = "qualmon_legs_active"


@dataclass(frozen=True)
class WorkerMetrics:
    """What one scrape of a worker's /metrics tells the bench."""

    legs_active: int
    "qualmon_legs_active summed over roles."
    lag_buckets: Mapping[float, float]
    "qualmon_event_loop_lag_seconds: cumulative count per upper bound (`le`), +Inf included."


def parse_metrics(text: str) -> WorkerMetrics:
    legs = 0.0
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == LEGS_METRIC:
                legs += sample.value
            elif sample.name == LAG_METRIC + "_bucket":
                buckets[float(sample.labels["le"])] = sample.value
    return WorkerMetrics(legs_active=int(legs), lag_buckets=buckets)


def bucket_delta(before: Mapping[float, float], after: Mapping[float, float]) -> dict[float, float]:
    """The histogram of what was observed between two scrapes."""
    return {le: count - before.get(le, 0.0) for le, count in after.items()}


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The q-quantile of cumulative `buckets` as Prometheus estimates it: linear within the
    bucket the rank falls in (from 0 for the first); the highest finite bound if it falls
    in +Inf. None for an empty histogram."""
    bounds = sorted(buckets)
    total = buckets.get(math.inf, buckets[bounds[-1]] if bounds else 0.0)
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if math.isinf(le):
                return lower
            if count == below:
                return le
            return lower + (le - lower) * (rank - below) / (count - below)
        lower, below = le, count
    return lower


@dataclass(frozen=True)
class WorkerSample:
    """One worker over the measured time."""

    pid: int
    legs: int
    "Its qualmon_legs_active at the end of the measured time."
    sessions: int
    "Sessions whose JSON names it as owner."
    cpu_rate: float
    "CPU seconds per second (cores) while measured, its threads included."
    idle_cpu_rate: float
    "The same before any leg was published."
    lag_p99_ms: float | None
    lag_samples: int


def leg_cost(w: WorkerSample, *, marginal: bool) -> float | None:
    """CPU seconds per leg-second; None for a worker without legs."""
    if w.legs <= 0:
        return None
    rate = w.cpu_rate - w.idle_cpu_rate if marginal else w.cpu_rate
    return max(rate, 1e-9) / w.legs


def capacity(workers: Sequence[WorkerSample], budget: float, *, marginal: bool = False) -> float:
    """Legs the workers carry at `budget` of a core each (module doc). A worker that got no
    leg is costed at the mean cost of the others."""
    costs = [leg_cost(w, marginal=marginal) for w in workers]
    known = [c for c in costs if c is not None]
    if not known:
        return 0.0
    mean = statistics.fmean(known)
    total = 0.0
    for w, cost in zip(workers, costs, strict=True):
        headroom = budget - w.idle_cpu_rate if marginal else budget
        total += max(headroom, 0.0) / (cost if cost is not None else mean)
    return total


@dataclass(frozen=True)
class ConfigResult:
    """One configuration (`serve --workers N`) measured once."""

    workers: int
    legs: int
    "Legs published."
    legs_connected: int
    seconds: float
    per_worker: tuple[WorkerSample, ...]
    sessions_split: int
    "Sessions whose owner does not hold a live leg of both roles (must be 0)."
    supervisor_cpu_rate: float
    load_generator_cpu_rate: float
    machine_busy_cores: float
    machine_steal_cores: float

    def capacity(self, budget: float, *, marginal: bool = False) -> float:
        return capacity(self.per_worker, budget, marginal=marginal)

    @property
    def others_cores(self) -> float:
        """Cores busy with neither the server nor the load generator: a round in which this
        is not near 0 shared the machine with other work."""
        ours = sum(w.cpu_rate for w in self.per_worker)
        ours += self.supervisor_cpu_rate + self.load_generator_cpu_rate
        return self.machine_busy_cores - ours

    @property
    def lag_p99_ms(self) -> float | None:
        """The worst worker's p99."""
        lags = [w.lag_p99_ms for w in self.per_worker if w.lag_p99_ms is not None]
        return max(lags) if lags else None

    @property
    def legs_per_worker(self) -> list[int]:
        return [w.legs for w in self.per_worker]


def report(
    rounds: Sequence[Mapping[int, ConfigResult]], n: int, budget: float = DEFAULT_BUDGET
) -> dict[str, Any]:
    """Ratios capacity(N) / capacity(1) within each round, their median against the goal."""
    ratios = [r[n].capacity(budget) / r[1].capacity(budget) for r in rounds]
    marginal = [
        r[n].capacity(budget, marginal=True) / r[1].capacity(budget, marginal=True) for r in rounds
    ]
    ratio = statistics.median(ratios)
    return {
        "workers": n,
        "budget": budget,
        "legs_per_worker": rounds[0][1].legs,
        "rounds": [{str(k): asdict(v) for k, v in r.items()} for r in rounds],
        "capacity": {str(k): [r[k].capacity(budget) for r in rounds] for k in (1, n)},
        "capacity_marginal": {
            str(k): [r[k].capacity(budget, marginal=True) for r in rounds] for k in (1, n)
        },
        "ratios": ratios,
        "ratio": ratio,
        "marginal_ratios": marginal,
        "marginal_ratio": statistics.median(marginal),
        "others_cores": {str(k): [r[k].others_cores for r in rounds] for k in (1, n)},
        "lag_p99_ms": {str(k): [r[k].lag_p99_ms for r in rounds] for k in (1, n)},
        "sessions_split": sum(r[k].sessions_split for r in rounds for k in (1, n)),
        "goals": {f"ratio>={GOAL_RATIO}": ratio >= GOAL_RATIO},
    }


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def print_table(result: dict[str, Any], rounds: Sequence[Mapping[int, ConfigResult]]) -> None:
    n, budget = result["workers"], result["budget"]
    print()
    print(
        f"{'round':<6}{'workers':>8}{'legs':>6}{'legs per worker':>17}{'sessions':>10}"
        f"{'split':>6}{'ms/leg·s':>10}{'lag p99 ms':>12}{'capacity':>10}{'load gen':>9}"
        f"{'others':>8}"
    )
    for i, by_workers in enumerate(rounds, 1):
        for k in (1, n):
            c = by_workers[k]
            costs = [leg_cost(w, marginal=False) for w in c.per_worker]
            cost = "/".join("–" if x is None else f"{x * 1000:.1f}" for x in costs)
            lags = "/".join(_ms(w.lag_p99_ms) for w in c.per_worker)
            print(
                f"{i:<6}{k:>8}{c.legs_connected:>6}"
                f"{'/'.join(map(str, c.legs_per_worker)):>17}"
                f"{'/'.join(str(w.sessions) for w in c.per_worker):>10}{c.sessions_split:>6}"
                f"{cost:>10}{lags:>12}{c.capacity(budget):>10.0f}"
                f"{c.load_generator_cpu_rate:>9.2f}{c.others_cores:>8.2f}"
            )
    print()
    print(
        f"capacity = legs that fit in {budget:g} of a core per worker at its measured cost,"
        " summed over workers;"
    )
    print(
        "load gen = cores used by the publishers (this process); others = cores busy with"
        " anything else (not ~0: a disturbed round); '/' separates workers."
    )
    spread = ", ".join(f"{r:.2f}" for r in result["ratios"])
    print(
        f"capacity({n}) / capacity(1)  median {result['ratio']:.2f}  [{spread}]"
        f"  (goal >= {GOAL_RATIO})"
    )
    spread = ", ".join(f"{r:.2f}" for r in result["marginal_ratios"])
    print(f"  without each worker's idle CPU  median {result['marginal_ratio']:.2f}  [{spread}]")
    for k in (1, n):
        lags = result["lag_p99_ms"][str(k)]
        known = [x for x in lags if x is not None]
        median = statistics.median(known) if known else None
        print(
            f"event-loop lag p99 of the worst worker, {k} worker(s) at {result['legs_per_worker']}"
            f" legs each: median {_ms(median)} ms  [{', '.join(_ms(x) for x in lags)}]"
        )
    print(f"sessions split over two workers: {result['sessions_split']}  (must be 0)")
