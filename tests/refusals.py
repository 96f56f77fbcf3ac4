"""Server-side handling time of refusals, measured under `make fuzz` only (tests/conftest.py
reports it and fails the run over budget)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from hypothesis import settings

REFUSAL_SECONDS: dict[str, list[float]] = {}
"Handling time of every 4xx a timed service gave while the fuzz profile was loaded, by route."
REFUSAL_BUDGET_SECONDS = 0.050
"The issue's goal: every bad input refused in < 50 ms (checked on the p99)."


@web.middleware
async def time_refusals(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Outermost middleware: from the handler's start to its answer, errors included."""
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        if 400 <= status < 500 and settings.get_current_profile_name() == "fuzz":
            resource = request.match_info.route.resource
            route = f"{request.method} {resource.canonical if resource else '(no route)'}"
            REFUSAL_SECONDS.setdefault(route, []).append(time.perf_counter() - start)
