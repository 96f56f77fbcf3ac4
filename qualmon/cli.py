"""`qualmon` command line: serve, token, demo, publish, bench, report, purge.

Each command imports what it needs when it runs: aiortc and the service take about a second
to import, which `qualmon token` or `qualmon report` should not pay. These late imports
are for start-up time only; no import cycle needs them (lint-imports checks the layers).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from .config import ConfigError, Settings, server_overrides, settings_from_env
from .core.ascii_digits import parse_ascii_int


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from .service.app import quiet_noisy_loggers

    quiet_noisy_loggers()


def _integer(text: str) -> int:
    """argparse type: an integer in ASCII digits (int() would also read "٣" as 3).

    The sign is allowed so that `--port -1` gets the settings' own range message.
    """
    magnitude = parse_ascii_int(text.removeprefix("-"), max_digits=9)
    if magnitude is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer in digits 0-9")
    return -magnitude if text.startswith("-") else magnitude


def _add_server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="listen address (QUALMON_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=_integer, help="listen port (QUALMON_PORT, default 8080)")
    p.add_argument(
        "--max-legs", type=_integer, help="live WHIP leg cap (QUALMON_MAX_LEGS, default 100)"
    )
    p.add_argument(
        "--db", dest="db_path", help="SQLite store path or postgresql:// URL (QUALMON_DB)"
    )
    p.add_argument(
        "--ice-addresses",
        help="comma-separated host-candidate addresses (QUALMON_ICE_ADDRESSES), e.g. 127.0.0.1",
    )
    p.add_argument("-v", "--verbose", action="store_true")


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_from_env(None, **server_overrides(args))
    _configure_logging(args.verbose)
    return asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT, then wind down while still listening.

    aiohttp's run_app stops listening before its shutdown hooks run, so a WHIP client
    arriving during shutdown would meet a refused connection. Here the listener stays up
    until legs are closed and reports saved, answering new offers 503 + Retry-After.
    """
    import signal

    from aiohttp import web

    from .service.app import PrivateAccessLogger, create_app, start_site
    from .service.keys import sessions_key

    app = create_app(settings)
    runner = web.AppRunner(app, access_log_class=PrivateAccessLogger, shutdown_timeout=3.0)
    await runner.setup()
    problem = await start_site(runner, settings.host, settings.port)
    if problem is not None:
        print(f"qualmon serve: {problem}", file=sys.stderr, flush=True)
        return 1
    try:
        port = runner.addresses[0][1]  # the real one, should --port be 0
        print(f"Running on http://{settings.host}:{port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        app[sessions_key].accepting = False
        try:
            # The shutdown hooks are idempotent; runner.cleanup() below runs them again.
            await asyncio.wait_for(app.shutdown(), 7.0)
        except TimeoutError:
            logging.getLogger(__name__).warning("shutdown hooks took longer than 7 s")
    finally:
        await runner.cleanup()
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from .service.auth import TokenError, issue_token

    secret = os.environ.get("QUALMON_SECRET", "")
    if not secret:
        raise ConfigError("QUALMON_SECRET is not set: tokens are signed with it")
    try:
        token = issue_token(
            secret, scope=args.scope, session=args.session, role=args.role, ttl_seconds=args.ttl
        )
    except TokenError as exc:
        raise ConfigError(str(exc)) from None
    print(token)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .sim.demo import run_demo

    _configure_logging(args.verbose)
    return asyncio.run(run_demo(args))


def cmd_publish(args: argparse.Namespace) -> int:
    from .sim.publish_cli import run_publish

    _configure_logging(args.verbose)
    return asyncio.run(run_publish(args))


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench.pipeline import run_bench

    if args.soak or args.cycles:
        from .bench.soak import run_soak

        _configure_logging(False)
        logging.getLogger().setLevel(logging.WARNING)
        return asyncio.run(run_soak(args))
    if args.speech:
        from .bench.speech import run_speech_bench

        _configure_logging(False)
        logging.getLogger().setLevel(logging.WARNING)
        return asyncio.run(run_speech_bench(args))
    if args.loss_rule:
        from .bench.loss_rule import run_loss_rule_bench

        return run_loss_rule_bench(args)
    if args.warnings:
        from .bench.warning_latency import run_warning_bench

        _configure_logging(False)
        logging.getLogger().setLevel(logging.WARNING)
        return asyncio.run(run_warning_bench(args))

    _configure_logging(False)
    logging.getLogger().setLevel(logging.WARNING)
    return asyncio.run(run_bench(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qualmon", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service (needs QUALMON_SECRET)")
    _add_server_flags(serve)
    serve.set_defaults(func=cmd_serve)

    token = sub.add_parser("token", help="print a signed access token (needs QUALMON_SECRET)")
    token.add_argument("--scope", required=True, choices=("publish", "watch", "admin"))
    token.add_argument("--session", help="the platform's session id (publish, watch)")
    token.add_argument("--role", choices=("therapist", "client"), help="publish tokens only")
    token.add_argument(
        "--ttl", type=_integer, default=3600, help="lifetime in seconds (default 3600)"
    )
    token.set_defaults(func=cmd_token)

    demo = sub.add_parser("demo", help="run the service with simulated therapy sessions")
    _add_server_flags(demo)
    demo.add_argument("--seconds", type=float, default=None, help="stop after this long")
    demo.set_defaults(func=cmd_demo)

    publish = sub.add_parser("publish", help="publish a WAV file to a WHIP endpoint")
    publish.add_argument(
        "--url", required=True, help="WHIP endpoint, e.g. http://127.0.0.1:8080/whip"
    )
    publish.add_argument("--token", required=True, help="publish token")
    publish.add_argument("--wav", help="audio file (any format ffmpeg reads); default: speech-like")
    publish.add_argument("--seconds", type=float, default=None, help="stop after this long")
    publish.add_argument("--loss", type=float, default=0.0, help="random loss ratio 0..1")
    publish.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay each way")
    publish.add_argument("--jitter-ms", type=float, default=0.0, help="± delay variation")
    publish.add_argument("--ice-addresses", help="host-candidate addresses, e.g. 127.0.0.1")
    publish.add_argument("-v", "--verbose", action="store_true")
    publish.set_defaults(func=cmd_publish)

    bench = sub.add_parser("bench", help="CPU per leg: qualmon pipeline vs bare aiortc receive")
    bench.add_argument("--legs", type=_integer, default=40, help="legs published at once")
    bench.add_argument("--seconds", type=float, default=15.0, help="measured time per receiver")
    bench.add_argument("--rounds", type=_integer, default=3, help="bare/qualmon pairs (median)")
    bench.add_argument("--json", action="store_true", help="print the result as JSON")
    bench.add_argument(
        "--warnings",
        action="store_true",
        help="measure warning detection/clear latency, flaps and false alarms",
    )
    bench.add_argument("--trials", type=_integer, default=8, help="--warnings: trials per scenario")
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
        "--batch", type=_integer, default=5, help="--speech --whip: sessions published at once"
    )
    bench.add_argument(
        "--loss-rule",
        action="store_true",
        help="the high_loss rule on many simulated legs (offline, seconds)",
    )
    bench.add_argument(
        "--legs-sim", type=_integer, default=200, help="--loss-rule: simulated legs per row"
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
        type=_integer,
        metavar="N",
        help="N short sessions after a warm-up: RSS, fds, threads and tasks against baseline",
    )
    bench.set_defaults(func=cmd_bench)

    from .reports.cli import add_store_flag, run_purge, run_report

    report = sub.add_parser("report", help="print a stored session report (reads QUALMON_DB)")
    report.add_argument("session_id", help="the platform's session id (its newest report)")
    report.add_argument("--json", action="store_true", help="the report as JSON")
    add_store_flag(report)
    report.set_defaults(func=run_report)

    purge = sub.add_parser("purge", help="delete stored reports of sessions ended before DATE")
    purge.add_argument(
        "--before", required=True, help="ISO 8601 date or date-time (UTC if no zone)"
    )
    add_store_flag(purge)
    purge.set_defaults(func=run_purge)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"qualmon: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
