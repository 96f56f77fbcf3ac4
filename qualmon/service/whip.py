"""WHIP ingest (RFC 9725): POST an offer, PATCH trickle candidates, DELETE the resource."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError, OperationError
from aiortc.sdp import candidate_from_sdp

from ..media.offer import OfferError, validate_offer
from ..registry import CapacityError
from .app import metrics_key, sessions_key, settings_key
from .auth import authenticate, require

log = logging.getLogger(__name__)

CORS_HEADERS = {
    # Bearer tokens, never cookies: any origin may call, the token decides.
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Expose-Headers": "Location, ETag, Accept-Patch, Retry-After, Link",
    "Access-Control-Max-Age": "600",
}
TRICKLE_TYPE = "application/trickle-ice-sdpfrag"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _counted(handler: Handler) -> Handler:
    """Count every WHIP answer by method and status, errors included, and add CORS."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        metrics = request.app[metrics_key]
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(CORS_HEADERS)
            metrics.whip_requests.labels(method=request.method, code=str(exc.status)).inc()
            raise
        response.headers.update(CORS_HEADERS)
        metrics.whip_requests.labels(method=request.method, code=str(response.status)).inc()
        return response

    return wrapper


def _bad_request(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=reason.strip().splitlines()[0] + "\n")


def _unavailable(reason: str, retry_after: int) -> web.HTTPServiceUnavailable:
    return web.HTTPServiceUnavailable(text=reason + "\n", headers={"Retry-After": str(retry_after)})


async def _read_limited(request: web.Request, limit: int, what: str) -> str:
    """The body as text, or 413 past `limit` bytes (checked before and while reading)."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(
            max_size=limit,
            actual_size=request.content_length,
            text=f"{what} larger than {limit} bytes\n",
        )
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise web.HTTPRequestEntityTooLarge(
            max_size=limit, actual_size=len(body), text=f"{what} larger than {limit} bytes\n"
        )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad_request(f"{what} is not UTF-8 text") from None


@_counted
async def post_offer(request: web.Request) -> web.StreamResponse:
    settings = request.app[settings_key]
    sessions = request.app[sessions_key]
    if not sessions.accepting:
        raise _unavailable("shutting down", settings.retry_after_seconds)
    claims = authenticate(request, settings.secret)
    require(claims, scopes=("publish",))
    if request.content_type != "application/sdp":
        raise web.HTTPUnsupportedMediaType(text="Content-Type must be application/sdp\n")
    text = await _read_limited(request, settings.max_offer_bytes, "offer")
    try:
        offer = validate_offer(text, max_bytes=settings.max_offer_bytes)
    except OfferError as exc:
        raise _bad_request(f"bad offer: {exc}") from None
    assert claims.session is not None and claims.role is not None
    try:
        leg, answer = await sessions.add_leg(claims.session, claims.role, offer)
    except CapacityError:
        raise _unavailable("at capacity, try again later", settings.retry_after_seconds) from None
    except (
        ValueError,
        AssertionError,
        KeyError,
        TypeError,
        IndexError,
        StopIteration,
        OperationError,
        InvalidAccessError,
        InvalidStateError,
        InternalError,
    ) as exc:
        # validate_offer should have caught it; whatever aiortc still refuses is the
        # caller's offer, not our fault, and the leg is already closed.
        log.warning("offer refused by aiortc: %s", type(exc).__name__)
        raise _bad_request("bad offer: refused by the media stack") from None
    etag = '"' + hashlib.sha256(answer.encode()).hexdigest()[:16] + '"'
    return web.Response(
        status=201,
        text=answer,
        content_type="application/sdp",
        headers={
            "Location": f"/whip/{leg.resource_id}",
            "ETag": etag,
            "Accept-Patch": TRICKLE_TYPE,
        },
    )


def _leg_for(request: web.Request) -> tuple[object, str]:
    settings = request.app[settings_key]
    claims = authenticate(request, settings.secret)
    resource = request.match_info["resource"]
    leg = request.app[sessions_key].legs_by_resource.get(resource)
    if claims.scope != "admin":
        require(claims, scopes=("publish",))
    if leg is None:
        raise web.HTTPNotFound(text="no such WHIP resource\n")
    if claims.scope != "admin" and (claims.session != leg.session_id or claims.role != leg.role):
        raise web.HTTPForbidden(text="token is for another session or role\n")
    return leg, resource


@_counted
async def patch_resource(request: web.Request) -> web.StreamResponse:
    leg, _ = _leg_for(request)
    if request.content_type != TRICKLE_TYPE:
        raise web.HTTPUnsupportedMediaType(text=f"Content-Type must be {TRICKLE_TYPE}\n")
    text = await _read_limited(request, request.app[settings_key].max_offer_bytes, "fragment")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    pc = leg.pc  # type: ignore[attr-defined]
    remote = pc.remoteDescription
    for line in lines:
        if line.startswith(("a=ice-ufrag:", "a=ice-pwd:")):
            value = line.split(":", 1)[1]
            if remote is None or value not in remote.sdp:
                raise web.HTTPUnprocessableEntity(text="ICE restart is not supported\n")
    candidates = []
    for line in lines:
        if line.startswith("a=candidate:"):
            try:
                candidate = candidate_from_sdp(line[len("a=candidate:") :])
            except (ValueError, IndexError, KeyError, AssertionError):
                raise _bad_request("bad candidate line") from None
            candidates.append(candidate)
    mid = next((t.mid for t in pc.getTransceivers() if t.kind == "audio"), None)
    for candidate in candidates:
        try:
            ipaddress.ip_address(candidate.ip)
        except ValueError:
            continue  # host names (mDNS) would make aioice resolve DNS inside the loop
        candidate.sdpMid = mid
        await pc.addIceCandidate(candidate)
    return web.Response(status=204)


@_counted
async def delete_resource(request: web.Request) -> web.StreamResponse:
    _, resource = _leg_for(request)
    await request.app[sessions_key].delete_leg(resource)
    return web.Response(status=200, text="ended\n")


@_counted
async def options(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204, headers={"Accept-Post": "application/sdp"})


def setup(app: web.Application) -> None:
    app.router.add_post("/whip", post_offer)
    app.router.add_route("OPTIONS", "/whip", options)
    app.router.add_patch("/whip/{resource}", patch_resource)
    app.router.add_delete("/whip/{resource}", delete_resource)
    app.router.add_route("OPTIONS", "/whip/{resource}", options)
