"""`qualmon bench --workers`: its arithmetic and its probes, without starting a server."""

from __future__ import annotations

import math
import os

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from qualmon.bench.procfs import children_of, environ_of
from qualmon.bench.scaling import (
    ConfigResult,
    WorkerSample,
    bucket_delta,
    capacity,
    histogram_quantile,
    parse_metrics,
    print_table,
    report,
)
from qualmon.cli import build_parser
from qualmon.service.metrics import LAG_BUCKETS, QualmonMetrics, register_live_collector


def worker(legs: int, cpu: float, idle: float = 0.0, pid: int = 1) -> WorkerSample:
    return WorkerSample(pid, legs, legs // 2, cpu, idle, 2.0, 300)


def config(workers: int, *samples: WorkerSample) -> ConfigResult:
    legs = sum(w.legs for w in samples)
    return ConfigResult(workers, legs, legs, 30.0, samples, 0, 0.0, 0.3, 1.0, 0.0)


def test_reads_the_lag_histogram_and_live_legs_from_the_service_exposition() -> None:
    metrics = QualmonMetrics()

    class Sessions:
        def __init__(self) -> None:
            self.legs_by_resource: dict[str, object] = {}

        def live_sessions(self) -> list[object]:
            return []

    register_live_collector(metrics, Sessions(), 100)  # type: ignore[arg-type]
    for lag in (0.0005, 0.002, 0.002, 0.2):
        metrics.loop_lag.observe(lag)
    parsed = parse_metrics(generate_latest(metrics.registry).decode())
    assert parsed.legs_active == 0
    assert set(parsed.lag_buckets) == {*LAG_BUCKETS, math.inf}
    assert parsed.lag_buckets[0.001] == 1
    assert parsed.lag_buckets[0.0025] == 3
    assert parsed.lag_buckets[math.inf] == 4


def test_live_legs_are_summed_over_roles() -> None:
    text = (
        "# TYPE qualmon_legs_active gauge\n"
        'qualmon_legs_active{role="therapist"} 21.0\n'
        'qualmon_legs_active{role="client"} 19.0\n'
    )
    assert parse_metrics(text).legs_active == 40


def test_quantile_interpolates_within_the_bucket_like_prometheus() -> None:
    registry = CollectorRegistry()
    h = Histogram("qualmon_event_loop_lag_seconds", "", buckets=(0.01, 0.02), registry=registry)
    for _ in range(50):
        h.observe(0.005)
    before = parse_metrics(generate_latest(registry).decode()).lag_buckets
    for _ in range(100):
        h.observe(0.015)
    after = parse_metrics(generate_latest(registry).decode()).lag_buckets
    window = bucket_delta(before, after)
    assert window == {0.01: 0.0, 0.02: 100.0, math.inf: 100.0}
    assert histogram_quantile(0.99, window) == pytest.approx(0.01 + 0.01 * 0.99)
    assert histogram_quantile(0.5, {0.01: 50.0, 0.02: 100.0, math.inf: 100.0}) == 0.01


def test_quantile_of_an_empty_or_overflowing_histogram() -> None:
    assert histogram_quantile(0.99, {0.01: 0.0, math.inf: 0.0}) is None
    assert histogram_quantile(0.99, {}) is None
    # Past the last finite bound: that bound, as histogram_quantile() in PromQL answers.
    assert histogram_quantile(0.99, {0.01: 1.0, 1.0: 1.0, math.inf: 100.0}) == 1.0


def test_capacity_is_the_budget_over_each_workers_cost_per_leg_summed() -> None:
    # 40 legs on 0.4 of a core: 10 ms per leg-second, so 70 legs in 0.7 of a core.
    assert capacity([worker(40, 0.4)], 0.7) == pytest.approx(70.0)
    # Two workers, the second costlier per leg (12.5 ms): 70 + 56.
    two = [worker(40, 0.4, pid=1), worker(40, 0.5, pid=2)]
    assert capacity(two, 0.7) == pytest.approx(70.0 + 56.0)


def test_marginal_capacity_takes_the_idle_cpu_off_budget_and_cost() -> None:
    # 0.05 core with no legs; 40 legs add 0.4: (0.7 − 0.05) / 0.01 = 65 legs.
    assert capacity([worker(40, 0.45, idle=0.05)], 0.7, marginal=True) == pytest.approx(65.0)
    assert capacity([worker(40, 0.45, idle=0.05)], 0.7) == pytest.approx(0.7 / (0.45 / 40))


def test_a_worker_without_legs_is_costed_like_the_others() -> None:
    assert capacity([worker(40, 0.4), worker(0, 0.01, pid=2)], 0.7) == pytest.approx(140.0)
    assert capacity([worker(0, 0.01)], 0.7) == 0.0


def test_report_takes_the_median_of_the_ratios_within_rounds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rounds = [
        {1: config(1, worker(40, 0.4)), 2: config(2, worker(40, 0.4), worker(40, 0.4))},
        # A slower minute for both: the ratio within the round is what counts.
        {1: config(1, worker(40, 0.5)), 2: config(2, worker(40, 0.55), worker(40, 0.55))},
        {1: config(1, worker(40, 0.4)), 2: config(2, worker(40, 0.5), worker(40, 0.5))},
    ]
    out = report(rounds, 2, 0.7)
    assert out["ratios"] == pytest.approx([2.0, 2 * 0.5 / 0.55, 1.6])
    assert out["ratio"] == pytest.approx(2 * 0.5 / 0.55)
    assert out["goals"] == {"ratio>=1.8": True}
    assert out["legs_per_worker"] == 40
    assert out["sessions_split"] == 0
    # 1.0 machine cores busy: 0.3 the load generator, the rest the workers and others.
    assert out["others_cores"]["1"] == pytest.approx([0.3, 0.2, 0.3])
    print_table(out, rounds)
    assert "capacity(2) / capacity(1)  median 1.82  [2.00, 1.82, 1.60]" in capsys.readouterr().out


def test_bench_workers_defaults_to_two() -> None:
    parser = build_parser()
    assert parser.parse_args(["bench", "--workers"]).workers == 2
    assert parser.parse_args(["bench", "--workers", "3"]).workers == 3
    assert parser.parse_args(["bench"]).workers is None


def test_procfs_finds_children_and_their_environment() -> None:
    assert os.getpid() in children_of(os.getppid())
    assert environ_of(os.getpid()).get("PATH") == os.environ.get("PATH")
