"""Janus attach: `POST /v1/sessions/{id}/janus` has a Janus VideoRoom forward one publisher's
audio to a new plain-RTP leg (qualmon calls `rtp_forward` itself, SRTP by default), and
`DELETE /v1/sessions/{id}/janus/{janus_id}` stops it and ends the leg.

The body is checked in full before anything is taken; a refusal by Janus (unknown room or
publisher, wrong secret, Janus down) is a 502 with Janus' reason and leaves no port, leg or
session behind. qualmon never joins the room.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from ..media.rtp_ports import PortsExhausted
from ..sessions.registry import CapacityError
from ..sessions.snapshot import ROLES, Role
from .auth import MAX_SESSION_ID_CHARS, authenticate, require
from .drain import refuse_new_session
from .http import bad_request, read_body, unavailable
from .janus_bridge import FeedAttached, JanusAttachment, JanusBridge
from .janus_client import JanusClient, JanusError
from .keys import janus_key, rtp_ports_key, sessions_key, settings_key
from .rtp_routes import AttachError, attach_rtp, json_object

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4096
FIELDS = ("room", "publisher_id", "role", "room_secret", "srtp")
MAX_JANUS_ID = 2**53 - 1
"Janus ids are unsigned 64-bit; JavaScript clients (janus.js) keep them below 2^53."
MAX_SECRET_CHARS = 256


@dataclass(frozen=True)
class JanusAttachRequest:
    room: int
    publisher_id: int
    role: Role
    room_secret: str | None
    srtp: bool


def _janus_id(doc: dict[str, Any], name: str) -> int:
    value = doc.get(name)
    if type(value) is not int or not 1 <= value <= MAX_JANUS_ID:
        raise AttachError(f"{name} must be an integer 1..{MAX_JANUS_ID} (a Janus id)")
    return value


def parse_janus_attach(body: bytes) -> JanusAttachRequest:
    """The request in `body`, or AttachError saying (in one line) what is wrong with it."""
    doc = json_object(body, FIELDS)
    role = doc.get("role")
    if role not in ROLES:
        raise AttachError(f"role is required: {' or '.join(ROLES)}")
    secret = doc.get("room_secret")
    if secret is not None and (
        not isinstance(secret, str) or not 1 <= len(secret) <= MAX_SECRET_CHARS
    ):
        raise AttachError(f"room_secret must be a string of 1..{MAX_SECRET_CHARS} characters")
    srtp = doc.get("srtp", True)
    if not isinstance(srtp, bool):
        raise AttachError("srtp must be true or false")
    return JanusAttachRequest(
        room=_janus_id(doc, "room"),
        publisher_id=_janus_id(doc, "publisher_id"),
        role=role,
        room_secret=secret,
        srtp=srtp,
    )


def attachment_json(attached: JanusAttachment) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": attached.id,
        "role": attached.role,
        "room": attached.room,
        "publisher_id": attached.publisher_id,
        "host": attached.attachment.host,
        "port": attached.attachment.port,
    }
    if attached.attachment.srtp_suite is not None:
        doc["srtp_suite"] = attached.attachment.srtp_suite
    return doc


def _bridge(request: web.Request) -> JanusBridge:
    """The bridge; 404 when Janus attach is off (a 4xx: the caller's deployment lacks it,
    nothing is wrong with qualmon, and "never a 5xx for a request" stays true)."""
    bridge = request.app.get(janus_key)
    if bridge is None:
        raise web.HTTPNotFound(text="Janus attach is off: QUALMON_JANUS_URL is not set\n")
    return bridge


async def post_janus(request: web.Request) -> web.StreamResponse:
    settings = request.app[settings_key]
    sessions = request.app[sessions_key]
    session_id = request.match_info["session_id"]
    claims = authenticate(request, settings.secret)
    require(claims, scopes=("admin",), session=session_id)
    bridge = _bridge(request)
    if not sessions.accepting:
        raise unavailable("shutting down", settings.retry_after_seconds)
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="Content-Type must be application/json\n")
    body = await read_body(request, MAX_BODY_BYTES, "body")
    try:
        asked = parse_janus_attach(body)
    except AttachError as exc:
        raise bad_request(str(exc)) from None
    if len(session_id) > MAX_SESSION_ID_CHARS:
        raise bad_request(f"session ids are 1–{MAX_SESSION_ID_CHARS} characters")
    refuse_new_session(request.app, session_id)
    try:
        attached = await bridge.attach(
            session_id,
            asked.role,
            room=asked.room,
            publisher_id=asked.publisher_id,
            room_secret=asked.room_secret,
            srtp=asked.srtp,
        )
    except FeedAttached as exc:
        raise web.HTTPConflict(text=f"{exc}\n") from None
    except JanusError as exc:
        raise web.HTTPBadGateway(text=f"Janus: {exc}\n") from None
    except PortsExhausted:
        reason = "no free plain-RTP port, try again later"
        raise unavailable(reason, settings.retry_after_seconds) from None
    except CapacityError:
        reason = "at capacity, try again later" if sessions.accepting else "shutting down"
        raise unavailable(reason, settings.retry_after_seconds) from None
    location = f"/v1/sessions/{quote(session_id, safe='')}/janus/{attached.id}"
    return web.json_response(attachment_json(attached), status=201, headers={"Location": location})


async def delete_janus(request: web.Request) -> web.StreamResponse:
    settings = request.app[settings_key]
    session_id = request.match_info["session_id"]
    claims = authenticate(request, settings.secret)
    require(claims, scopes=("admin",), session=session_id)
    bridge = _bridge(request)
    attached = bridge.attachments.get(request.match_info["janus_id"])
    if attached is None or attached.session_id != session_id:
        raise web.HTTPNotFound(text="no such Janus attachment (or it ended)\n")
    await bridge.detach(attached)
    return web.Response(status=204)


async def _running(app: web.Application) -> AsyncIterator[None]:
    bridge = app[janus_key]
    task = asyncio.create_task(bridge.run(), name="qualmon-janus-upkeep")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await bridge.close()


def setup(app: web.Application) -> None:
    """Call after rtp_routes.setup (the port pool). Routes always exist; without
    QUALMON_JANUS_URL they answer 404."""
    settings = app[settings_key]
    if settings.janus_url is not None:
        bridge = JanusBridge(
            JanusClient(settings.janus_url),
            ports=app[rtp_ports_key],
            attach_leg=lambda session, role, params, lease: attach_rtp(
                app, session, role, params, lease
            ),
            admin_key=settings.janus_admin_key,
        )
        app[janus_key] = bridge
        app.cleanup_ctx.append(_running)
    app.router.add_post("/v1/sessions/{session_id}/janus", post_janus)
    app.router.add_delete("/v1/sessions/{session_id}/janus/{janus_id}", delete_janus)
