"""The arithmetic and printed lines of the API-scale benches: plain numbers, no process."""

from __future__ import annotations

from typing import Any

import pytest

from qualmon.bench.api_goals import (
    GOAL_CONNECT_P95_SECONDS,
    GOAL_MEMORY_MB_PER_LEG,
    RssPoint,
    Spread,
    beyond_bare,
    goal_line,
    mb_per_leg,
    metric_sum,
    server_timing_seconds,
    verdict,
)
from qualmon.bench.connect import ConnectResult, Window, print_result
from qualmon.bench.memory import leg_counts, round_report
from qualmon.bench.metrics_report import print_result as print_metrics_scale
from qualmon.bench.metrics_scale import offer_buckets
from qualmon.bench.pipeline import ReceiverResult


def test_spread_takes_the_shared_percentile() -> None:
    """p50 and p95 by linear interpolation (core.quantiles), max, count; none of nothing."""
    s = Spread.of([0.001 * i for i in range(1, 101)])
    assert s is not None
    assert s.p50 == pytest.approx(0.0505)
    assert s.p95 == pytest.approx(0.09505)
    assert (s.max, s.n) == (pytest.approx(0.1), 100)
    assert s.ms() == "50.5 / 95.0 / 100.0 ms"
    assert Spread.of([]) is None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("answer;dur=3.52", 0.00352),
        ('db;dur=1, answer;desc="x";dur=12', 0.012),
        ("answer; dur = 7", 0.007),
        ("app;dur=2.5", None),
        ("answer;dur=abc", None),
        ("answer;dur=-1", None),
        ("answer;dur=inf", None),
        ("answer", None),
        (None, None),
    ],
)
def test_server_timing(header: str | None, seconds: float | None) -> None:
    assert server_timing_seconds(header) == (pytest.approx(seconds) if seconds else None)


def test_goal_lines_say_met_or_missed() -> None:
    assert verdict(0.05, GOAL_CONNECT_P95_SECONDS) == "met"  # on the goal is met
    assert verdict(0.0501, GOAL_CONNECT_P95_SECONDS) == "MISSED"
    assert verdict(None, GOAL_CONNECT_P95_SECONDS) == "not measured"
    assert goal_line("connect p95", 0.0761, 0.05) == (
        "connect p95: 76.1 ms  (goal <= 50 ms) — MISSED"
    )
    assert goal_line("memory", 0.268, GOAL_MEMORY_MB_PER_LEG, unit="MB") == (
        "memory: 0.268 MB  (goal <= 0.5 MB) — met"
    )


def test_memory_per_leg_is_a_difference_of_slopes() -> None:
    """Fixed costs (imports: +34 MB here) cancel; only what each leg adds remains."""
    bare = (RssPoint(20, 85.6), RssPoint(60, 101.2))
    full = (RssPoint(20, 119.4), RssPoint(60, 145.8))
    assert mb_per_leg(*bare) == pytest.approx(0.39)
    assert mb_per_leg(*full) == pytest.approx(0.66)
    assert beyond_bare(full, bare) == pytest.approx(0.27)
    with pytest.raises(ValueError, match="two different leg counts"):
        mb_per_leg(RssPoint(20, 1.0), RssPoint(20, 2.0))
    assert leg_counts(60) == (20, 60)
    assert leg_counts(2) == (1, 2)


def receiver(mode: str, legs: int, rss: float) -> ReceiverResult:
    return ReceiverResult(
        mode=mode,
        legs=legs,
        seconds=30.0,
        cpu_ms_per_leg_second=8.0,
        lag_p50_ms=0.5,
        lag_p99_ms=3.0,
        scrape_ms=None,
        legs_connected=legs,
        rss_mb=rss,
    )


def test_a_memory_round() -> None:
    results = {
        "bare": {60: receiver("bare", 60, 101.2), 20: receiver("bare", 20, 85.6)},
        "qualmon": {20: receiver("qualmon", 20, 119.4), 60: receiver("qualmon", 60, 145.8)},
    }
    out = round_report(results)
    assert out["beyond_bare_mb_per_leg"] == pytest.approx(0.27)
    assert out["rss_mb"]["bare"] == {"20": 85.6, "60": 101.2}


METRICS = """\
# HELP qualmon_legs_active WHIP legs not ended, by role.
# TYPE qualmon_legs_active gauge
qualmon_legs_active{role="therapist"} 125.0
qualmon_legs_active{role="client"} 126.0
# HELP qualmon_whip_offer_seconds Time this instance took to answer a WHIP offer with 201.
# TYPE qualmon_whip_offer_seconds histogram
qualmon_whip_offer_seconds_bucket{le="0.005"} 100.0
qualmon_whip_offer_seconds_bucket{le="0.02"} 240.0
qualmon_whip_offer_seconds_bucket{le="+Inf"} 251.0
qualmon_whip_offer_seconds_count 251.0
qualmon_whip_offer_seconds_sum 2.5
"""


def test_metrics_are_read_by_name() -> None:
    assert metric_sum(METRICS, "qualmon_legs_active") == 251
    assert metric_sum(METRICS, "qualmon_whip_offer_seconds_count") == 251
    assert metric_sum(METRICS, "qualmon_nothing") == 0
    assert offer_buckets(METRICS) == {0.005: 100.0, 0.02: 240.0, float("inf"): 251.0}


def window(cores: float, calls: tuple[dict[str, Any], ...] = ()) -> Window:
    return Window(10.0, cores, 0.2, 0.05, 0.7, 28.5, calls, 0.1)


def test_the_connect_report(capsys: pytest.CaptureFixture[str]) -> None:
    call = {
        "call": "session registry tick",
        "n": 40,
        "p50_ms": 2.8,
        "p95_ms": 34.7,
        "max_ms": 38.0,
        "total_seconds": 0.37,
    }
    result = ConnectResult(
        live_legs=250,
        live_failed=0,
        live_connect_seconds=4.0,
        connects=100,
        failed=1,
        server=Spread.of([0.004, 0.005, 0.030]),
        answer=Spread.of([0.007, 0.009, 0.050]),
        ice=Spread.of([0.020, 0.025, 0.070]),
        connect=Spread.of([0.030, 0.035, 0.090]),
        hold=window(0.30),
        measuring=window(0.36, (call,)),
        rss_mb=180.0,
        legs_after_hold={"active": 250, "stalled": 0, "ended": 0, "offers_timed": 250},
        legs_at_end={"active": 349, "stalled": 0, "ended": 0, "offers_timed": 349},
    )
    print_result(result)
    out = capsys.readouterr().out
    assert "measured connects: 99 of 100" in out
    assert "session registry tick" in out and "0.037" in out  # 0.37 s over 10 s
    assert "receiver's legs after the hold: 250 active, 0 stalled, 0 ended" in out
    assert "POST /whip → 201 p95, server-side, with 250 legs live: 27.5 ms" in out
    assert "(goal <= 20 ms) — MISSED" in out
    assert "whole connect p95 (POST, ICE, DTLS), with 250 legs live: 84.5 ms" in out


def spread(p50: float, p95: float) -> dict[str, float]:
    return {"p50": p50, "p95": p95, "max": p95, "n": 20}


def snapshot(sessions: int, size: int, p95: float) -> dict[str, Any]:
    scrape = {"where": "public port", "time": spread(0.002, p95), "server": None}
    pages = {
        "limit": 100,
        "pages": 5,
        "sessions": sessions,
        "distinct": sessions,
        "time": spread(0.1, 0.2),
        "server": spread(0.09, 0.19),
        "largest_bytes": 160_000,
        "total_bytes": 800_000,
    }
    worker = {"pid": 7, "legs": sessions * 2, "cores": 0.5, "lag_p99_ms": 20.0, "rss_mb": 200}
    worker |= {"offer_p95_ms": 30.0, "offers": sessions * 2}
    return {
        "sessions": sessions,
        "legs": sessions * 2,
        "load_cores": 0.7,
        "scrapes": [{**scrape, "size_bytes": size}],
        "workers": [worker],
        "pages": pages,
        "one_big_page": {**pages, "limit": 1000, "pages": 1},
    }


def test_the_metrics_scale_report(capsys: pytest.CaptureFixture[str]) -> None:
    """Size constant in the number of sessions within 5 %; the slowest p95 against 20 ms."""
    result = {
        "workers": 2,
        "legs_asked": 1000,
        "legs_connected": 1000,
        "legs_failed": 0,
        "connect_seconds": 20.0,
        "snapshots": [
            snapshot(0, 25_000, 0.003),
            snapshot(50, 30_900, 0.004),
            snapshot(500, 31_500, 0.0981),
        ],
    }
    print_metrics_scale(result)
    out = capsys.readouterr().out
    assert "GET /metrics p95 (worst of workers and public port), 1000 legs: 98.1 ms" in out
    assert "— MISSED" in out
    assert "(+600 bytes from 50 to 500 sessions: constant in the number of sessions — met)" in out
    assert "limit 100: 5 page(s), 500 sessions (0 listed twice)" in out


def test_bench_flags_of_the_api_scale_benches() -> None:
    from qualmon.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["bench", "--connect"])
    assert (args.connect, args.legs, args.connects, args.gap) == (True, None, 100, 0.2)
    args = parser.parse_args(["bench", "--metrics-scale", "--workers", "3"])
    assert (args.metrics_scale, args.workers, args.sessions, args.scrapes) == (True, 3, 500, 20)
    args = parser.parse_args(["bench", "--memory", "--legs", "90"])
    assert (args.memory, args.legs, args.seconds) == (True, 90, None)
    assert parser.parse_args(["bench"]).seconds is None  # each bench fills in its own
