"""Probe ingest: `POST /v1/sessions/{id}/stats` (what a participant hears) and `GET /probe.js`."""

from __future__ import annotations

import logging
import math
import time
from importlib import resources

from aiohttp import web

from ..core.heard import HeardError, sample_from_json
from .auth import authenticate, require_publisher
from .http import bad_request, read_body, unavailable, with_cors
from .keys import limiter_key, metrics_key, probe_metrics_key, sessions_key, settings_key
from .metrics import ProbeMetrics
from .rate_limit import MIN_SAMPLE_INTERVAL_SECONDS, RateLimiter

log = logging.getLogger(__name__)

MAX_SAMPLE_BYTES = 16 * 1024
CORS_HEADERS = {
    # Bearer tokens, never cookies: any origin may post, the token decides.
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Expose-Headers": "Retry-After",
    "Access-Control-Max-Age": "600",
}


def _count(request: web.Request, status: int) -> None:
    if request.method == "POST":  # preflights are not samples
        result = "accepted" if status < 400 else "rejected"
        request.app[probe_metrics_key].samples.labels(result=result).inc()


_with_cors = with_cors(CORS_HEADERS, _count)
"CORS on every answer, errors included; samples counted by result."


@_with_cors
async def post_stats(request: web.Request) -> web.StreamResponse:
    session_id = request.match_info["session_id"]
    settings = request.app[settings_key]
    sessions = request.app[sessions_key]
    claims = authenticate(request, settings.secret)
    # The token's role says whose ears these are; only a participant's token fits.
    _, role = require_publisher(claims, session=session_id)
    if not sessions.accepting:
        raise unavailable("shutting down", settings.retry_after_seconds)
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="Content-Type must be application/json\n")
    body = await read_body(request, MAX_SAMPLE_BYTES, "sample")
    wait = request.app[limiter_key].retry_after((session_id, role), time.monotonic())
    if wait > 0:
        raise web.HTTPTooManyRequests(
            text=f"one sample per {MIN_SAMPLE_INTERVAL_SECONDS:g} s per participant\n",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    try:
        sample = sample_from_json(body)
        _, interval = sessions.add_heard(session_id, role, sample)
    except HeardError as exc:
        raise bad_request(f"bad sample: {exc}") from None
    ratio = interval.audible_concealment_ratio if interval is not None else None
    if ratio is not None:
        request.app[probe_metrics_key].concealment.labels(role=role).observe(ratio)
    return web.Response(status=204)


@_with_cors
async def options_stats(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)


def _probe_js() -> str:
    return resources.files("qualmon.service").joinpath("static/probe.js").read_text("utf-8")


async def probe_js(request: web.Request) -> web.Response:
    return web.Response(
        text=_probe_js(),
        content_type="text/javascript",
        charset="utf-8",
        headers={
            "Cache-Control": "public, max-age=300",
            "X-Content-Type-Options": "nosniff",
            "Access-Control-Allow-Origin": "*",
        },
    )


def setup(app: web.Application) -> None:
    app[limiter_key] = RateLimiter()
    app[probe_metrics_key] = ProbeMetrics(app[metrics_key].registry)
    app.router.add_post("/v1/sessions/{session_id}/stats", post_stats)
    app.router.add_route("OPTIONS", "/v1/sessions/{session_id}/stats", options_stats)
    app.router.add_get("/probe.js", probe_js)
