"""Draining: take no new session, let live legs finish (or run out of time), then exit.

A drain begins with `POST /v1/admin/drain` or a signal to `qualmon serve`. While it lasts,
`/readyz` answers 503 `draining` and a leg of a session that is not live here is refused
with 503 + Retry-After; legs of sessions live here are still taken (both legs of a session
are measured on one clock, and a publisher's reconnect must find its session). When no live
leg is left, or `drain_seconds` have passed, `DrainState.finished` is set and `qualmon serve`
runs the ordinary shutdown: remaining legs end as `shutdown`, every report is saved.

The hook for other parts (the cluster membership): `app[drain_key].draining` is the flag,
and a callable appended to `app[drain_key].on_drain` is called once, when a drain begins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Protocol

from aiohttp import web
from prometheus_client import Gauge

from ..core.instants import iso
from ..sessions.registry import SessionRegistry
from .auth import authenticate, require
from .drain_state import DrainState
from .http import unavailable
from .keys import drain_key, metrics_key, sessions_key, settings_key

log = logging.getLogger(__name__)


def refuse_new_session(app: web.Application, session_id: str) -> None:
    """503 + Retry-After for a leg of a session not live here while draining."""
    drain = app[drain_key]
    if not drain.draining:
        return
    session = app[sessions_key].sessions.get(session_id)
    if session is None or not session.live:
        retry = app[settings_key].retry_after_seconds
        raise unavailable("draining: new sessions go to other instances", retry)


def drain_json(drain: DrainState, sessions: SessionRegistry) -> dict[str, object]:
    return {
        "state": "draining" if drain.draining else "serving",
        "live_legs": sessions.live_leg_count(),
        "live_sessions": len(sessions.live_sessions()),
        "deadline": iso(drain.deadline_at),
        "seconds_left": round(drain.seconds_left(), 1),
    }


async def post_drain(request: web.Request) -> web.Response:
    """Begin draining (idempotent): 202 with what is still live and the deadline."""
    claims = authenticate(request, request.app[settings_key].secret)
    require(claims, scopes=("admin",))
    drain = request.app[drain_key]
    if drain.start():
        log.info(
            "draining on request: %d live legs, up to %.0f s",
            request.app[sessions_key].live_leg_count(),
            drain.drain_seconds,
        )
    return web.json_response(drain_json(drain, request.app[sessions_key]), status=202)


class LiveLegs(Protocol):
    def live_leg_count(self) -> int: ...


async def wait_until_drained(drain: DrainState, sessions: LiveLegs, tick: float) -> None:
    """Once draining: set `finished` when no live leg is left or the deadline has passed."""
    await drain.started.wait()
    # Polled on the registry's own tick: legs end from many places (DELETE, lost, failed).
    while sessions.live_leg_count() > 0 and drain.seconds_left() > 0:
        await asyncio.sleep(tick)
    left = sessions.live_leg_count()
    if left:
        log.info("drain time is up: ending %d live legs", left)
    else:
        log.info("drained: no live leg left")
    drain.finished.set()


async def _watching(app: web.Application) -> AsyncIterator[None]:
    drain = app[drain_key]
    tick = app[settings_key].tick_seconds
    task = asyncio.create_task(
        wait_until_drained(drain, app[sessions_key], tick), name="qualmon-drain"
    )
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def setup(app: web.Application) -> None:
    drain = DrainState(app[settings_key].drain_seconds)
    app[drain_key] = drain
    gauge = Gauge(
        "qualmon_draining",
        "1 while this instance drains (takes no new session), else 0.",
        registry=app[metrics_key].registry,
    )
    gauge.set_function(lambda: float(drain.draining))
    app.router.add_post("/v1/admin/drain", post_drain)
    app.cleanup_ctx.append(_watching)
