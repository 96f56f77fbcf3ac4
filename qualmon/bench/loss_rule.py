"""`qualmon bench --loss-rule`: the shipped high_loss rule on many simulated legs, offline.

The live warnings bench (`--warnings`) can afford a handful of trials and two 10-minute calm
legs; false alarms at 1 % loss are rare events that need hundreds of legs to estimate. This
replays synthetic 50 packet/s streams with random (Bernoulli) loss through the same parts the
service uses — RtpLegStats, the runtime's loss measurements and the WarningEngine — with time
passed in, so hours of audio take seconds. Nothing here asserts; it prints estimates.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
from collections.abc import Iterator

from ..core.quantiles import percentile
from ..core.rtp_stats import RtpLegStats
from ..core.warnings import DEFAULT_RULES, Rule, WarningEngine, override_rules
from ..warnings.measures import RECENT_LOSS_WINDOW, loss_value
from ..warnings.runtime import TICK_SECONDS

PACKET_SECONDS = 0.020
CLOCK_RATE = 48000


def _ticks(
    loss_at: list[tuple[float, float]], seconds: float, rng: random.Random
) -> Iterator[tuple[float, dict[tuple[str, str | None], float | None]]]:
    """(now, values) at every tick of one leg whose loss ratio follows `loss_at`."""
    stats = RtpLegStats()
    next_tick = TICK_SECONDS
    for i in range(int(seconds / PACKET_SECONDS)):
        now = i * PACKET_SECONDS
        while now >= next_tick:
            recent = stats.window_loss_ratio(
                next_tick, RECENT_LOSS_WINDOW[0], min_expected=RECENT_LOSS_WINDOW[1]
            )
            yield (
                next_tick,
                {
                    ("high_loss", "client"): loss_value(stats, next_tick),
                    ("high_loss_recent", "client"): recent,
                },
            )
            next_tick += TICK_SECONDS
        ratio = next(r for start, r in reversed(loss_at) if now >= start)
        if rng.random() < ratio:
            continue
        stats.on_packet(
            ssrc=1,
            sequence_number=i & 0xFFFF,
            rtp_timestamp=(i * 960) & 0xFFFFFFFF,
            clock_rate=CLOCK_RATE,
            payload_bytes=80,
            arrival_seconds=now + 0.001,
        )


def _high_loss_rules() -> tuple[Rule, ...]:
    """The shipped high_loss rule, with QUALMON_WARNING_RULES applied as the service would."""
    rules = override_rules(DEFAULT_RULES, os.environ.get("QUALMON_WARNING_RULES", ""))
    return tuple(r for r in rules if r.kind == "high_loss")


def _engine() -> WarningEngine:
    return WarningEngine(rules=_high_loss_rules())


def calm_false_alarm_rate(loss: float, minutes: float, legs: int, seed: int) -> float:
    """Share of legs with at least one high_loss raise over `minutes` of steady loss."""
    rng = random.Random(seed)
    alarmed = 0
    for _ in range(legs):
        engine = _engine()
        for now, values in _ticks([(0.0, loss)], minutes * 60, rng):
            if engine.evaluate(now, values):
                alarmed += 1
                break
    return alarmed / legs


def onset_latencies(
    loss: float, trials: int, seed: int, *, background: float = 0.0, hold: float = 30.0
) -> tuple[list[float], list[float], int]:
    """(onset → raised, recovery → cleared, missed) for loss switched on at 10 s for `hold`."""
    rng = random.Random(seed)
    raised, cleared, missed = [], [], 0
    onset, recovery = 10.0, 10.0 + hold
    for _ in range(trials):
        engine = _engine()
        raised_at = cleared_at = None
        timeline = [(0.0, background), (onset, loss), (recovery, background)]
        for now, values in _ticks(timeline, recovery + 20.0, rng):
            for event in engine.evaluate(now, values):
                if event.type == "raised" and raised_at is None and now >= onset:
                    raised_at = now
                elif event.type == "cleared" and now >= recovery and cleared_at is None:
                    cleared_at = now
        if raised_at is None:
            missed += 1
        else:
            raised.append(raised_at - onset)
        if cleared_at is not None:
            cleared.append(cleared_at - recovery)
    return raised, cleared, missed


def run_loss_rule_bench(args: argparse.Namespace) -> int:
    legs, minutes = args.legs_sim, args.calm_minutes
    try:
        (rule,) = _high_loss_rules()
    except ValueError as exc:
        print(f"qualmon bench: QUALMON_WARNING_RULES: {exc}", file=sys.stderr)
        return 2
    print(
        f"high_loss rule (threshold {rule.threshold:.1%}), {legs} simulated legs per row "
        "(50 packets/s, random loss)"
    )
    print(f"{'steady loss':<22}{'legs warned':>14}")
    for loss in (0.01, 0.02):
        rate = calm_false_alarm_rate(loss, minutes, legs, seed=int(loss * 1000) + 1)
        print(f"{f'{loss:.0%} loss, {minutes:g} min':<22}{rate:>13.1%}")
    print()
    print(
        f"{'onset (from clean)':<20}{'raised p50':>12}{'raised p95':>12}{'missed':>8}"
        f"{'cleared p50':>13}{'cleared p95':>13}"
    )
    for loss in (0.05, 0.10, 0.20):
        raised, cleared, missed = onset_latencies(loss, legs, seed=int(loss * 1000))
        raised_p95, cleared_p95 = percentile(raised, 0.95), percentile(cleared, 0.95)
        print(
            f"{f'loss {loss:.0%}':<20}{statistics.median(raised):>10.2f} s{raised_p95:>10.2f} s"
            f"{missed:>8}{statistics.median(cleared):>11.2f} s{cleared_p95:>11.2f} s"
        )
    print()
    print("goal: raised <= 2 s (p95) for loss >= 5 %, cleared <= 5 s, no false alarm at 1 %")
    return 0
