"""Probe ingest: `POST /v1/sessions/{id}/stats` (what a participant hears) and `GET /probe.js`."""

from __future__ import annotations

import logging
import math
import time
from importlib import resources

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from ..core.heard import HeardError, sample_from_json
from ..session import ROLES
from .app import metrics_key, sessions_key, settings_key
from .auth import authenticate, require
from .http import bad_request, read_body, unavailable, with_cors

log = logging.getLogger(__name__)

MAX_SAMPLE_BYTES = 16 * 1024
MIN_SAMPLE_INTERVAL_SECONDS = 0.5
"Per (session, role): requests closer together than this get 429."
CONCEALMENT_BUCKETS = (0.0, 0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0)
CORS_HEADERS = {
    # Bearer tokens, never cookies: any origin may post, the token decides.
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Expose-Headers": "Retry-After",
    "Access-Control-Max-Age": "600",
}
_FORGET_AFTER_SECONDS = 60.0
_PRUNE_ABOVE = 1024


class RateLimiter:
    """Last request time per key; the caller passes the time."""

    def __init__(self, min_interval_seconds: float = MIN_SAMPLE_INTERVAL_SECONDS) -> None:
        self.min_interval_seconds = min_interval_seconds
        self._last: dict[tuple[str, str], float] = {}

    def retry_after(self, key: tuple[str, str], now: float) -> float:
        """Seconds to wait (0: go ahead, and the attempt is noted)."""
        last = self._last.get(key)
        if last is not None and now - last < self.min_interval_seconds:
            return self.min_interval_seconds - (now - last)
        self._last[key] = now
        if len(self._last) > _PRUNE_ABOVE:
            self._last = {k: t for k, t in self._last.items() if now - t < _FORGET_AFTER_SECONDS}
        return 0.0


class ProbeMetrics:
    """qualmon_probe_samples_total{result} and qualmon_heard_concealment_ratio{role}."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.samples = Counter(
            "qualmon_probe_samples",
            "Probe stats samples, accepted or rejected (any 4xx/5xx answer).",
            ["result"],
            registry=registry,
        )
        self.concealment = Histogram(
            "qualmon_heard_concealment_ratio",
            "Audible concealment ratio a participant's probe reported, one per sample interval.",
            ["role"],
            buckets=CONCEALMENT_BUCKETS,
            registry=registry,
        )
        for result in ("accepted", "rejected"):
            self.samples.labels(result=result)
        for role in ROLES:
            self.concealment.labels(role=role)


limiter_key = web.AppKey("probe_rate_limiter", RateLimiter)
probe_metrics_key = web.AppKey("probe_metrics", ProbeMetrics)


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
    require(claims, scopes=("publish",), session=session_id)
    assert claims.role is not None
    if not sessions.accepting:
        raise unavailable("shutting down", settings.retry_after_seconds)
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="Content-Type must be application/json\n")
    body = await read_body(request, MAX_SAMPLE_BYTES, "sample")
    wait = request.app[limiter_key].retry_after((session_id, claims.role), time.monotonic())
    if wait > 0:
        raise web.HTTPTooManyRequests(
            text=f"one sample per {MIN_SAMPLE_INTERVAL_SECONDS:g} s per participant\n",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    try:
        sample = sample_from_json(body)
        _, interval = sessions.add_heard(session_id, claims.role, sample)
    except HeardError as exc:
        raise bad_request(f"bad sample: {exc}") from None
    ratio = interval.audible_concealment_ratio if interval is not None else None
    if ratio is not None:
        request.app[probe_metrics_key].concealment.labels(role=claims.role).observe(ratio)
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
