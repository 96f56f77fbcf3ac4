"""WHIP ingest (RFC 9725): POST an offer, PATCH trickle candidates, DELETE the resource."""

from __future__ import annotations

import hashlib
import logging
import time

from aiohttp import web
from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError, OperationError

from ..media.offer import OfferError, validate_offer
from ..media.whip_source import IceRestartError, TrickleError, WhipSource
from ..sessions.leg import Leg
from ..sessions.registry import CapacityError
from .auth import authenticate, require, require_publisher
from .drain import refuse_new_session
from .http import bad_request, read_body, unavailable, with_cors
from .keys import metrics_key, sessions_key, settings_key

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
SERVER_TIMING_NAME = "answer"
"The Server-Timing metric of a 201: milliseconds from the handler taking the request (its"
" headers read) to the answer."


def _count(request: web.Request, status: int) -> None:
    request.app[metrics_key].whip_requests.labels(method=request.method, code=str(status)).inc()


_counted = with_cors(CORS_HEADERS, _count)
"Every WHIP answer counted by method and status, errors included, with CORS."

_REFUSALS = (
    ValueError,
    AssertionError,
    KeyError,
    TypeError,
    IndexError,
    OperationError,
    InvalidAccessError,
    InvalidStateError,
    InternalError,
)


def _refused_by_aiortc(exc: Exception) -> bool:
    """Whether aiortc refused the offer itself, rather than failing for a reason of ours."""
    if isinstance(exc, _REFUSALS):
        return True
    # PEP 479: a StopIteration escaping aiortc's coroutines reaches us as RuntimeError.
    return isinstance(exc, RuntimeError) and isinstance(exc.__cause__, StopIteration)


async def _read_text(request: web.Request, limit: int, what: str) -> str:
    body = await read_body(request, limit, what)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request(f"{what} is not UTF-8 text") from None


@_counted
async def post_offer(request: web.Request) -> web.StreamResponse:
    started = time.perf_counter()
    settings = request.app[settings_key]
    sessions = request.app[sessions_key]
    if not sessions.accepting:
        raise unavailable("shutting down", settings.retry_after_seconds)
    claims = authenticate(request, settings.secret)
    require(claims, scopes=("publish",))
    if request.content_type != "application/sdp":
        raise web.HTTPUnsupportedMediaType(text="Content-Type must be application/sdp\n")
    text = await _read_text(request, settings.max_offer_bytes, "offer")
    try:
        offer = validate_offer(text, max_bytes=settings.max_offer_bytes)
    except OfferError as exc:
        raise bad_request(f"bad offer: {exc}") from None
    session_id, role = require_publisher(claims)
    refuse_new_session(request.app, session_id)
    try:
        leg, answer = await sessions.add_leg(
            session_id, role, lambda feed: WhipSource(feed, offer=offer, settings=settings)
        )
    except CapacityError:
        # Also raised when shutdown began while aiortc was answering.
        reason = "at capacity, try again later" if sessions.accepting else "shutting down"
        raise unavailable(reason, settings.retry_after_seconds) from None
    except Exception as exc:
        if not _refused_by_aiortc(exc):
            raise
        # validate_offer should have caught it; whatever aiortc still refuses is the
        # caller's offer, not our fault, and the leg is already closed.
        log.warning("offer refused by aiortc: %s", type(exc).__name__)
        raise bad_request("bad offer: refused by the media stack") from None
    etag = '"' + hashlib.sha256(answer.encode()).hexdigest()[:16] + '"'
    seconds = time.perf_counter() - started
    request.app[metrics_key].whip_offer_seconds.observe(seconds)
    return web.Response(
        status=201,
        text=answer,
        content_type="application/sdp",
        headers={
            "Location": f"/whip/{leg.resource_id}",
            "ETag": etag,
            "Accept-Patch": TRICKLE_TYPE,
            # W3C Server Timing: what the offer cost here, apart from the network and any
            # relay (`qualmon bench --connect` reads it).
            "Server-Timing": f"{SERVER_TIMING_NAME};dur={seconds * 1000:.2f}",
        },
    )


def _leg_for(request: web.Request) -> tuple[Leg, str]:
    settings = request.app[settings_key]
    claims = authenticate(request, settings.secret)
    resource = request.match_info["resource"]
    leg = request.app[sessions_key].legs_by_resource.get(resource)
    if claims.scope != "admin":
        require(claims, scopes=("publish",))
    if leg is None or (leg.source is not None and leg.kind != "whip"):
        # A plain-RTP leg shares the id space; it is ended by its own route, not this one.
        raise web.HTTPNotFound(text="no such WHIP resource\n")
    if claims.scope != "admin" and (claims.session != leg.session_id or claims.role != leg.role):
        raise web.HTTPForbidden(text="token is for another session or role\n")
    return leg, resource


@_counted
async def patch_resource(request: web.Request) -> web.StreamResponse:
    leg, _ = _leg_for(request)
    if request.content_type != TRICKLE_TYPE:
        raise web.HTTPUnsupportedMediaType(text=f"Content-Type must be {TRICKLE_TYPE}\n")
    text = await _read_text(request, request.app[settings_key].max_offer_bytes, "fragment")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    source = leg.source
    if not isinstance(source, WhipSource):
        # Ended meanwhile (its source is released), or not a WHIP leg at all.
        raise web.HTTPNotFound(text="no such WHIP resource\n")
    try:
        await source.add_trickle(lines)
    except IceRestartError as exc:
        raise web.HTTPUnprocessableEntity(text=f"{exc}\n") from None
    except TrickleError as exc:
        raise bad_request(str(exc)) from None
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
