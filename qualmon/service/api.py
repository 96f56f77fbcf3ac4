"""Session API, Prometheus exposition and health probes."""

from __future__ import annotations

import json
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .auth import authenticate, authorize_session, require
from .fanout import cluster_sessions
from .http import bad_request
from .keys import (
    drain_key,
    instance_id_key,
    membership_key,
    metrics_key,
    owners_key,
    sessions_key,
    settings_key,
    store_key,
    warnings_key,
)
from .language import default_localizer, language_headers, request_localizer
from .paging import PageError, decode_cursor, first_after, next_cursor, parse_limit
from .views import session_json

LIST_SCOPES = ("cluster", "local")
SERVER_TIMING = "app"
"The W3C Server-Timing metric of /metrics and the session list: this instance's own time."


def server_timing(started: float) -> dict[str, str]:
    """`Server-Timing: app;dur=<ms>` since `started` (perf_counter): a slow answer measured
    from outside is then told apart from the time spent here."""
    return {"Server-Timing": f"{SERVER_TIMING};dur={(time.perf_counter() - started) * 1000:.2f}"}


async def list_sessions(request: web.Request) -> web.Response:
    """One page of this instance's sessions (`?scope=local`), or by default the whole
    cluster's: sorted by session id, `limit` at most, those after `cursor`; `next` is the
    cursor of the page after, null on the last."""
    started = time.perf_counter()
    claims = authenticate(request, request.app[settings_key].secret, allow_query=True)
    require(claims, scopes=("admin",))
    scope = request.query.get("scope", "cluster")
    if scope not in LIST_SCOPES:
        raise bad_request(f"scope must be one of {', '.join(LIST_SCOPES)}")
    try:
        limit = parse_limit(request.query.get("limit"))
        after = decode_cursor(request.query.get("cursor"))
    except PageError as exc:
        raise bad_request(str(exc)) from None
    registry = request.app[sessions_key]
    # Only the page's sessions are snapshotted and turned into JSON, not every one held.
    ids, more = first_after(
        registry.sessions.keys() | registry.ended.keys(), after=after, limit=limit
    )
    now, instance = time.monotonic(), request.app[instance_id_key]
    loc = default_localizer(request.app)  # no warnings listed: nothing to translate
    local = [
        session_json(snapshot, instance=instance, loc=loc)
        for snapshot in (registry.snapshot_of(i, now) for i in ids)
        if snapshot is not None
    ]
    page = {"sessions": local, "next": next_cursor(ids, more)}
    owners = request.app.get(owners_key)
    if scope == "local":
        doc = page
    elif owners is None:
        doc = {**page, "partial": []}  # a cluster of one
    else:
        doc = await cluster_sessions(request, owners, local, more=more, after=after, limit=limit)
    text = json.dumps(doc)  # inside the measured time: the bulk of a long page's cost
    return web.Response(text=text, content_type="application/json", headers=server_timing(started))


async def get_session(request: web.Request) -> web.Response:
    session_id = authorize_session(request, request.app[settings_key].secret)
    snapshot = request.app[sessions_key].snapshot_of(session_id, time.monotonic())
    if snapshot is None:
        raise web.HTTPNotFound(text="unknown session\n")
    loc = request_localizer(request)
    runtime = request.app.get(warnings_key)
    warnings = runtime.active(session_id) if runtime is not None else ()
    return web.json_response(
        session_json(snapshot, warnings, instance=request.app[instance_id_key], loc=loc),
        headers=language_headers(loc),
    )


async def metrics(request: web.Request) -> web.Response:
    started = time.perf_counter()
    body = generate_latest(request.app[metrics_key].registry)
    return web.Response(
        body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, **server_timing(started)}
    )


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    sessions = request.app[sessions_key]
    if not sessions.accepting:
        raise web.HTTPServiceUnavailable(text="shutting down\n")
    membership = request.app.get(membership_key)
    if request.app[drain_key].draining or (membership is not None and membership.draining):
        # New sessions go to other instances; this one's live legs go on until they end.
        raise web.HTTPServiceUnavailable(text="draining\n")
    if sessions.live_leg_count() >= request.app[settings_key].max_legs:
        raise web.HTTPServiceUnavailable(text="at capacity\n")
    # Still 200: measuring goes on while reports wait in memory, and a disk shared by every
    # instance must not take them all out of the load balancer.
    store = request.app[store_key].health()
    if not store.writable:
        return web.Response(text=f"degraded: report store not writable ({store.reason})\n")
    return web.Response(text="ready\n")


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/sessions", list_sessions)
    app.router.add_get("/v1/sessions/{session_id}", get_session)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
