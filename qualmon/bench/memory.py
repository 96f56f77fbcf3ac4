"""`qualmon bench --memory`: resident memory per live audio leg, qualmon beyond a bare aiortc
receiver (issue 17: <= 0.5 MB).

Each receiver is the pipeline bench's (pipeline.measure: a fresh process per measurement,
N legs of speech-like Opus at the full 50 packets a second published from this process,
RSS read at the end of the measured time). Per kind of receiver (bare aiortc draining its
tracks; qualmon as shipped) two leg counts are measured, and the slope between them is what
one more leg holds: what a process holds whatever its legs (imports, caches, the event loop)
cancels out. The measured time (`--seconds`, default 30) lets the per-leg buffers that cover
the last 30 s of audio fill. The pipeline bench's CPU numbers come along and are printed,
but this bench is about memory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

from .api_goals import GOAL_MEMORY_MB_PER_LEG, RssPoint, beyond_bare, goal_line, mb_per_leg
from .pipeline import ReceiverResult, measure

MODES = ("bare", "qualmon")
DEFAULT_HIGH_LEGS = 60
"Bare aiortc costs ~16 ms of CPU per leg-second: 60 full-rate legs keep it under a core."


def leg_counts(high: int) -> tuple[int, int]:
    """(low, high): a third of `high` and `high`, so the slope spans two thirds of it."""
    return max(1, high // 3), high


def round_report(results: dict[str, dict[int, ReceiverResult]]) -> dict[str, Any]:
    """Slopes per mode and qualmon's beyond bare, for one round."""
    points: dict[str, tuple[RssPoint, RssPoint]] = {}
    for mode, by_legs in results.items():
        (low, r_low), (high, r_high) = sorted(by_legs.items())
        points[mode] = (RssPoint(low, r_low.rss_mb), RssPoint(high, r_high.rss_mb))
    slopes = {mode: mb_per_leg(*p) for mode, p in points.items()}
    return {
        "rss_mb": {m: {str(p.legs): p.rss_mb for p in ps} for m, ps in points.items()},
        "mb_per_leg": slopes,
        "beyond_bare_mb_per_leg": beyond_bare(points["qualmon"], points["bare"]),
        "connected": {
            m: {str(k): r.legs_connected for k, r in v.items()} for m, v in results.items()
        },
        "cpu_ms_per_leg_second": {
            m: {str(k): r.cpu_ms_per_leg_second for k, r in v.items()} for m, v in results.items()
        },
    }


async def run_memory_bench(args: argparse.Namespace) -> int:
    high = DEFAULT_HIGH_LEGS if args.legs is None else args.legs
    seconds = args.seconds
    if high < 2 or seconds <= 0 or args.rounds < 1:
        print("qualmon bench --memory: --legs >= 2, --seconds > 0, --rounds >= 1", file=sys.stderr)
        return 2
    counts = leg_counts(high)
    rounds = []
    for i in range(args.rounds):
        print(f"round {i + 1}/{args.rounds}", flush=True)
        results: dict[str, dict[int, ReceiverResult]] = {m: {} for m in MODES}
        # Alternate the order so a drifting machine does not always favour one kind.
        order = MODES if i % 2 == 0 else MODES[::-1]
        for mode in order:
            for legs in counts:
                results[mode][legs] = await measure(mode, legs, seconds)
        rounds.append(round_report(results))
    result = {
        "legs": list(counts),
        "seconds": seconds,
        "rounds": rounds,
        "beyond_bare_mb_per_leg": statistics.median(r["beyond_bare_mb_per_leg"] for r in rounds),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_result(result)
    return 0


def print_result(result: dict[str, Any]) -> None:
    low, high = result["legs"]
    print()
    print(
        f"{'round':<7}{'receiver':<10}{f'RSS at {low}':>12}{f'RSS at {high}':>12}"
        f"{'MB per leg':>12}{'CPU ms/leg·s':>14}"
    )
    for i, r in enumerate(result["rounds"], 1):
        for mode in MODES:
            rss = r["rss_mb"][mode]
            cpu = r["cpu_ms_per_leg_second"][mode][str(high)]
            name = "bare" if mode == "bare" else "full"
            print(
                f"{i:<7}{name:<10}{rss[str(low)]:>9.1f} MB{rss[str(high)]:>9.1f} MB"
                f"{r['mb_per_leg'][mode]:>12.3f}{cpu:>14.2f}"
            )
    print()
    print(
        f"legs: speech-like Opus at 50 packets a second, held {result['seconds']:g} s (+3 s"
        " warm-up) before RSS is read; one fresh receiver process per cell"
    )
    spread = ", ".join(f"{r['beyond_bare_mb_per_leg']:.3f}" for r in result["rounds"])
    print(f"qualmon beyond bare per leg, by round: [{spread}] MB")
    print(
        goal_line(
            "memory per live audio leg beyond bare aiortc (median of rounds)",
            result["beyond_bare_mb_per_leg"],
            GOAL_MEMORY_MB_PER_LEG,
            unit="MB",
        )
    )
