"""Relaying: a request for a session another instance owns is answered by that owner.

Any instance accepts any request. One that concerns a session (its id in the path, or in
the bearer token's `session` claim for WHIP) is forwarded to the session's owner and the
owner's answer streamed back, byte for byte and as it comes (event streams event by event).
Not a redirect: fetch, libcurl and aiohttp drop `Authorization` on a cross-origin redirect,
so a redirected WHIP POST would reach the owner without its token.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from yarl import URL

from ..cluster.owners import Owner, SessionOwners
from . import probe_ingest, relay_ws, whip
from .auth import MAX_SESSION_ID_CHARS, Claims, token_claims
from .http import Handler, unavailable
from .keys import instance_id_key, metrics_key, owners_key, relay_key, sessions_key, settings_key
from .relay_client import RELAYED_HEADER, RelayClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Relayed:
    """A route whose requests go to the session's owner."""

    claim: bool
    "The request creates a leg, a sample or an attach: claim the session if nobody owns it."
    cors: Mapping[str, str] = field(default_factory=dict)
    "CORS headers the route's own answers carry; our 503 must carry them too."
    from_store: bool = False
    "An unreachable owner is answered here from the shared store (its last checkpoint)."


_SESSION = "/v1/sessions/{session_id}"
SESSION_ROUTES: dict[tuple[str, str], Relayed] = {
    ("GET", _SESSION): Relayed(claim=False),
    ("GET", _SESSION + "/events"): Relayed(claim=False),
    ("GET", _SESSION + "/ws"): Relayed(claim=False),
    # Reports are in the shared store, readable anywhere; a live session's report needs the
    # owner's checkpoint first, and an owned session is relayed.
    # An owner that cannot be reached (killed, until its lease runs out) leaves its last
    # checkpoint in the store: a report as of then beats a 503.
    ("GET", _SESSION + "/report"): Relayed(claim=False, from_store=True),
    ("GET", _SESSION + "/report.html"): Relayed(claim=False, from_store=True),
    ("POST", _SESSION + "/stats"): Relayed(claim=True, cors=probe_ingest.CORS_HEADERS),
    ("POST", _SESSION + "/rtp"): Relayed(claim=True),
    ("DELETE", _SESSION + "/rtp/{rtp_id}"): Relayed(claim=False),
    ("POST", _SESSION + "/janus"): Relayed(claim=True),
    ("DELETE", _SESSION + "/janus/{janus_id}"): Relayed(claim=False),
}
"""Routes with the session id in the path. The widget page is not here: it is the same
page everywhere, and the event stream it opens (same origin) is relayed."""
WHIP_ROUTES: dict[tuple[str, str], Relayed] = {
    ("POST", "/whip"): Relayed(claim=True, cors=whip.CORS_HEADERS),
    ("PATCH", "/whip/{resource}"): Relayed(claim=False, cors=whip.CORS_HEADERS),
    ("DELETE", "/whip/{resource}"): Relayed(claim=False, cors=whip.CORS_HEADERS),
}
"Routes whose session is the bearer token's `session` claim."
RELAYED_ROUTES = (*SESSION_ROUTES, *WHIP_ROUTES)
"(method, path) of every route a cluster relays (the contract marks their 503)."


def _route_key(request: web.Request) -> tuple[str, str] | None:
    resource = request.match_info.route.resource
    if resource is None:
        return None  # no route matched: the 404/405 is ours to give
    method = "GET" if request.method == "HEAD" else request.method
    return method, resource.canonical


def _claims(request: web.Request) -> Claims | None:
    """The request's verified token, or None: such a request is answered here (401/403)."""
    return token_claims(request, request.app[settings_key].secret)


def _path_session(request: web.Request, route: Relayed) -> str | None:
    """The path's session id, if the request's token may touch it at all."""
    session_id = request.match_info["session_id"]
    claims = _claims(request)
    if claims is None or len(session_id) > MAX_SESSION_ID_CHARS:
        return None
    if claims.scope != "admin" and claims.session != session_id:
        return None  # refused here with the usual 403; no store look-up for a stranger
    if route.claim and claims.scope == "watch":
        return None  # a watcher starts nothing (403 here): it must not claim a session
    return session_id


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    owners = request.app.get(owners_key)
    if owners is None or RELAYED_HEADER in request.headers or request.method == "OPTIONS":
        return await handler(request)
    key = _route_key(request)
    if key in SESSION_ROUTES:
        route = SESSION_ROUTES[key]
        session_id = _path_session(request, route)
    elif key in WHIP_ROUTES:
        route = WHIP_ROUTES[key]
        claims = _claims(request)
        if claims is None:
            return await handler(request)
        if claims.scope == "admin" and key[1] == "/whip/{resource}":
            return await _admin_whip(request, handler, owners, route)
        session_id = claims.session if claims.scope == "publish" else None
    else:
        return await handler(request)
    if session_id is None:
        return await handler(request)
    owner = await owners.owner_of(session_id, claim=route.claim)
    if owner is None or owner.local:
        return await handler(request)
    if key == ("GET", _SESSION + "/ws") and relay_ws.is_upgrade(request):
        response = await relay_ws.proxy(request, owner, owner_url(owner, request), route.cors)
    else:
        response = await forward(request, owner)
    if response is None:
        if route.from_store:
            return await handler(request)
        raise _unreachable(request, route.cors)
    return response


async def _admin_whip(
    request: web.Request, handler: Handler, owners: SessionOwners, route: Relayed
) -> web.StreamResponse:
    """An admin's PATCH/DELETE of a WHIP resource names no session: a resource that is not
    here is looked for on each other instance (each answers 404 unless it holds it)."""
    if request.match_info["resource"] in request.app[sessions_key].legs_by_resource:
        return await handler(request)
    unreachable = False
    for owner in await owners.instances():
        if owner.local:
            continue
        response = await forward(request, owner, skip_not_found=True)
        if response is None:
            unreachable = True
        elif response.status != web.HTTPNotFound.status_code:
            return response
    if unreachable:
        raise _unreachable(request, route.cors)
    # Nowhere: the local handler says 404 (before reading the body, which relaying read).
    return await handler(request)


def _unreachable(request: web.Request, cors: Mapping[str, str]) -> web.HTTPServiceUnavailable:
    error = unavailable(
        "the instance that owns this session cannot be reached, try again later",
        request.app[settings_key].retry_after_seconds,
    )
    error.headers.update(cors)
    if cors:
        error.headers["Access-Control-Expose-Headers"] = "Retry-After"
    return error


def owner_url(owner: Owner, request: web.Request) -> URL:
    """The same path and query (still percent-encoded as received) on the owner."""
    return URL(owner.base_url.rstrip("/") + request.rel_url.raw_path_qs, encoded=True)


async def forward(
    request: web.Request,
    owner: Owner,
    *,
    skip_not_found: bool = False,
) -> web.StreamResponse | None:
    """The owner's answer, streamed back to the client; None when the owner could not be
    reached (nothing was sent to the client yet). With `skip_not_found` a 404 is returned
    unsent (status only), for the caller to look elsewhere."""
    relay = request.app[relay_key]
    body = await request.read() if request.body_exists else None
    try:
        upstream = await relay.http.request(
            request.method,
            owner_url(owner, request),
            headers=relay.headers_for(request.headers),
            data=body,
            allow_redirects=False,
        )
    except (aiohttp.ClientError, TimeoutError) as exc:
        _log_unreachable(relay, owner, exc)
        return None
    relay.count("relayed")
    async with upstream:
        if skip_not_found and upstream.status == web.HTTPNotFound.status_code:
            return web.Response(status=upstream.status)
        return await _stream_back(request, upstream)


def _log_unreachable(relay: RelayClient, owner: Owner, exc: BaseException) -> None:
    relay.count("unreachable")
    # The type only: aiohttp's messages name addresses.
    log.warning(
        "instance %s unreachable for a relayed request (%s)", owner.instance_id, type(exc).__name__
    )


async def _stream_back(
    request: web.Request, upstream: aiohttp.ClientResponse
) -> web.StreamResponse:
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
    for name, value in upstream.headers.items():
        if name.lower() not in ("content-length", "transfer-encoding", "connection", "keep-alive"):
            response.headers.add(name, value)
    if upstream.content_length is not None:
        response.content_length = upstream.content_length
    try:
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)  # as it comes: an event is not held back
        await response.write_eof()
    except (ConnectionResetError, aiohttp.ClientError, TimeoutError) as exc:
        # The client left, or the owner broke off mid-answer: the status is sent, so all
        # that is left is to stop.
        if not isinstance(exc, ConnectionResetError):
            log.info("relayed answer cut short (%s)", type(exc).__name__)
    return response


async def _client(app: web.Application) -> AsyncIterator[None]:
    async with app[relay_key].running():
        yield


def setup(app: web.Application) -> None:
    """The relay client (its pool lives as long as the app); the middleware is given to the
    Application by create_app, after the error middleware."""
    app[relay_key] = RelayClient(
        instance_id=app[instance_id_key], registry=app[metrics_key].registry
    )
    app.cleanup_ctx.append(_client)
