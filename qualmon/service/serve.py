"""One `qualmon serve` process: listen, drain on a signal, shut down saving every report."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

from aiohttp import web

from ..config import Settings
from .app import PrivateAccessLogger, create_app, start_site
from .drain_state import DrainState
from .keys import drain_key, sessions_key
from .memory_trim import freeze_startup_heap
from .workers import DRAIN_ALL_SIGNAL

log = logging.getLogger(__name__)

SHUTDOWN_HOOKS_SECONDS = 7.0
PARENT_CHECK_SECONDS = 1.0


async def serve(settings: Settings, *, supervisor_pid: int | None = None) -> int:
    """Serve until drained, then wind down while still listening; the exit code.

    SIGTERM/SIGINT begin a drain (see drain.py); a second one ends it at once. aiohttp's
    run_app stops listening before its shutdown hooks run, so a WHIP client arriving during
    shutdown would meet a refused connection. Here the listener stays up until legs are
    closed and reports saved, answering new offers 503 + Retry-After.

    `supervisor_pid`: this is a worker of `serve --workers` (see workers.py).
    """
    app = create_app(settings)
    runner = web.AppRunner(app, access_log_class=PrivateAccessLogger, shutdown_timeout=3.0)
    await runner.setup()
    problem = await start_site(runner, settings.host, settings.port, reuse_port=settings.reuse_port)
    if problem is None and settings.internal_port is not None:
        problem = await start_site(
            runner, settings.host, settings.internal_port, setting="QUALMON_INTERNAL_PORT"
        )
    if problem is not None:
        print(f"qualmon serve: {problem}", file=sys.stderr, flush=True)
        return 1
    drain = app[drain_key]
    watcher = None
    try:
        port = runner.addresses[0][1]  # the real one, should --port be 0
        frozen = freeze_startup_heap()
        log.debug("%d objects from start-up kept out of garbage collections", frozen)
        print(f"Running on http://{settings.host}:{port}", flush=True)
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            what = drain.on_signal()
            live = app[sessions_key].live_leg_count()
            log.info("signal: %s (%d live legs, %.0f s left)", what, live, drain.seconds_left())

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal)
        if supervisor_pid is not None:
            watcher = asyncio.create_task(
                _follow_supervisor(drain, supervisor_pid), name="qualmon-supervisor-watch"
            )
        await drain.finished.wait()
        app[sessions_key].accepting = False
        try:
            # The shutdown hooks are idempotent; runner.cleanup() below runs them again.
            await asyncio.wait_for(app.shutdown(), SHUTDOWN_HOOKS_SECONDS)
        except TimeoutError:
            log.warning("shutdown hooks took longer than %.0f s", SHUTDOWN_HOOKS_SECONDS)
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await runner.cleanup()
    return 0


async def _follow_supervisor(drain: DrainState, supervisor_pid: int) -> None:
    """A worker drains with its siblings and drains alone when orphaned.

    Workers share one address, so a load balancer cannot take one out: a drain asked of one
    worker (`POST /v1/admin/drain`, `qualmon drain`) is told to the supervisor with
    SIGUSR1, and it sends SIGTERM to every worker (once: SIGTERM is not used for this, as a
    second SIGTERM would cut every drain short). A supervisor that died without forwarding
    anything (SIGKILL) is noticed by the parent pid changing.
    """

    def tell_supervisor() -> None:
        if not drain.signalled and os.getppid() == supervisor_pid:
            os.kill(supervisor_pid, DRAIN_ALL_SIGNAL)

    drain.on_drain.append(tell_supervisor)
    while os.getppid() == supervisor_pid:
        await asyncio.sleep(PARENT_CHECK_SECONDS)
    if drain.start():
        log.warning("the supervisor is gone: draining")
