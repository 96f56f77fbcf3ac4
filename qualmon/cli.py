"""`qualmon` command line: serve, drain, token, demo, publish, bench, report, purge.

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

from .bench.cli import add_bench_parser
from .config import ConfigError, server_overrides, settings_from_env
from .config.flags import integer, worker_count


def _configure_logging(verbose: bool, *, worker: bool = False) -> None:
    # Workers of `serve --workers` share the supervisor's stderr: say which one speaks.
    where = " [%(process)d]" if worker else ""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format=f"%(asctime)s %(levelname)s{where} %(name)s: %(message)s",
    )
    from .service.app import quiet_noisy_loggers

    quiet_noisy_loggers()


def _add_server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="listen address (QUALMON_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=integer, help="listen port (QUALMON_PORT, default 8080)")
    p.add_argument(
        "--max-legs", type=integer, help="live WHIP leg cap (QUALMON_MAX_LEGS, default 100)"
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
    _configure_logging(args.verbose, worker=args.worker_of is not None)
    if args.workers > 1:
        from .service.workers import supervise

        return asyncio.run(supervise(settings, args.workers, verbose=args.verbose))
    from .service.serve import serve

    return asyncio.run(serve(settings, supervisor_pid=args.worker_of))


def cmd_drain(args: argparse.Namespace) -> int:
    """POST /v1/admin/drain with an admin token made from QUALMON_SECRET (a preStop hook)."""
    import urllib.error
    import urllib.request

    from .service.auth import issue_token

    settings = settings_from_env()
    url = (args.url or f"http://127.0.0.1:{settings.port}").rstrip("/") + "/v1/admin/drain"
    token = issue_token(settings.secret, scope="admin", ttl_seconds=60)
    request = urllib.request.Request(
        url, method="POST", headers={"Authorization": "Bearer " + token}
    )
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as answer:
            print(answer.read().decode("utf-8", "replace").strip())
            return 0
    except urllib.error.HTTPError as exc:
        reason = exc.read().decode("utf-8", "replace").strip()
        print(f"qualmon drain: {exc.code} {reason}", file=sys.stderr)
    except (urllib.error.URLError, OSError) as exc:
        why = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        print(f"qualmon drain: cannot reach {url}: {why}", file=sys.stderr)
    return 1


def cmd_token(args: argparse.Namespace) -> int:
    from .service.auth import TokenError, issue_token

    secret = os.environ.get("QUALMON_SECRET", "")
    if not secret:
        raise ConfigError("QUALMON_SECRET is not set: tokens are signed with it")
    try:
        token = issue_token(
            secret,
            scope=args.scope,
            session=args.session,
            role=args.role,
            ttl_seconds=args.ttl,
            locale=args.locale,
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qualmon", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service (needs QUALMON_SECRET)")
    _add_server_flags(serve)
    serve.add_argument(
        "--workers",
        type=worker_count,
        default=1,
        help="worker processes sharing the port (1..64, default 1: this process serves)",
    )
    serve.add_argument("--worker-of", type=integer, help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    drain = sub.add_parser(
        "drain", help="ask a running service to drain (needs QUALMON_SECRET; a preStop hook)"
    )
    drain.add_argument(
        "--url", help="the service's base URL (default http://127.0.0.1:$QUALMON_PORT)"
    )
    drain.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for it")
    drain.set_defaults(func=cmd_drain)

    token = sub.add_parser("token", help="print a signed access token (needs QUALMON_SECRET)")
    token.add_argument("--scope", required=True, choices=("publish", "watch", "admin"))
    token.add_argument("--session", help="the platform's session id (publish, watch)")
    token.add_argument("--role", choices=("therapist", "client"), help="publish tokens only")
    token.add_argument(
        "--locale",
        help="the reader's language, a tag such as de or pt-BR (a watch token's widget and"
        " streams; a therapist's publish token also sets the session's webhook texts)",
    )
    token.add_argument(
        "--ttl", type=integer, default=3600, help="lifetime in seconds (default 3600)"
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

    add_bench_parser(sub)

    from .reports.cli import add_lang_flag, add_store_flag, run_purge, run_report

    report = sub.add_parser("report", help="print a stored session report (reads QUALMON_DB)")
    report.add_argument("session_id", help="the platform's session id (its newest report)")
    report.add_argument("--json", action="store_true", help="the report as JSON")
    add_store_flag(report)
    add_lang_flag(report)
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
