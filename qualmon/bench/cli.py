"""`qualmon bench`: its flags and which bench runs (each imports what it needs when it runs,
as the other commands do: aiortc and the service take about a second to import)."""

from __future__ import annotations

import argparse
import asyncio
import logging

from ..config.flags import integer, worker_count


def _quiet_logging() -> None:
    """Warnings and errors only: a bench prints its own progress and table."""
    from ..service.app import quiet_noisy_loggers

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger().setLevel(logging.WARNING)
    quiet_noisy_loggers()


VIDEO_BENCH_LEGS = 16
"Audio+video legs of `bench --video`: the receiver and the publishers stay under a core each."


CONNECT_BENCH_LEGS = 250
"Live legs of `bench --connect` (issue 17's goal is stated at 250 legs in one process)."


MEMORY_BENCH_SECONDS = 30.0
"`bench --memory` holds its legs this long: the per-leg buffers of the last 30 s fill."


def cmd_bench(args: argparse.Namespace) -> int:
    if args.seconds is None:
        args.seconds = MEMORY_BENCH_SECONDS if args.memory else 15.0
    if args.memory:
        from .memory import run_memory_bench

        _quiet_logging()
        return asyncio.run(run_memory_bench(args))
    if args.connect:
        from .connect import run_connect_bench

        if args.legs is None:
            args.legs = CONNECT_BENCH_LEGS
        _quiet_logging()
        return asyncio.run(run_connect_bench(args))
    if args.metrics_scale:
        from .metrics_scale import run_metrics_scale_bench

        _quiet_logging()
        return asyncio.run(run_metrics_scale_bench(args))
    if args.legs is None:
        args.legs = VIDEO_BENCH_LEGS if args.video else 40
    if args.video:
        from .video_cost import run_video_bench

        _quiet_logging()
        return asyncio.run(run_video_bench(args))
    if args.workers:
        from .workers import run_workers_bench

        _quiet_logging()
        return asyncio.run(run_workers_bench(args))
    if args.soak or args.cycles:
        from .soak import run_soak

        _quiet_logging()
        return asyncio.run(run_soak(args))
    if args.speech:
        from .speech import run_speech_bench

        _quiet_logging()
        return asyncio.run(run_speech_bench(args))
    if args.loss_rule:
        from .loss_rule import run_loss_rule_bench

        return run_loss_rule_bench(args)
    if args.warnings:
        from .warning_latency import run_warning_bench

        _quiet_logging()
        return asyncio.run(run_warning_bench(args))

    from .pipeline import run_bench

    _quiet_logging()
    return asyncio.run(run_bench(args))


def add_bench_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """The `bench` sub-command on `sub` (the `qualmon` parser's sub-parsers)."""
    bench = sub.add_parser("bench", help="CPU per leg: qualmon pipeline vs bare aiortc receive")
    bench.add_argument(
        "--legs",
        type=integer,
        default=None,
        help="legs published at once (default 40, --video 16; --workers: per worker, so N"
        " workers get N × this)",
    )
    bench.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="measured time per receiver (default 15; --memory: 30)",
    )
    bench.add_argument("--rounds", type=integer, default=3, help="bare/qualmon pairs (median)")
    bench.add_argument("--json", action="store_true", help="print the result as JSON")
    bench.add_argument(
        "--video",
        action="store_true",
        help="a video leg's cost (VP8 ~30 fps ~1 Mbit/s) as a multiple of an audio leg's",
    )
    bench.add_argument(
        "--warnings",
        action="store_true",
        help="measure warning detection/clear latency, flaps and false alarms",
    )
    bench.add_argument("--trials", type=integer, default=8, help="--warnings: trials per scenario")
    bench.add_argument(
        "--speech",
        action="store_true",
        help="speech and talk-turn accuracy on the realistic corpus, and the speech path's CPU"
        " (--rounds 0 skips the in-service CPU rounds)",
    )
    bench.add_argument(
        "--whip",
        action="store_true",
        help="--speech: also publish every fixture over WHIP in real time (about 8 min)",
    )
    bench.add_argument(
        "--batch", type=integer, default=5, help="--speech --whip: sessions published at once"
    )
    bench.add_argument(
        "--loss-rule",
        action="store_true",
        help="the high_loss rule on many simulated legs (offline, seconds)",
    )
    bench.add_argument(
        "--legs-sim", type=integer, default=200, help="--loss-rule: simulated legs per row"
    )
    bench.add_argument(
        "--calm-minutes",
        type=float,
        default=10.0,
        help="--warnings/--loss-rule: length of the clean and 1 %%-loss runs",
    )
    bench.add_argument(
        "--soak",
        type=float,
        metavar="MINUTES",
        help="hold --legs live legs with churn this long; RSS, fds, threads, tasks each minute",
    )
    bench.add_argument(
        "--churn-seconds",
        type=float,
        default=3.0,
        help="--soak: one leg ends, one starts, this often",
    )
    bench.add_argument(
        "--cycles",
        type=integer,
        metavar="N",
        help="N short sessions after a warm-up: RSS, fds, threads and tasks against baseline",
    )
    bench.add_argument(
        "--workers",
        type=worker_count,
        nargs="?",
        const=2,
        metavar="N",
        help="legs `serve --workers N` (N default 2) carries against one worker at a CPU"
        " budget per worker (--legs per worker, --seconds, --rounds: both each round)",
    )
    bench.add_argument(
        "--budget",
        type=float,
        default=0.7,
        help="--workers: the share of a core per worker capacity is counted at (default 0.7)",
    )
    bench.set_defaults(func=cmd_bench)
    api = bench.add_argument_group("API scale (issue 17)")
    api.add_argument(
        "--connect",
        action="store_true",
        help="POST /whip answer time and whole connect time with --legs (default 250) live"
        " legs in one process, the live legs sending Opus DTX (a packet every 400 ms)",
    )
    api.add_argument(
        "--connects", type=integer, default=100, help="--connect: legs connected and timed"
    )
    api.add_argument(
        "--gap", type=float, default=0.2, help="--connect: seconds between timed connects"
    )
    api.add_argument(
        "--profile",
        metavar="FILE",
        help="--connect: record the receiver with py-spy while timing (FILE.svg: a flame"
        " graph, FILE.txt: collapsed stacks)",
    )
    api.add_argument(
        "--metrics-scale",
        action="store_true",
        help="GET /metrics and GET /v1/sessions pages with --sessions live sessions of two"
        " legs each (Opus DTX) across `serve --workers N` (--workers, default 2)",
    )
    api.add_argument("--sessions", type=integer, default=500, help="--metrics-scale: live sessions")
    api.add_argument(
        "--scrapes", type=integer, default=20, help="--metrics-scale: timed GETs per URL"
    )
    api.add_argument(
        "--memory",
        action="store_true",
        help="RSS per live audio leg, qualmon beyond bare aiortc: the slope between a third of"
        " --legs (default 60) and --legs full-rate legs, --rounds times",
    )
    return bench
