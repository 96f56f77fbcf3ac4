"""Where a bench receiver's event loop stalls: the time each fleet-wide periodic call takes,
and the garbage collector's passes.

A WHIP answer or a DTLS handshake that arrives while the loop runs one synchronous call over
every live leg waits for it, so such calls set the tail of `qualmon bench --connect`. With
QUALMON_BENCH_TIME_CALLS=1 the receiver wraps the calls named in TIMED (once, at start, in
its own process only) and serves their durations at `/bench/calls`. The wrapping costs two
clock reads per call; the service never does this.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..core.quantiles import percentile
from ..reports.recorder import ReportRecorder
from ..service.metrics import QualmonMetrics
from ..sessions.registry import SessionRegistry
from ..warnings.runtime import WarningsRuntime

TIMED: tuple[tuple[type[Any], str, str], ...] = (
    (SessionRegistry, "tick", "session registry tick (every leg; each second also samples)"),
    (WarningsRuntime, "tick", "warnings runtime tick (every session's rules)"),
    (ReportRecorder, "on_session_sample", "report recorder sample (per session, each second)"),
    (QualmonMetrics, "on_leg_sample", "metrics leg sample (per leg, each second)"),
)
_durations: dict[str, list[float]] = {}


def _timed(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    record = _durations.setdefault(name, [])

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            record.append(time.perf_counter() - started)

    return wrapper


_gc_started: list[float] = []


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    # Python's cyclic collector stops the whole process; a full (generation 2) pass over the
    # objects of hundreds of peer connections is a stall of its own.
    if phase == "start":
        _gc_started[:] = [time.perf_counter()]
    elif _gc_started:
        label = f"garbage collection, generation {info['generation']}"
        _durations.setdefault(label, []).append(time.perf_counter() - _gc_started[0])


def start_timing() -> None:
    """Wrap every call in TIMED and time the garbage collector (this process only;
    idempotent)."""
    for cls, attr, label in TIMED:
        if label not in _durations:
            setattr(cls, attr, _timed(label, getattr(cls, attr)))
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


def summary() -> list[dict[str, Any]]:
    """Per timed call since the last reset: count, p50, p95, max (ms) and total (seconds)."""
    rows = []
    for label, seconds in _durations.items():
        if seconds:
            rows.append(
                {
                    "call": label,
                    "n": len(seconds),
                    "p50_ms": percentile(seconds, 0.5) * 1000,
                    "p95_ms": percentile(seconds, 0.95) * 1000,
                    "max_ms": max(seconds) * 1000,
                    "total_seconds": sum(seconds),
                }
            )
    return rows


def add_routes(app: web.Application) -> None:
    """`GET /bench/calls` (the summary) and `POST /bench/calls/reset`."""

    async def calls(request: web.Request) -> web.Response:
        return web.json_response(summary())

    async def reset(request: web.Request) -> web.Response:
        for seconds in _durations.values():
            seconds.clear()
        return web.Response(text="ok")

    app.router.add_get("/bench/calls", calls)
    app.router.add_post("/bench/calls/reset", reset)
