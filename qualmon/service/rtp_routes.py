"""Plain-RTP ingest: `POST /v1/sessions/{id}/rtp` opens a UDP port for one participant's audio
(sent by an SFU's forwarder or a gateway), `DELETE /v1/sessions/{id}/rtp/{rtp_id}` ends it.

The request is checked in full before a port is taken, and a refusal after that (the leg cap,
shutdown) gives the port back: a refused attach leaves no port, leg or session behind.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from ..media.rtp_ports import PortLease, PortPool, PortsExhausted
from ..media.rtp_source import (
    OPUS_CLOCK_RATE,
    RTCP_TYPES,
    SRTP_KEY_BYTES,
    RtpAttachment,
    RtpParams,
    RtpSource,
)
from ..sessions.leg import Leg
from ..sessions.registry import CapacityError
from ..sessions.snapshot import ROLES, Role
from .auth import MAX_SESSION_ID_CHARS, Claims, authenticate, require
from .drain import refuse_new_session
from .http import bad_request, read_body, unavailable
from .keys import metrics_key, rtp_metrics_key, rtp_ports_key, sessions_key, settings_key
from .metrics import RtpIngestMetrics

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4096
"An attach request is a handful of fields; anything longer is not one."
FIELDS = ("role", "codec", "payload_type", "clock_rate", "srtp", "srtp_key")
_RTCP_PAYLOAD_TYPES = range(RTCP_TYPES.start - 128, RTCP_TYPES.stop - 128)
"64..95: with the marker bit set these would read as RTCP on a multiplexed port."


class AttachError(ValueError):
    """A request body that cannot be attached; the message is one line, safe to show."""


@dataclass(frozen=True)
class AttachRequest:
    role: Role | None
    "The role asked for; a publish token's own role is used when this is None."
    params: RtpParams


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise AttachError(f"field {key[:40]!r} given twice")
        doc[key] = value
    return doc


def _no_constants(name: str) -> None:
    raise AttachError(f"{name} is not a JSON number")


def json_object(body: bytes, fields: Collection[str]) -> dict[str, Any]:
    """`body` as a strict JSON object (UTF-8, no repeated keys, no NaN/Infinity) of `fields`
    only, or AttachError saying in one line what is wrong with it; every attach route reads
    this way."""
    try:
        doc = json.loads(
            body.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constants
        )
    except AttachError:
        raise
    except UnicodeDecodeError:
        raise AttachError("body is not UTF-8") from None
    except (ValueError, RecursionError):  # RecursionError: nested thousands deep
        raise AttachError("body is not JSON") from None
    if not isinstance(doc, dict):
        raise AttachError("body must be a JSON object")
    for key in doc:
        if key not in fields:
            raise AttachError(f"unknown field {key[:40]!r}")
    return doc


def parse_attach(body: bytes) -> AttachRequest:
    """The attach request in `body`, or AttachError saying what is wrong with it."""
    doc = json_object(body, FIELDS)
    role = doc.get("role")
    if role is not None and role not in ROLES:
        raise AttachError(f"role must be {' or '.join(ROLES)}")
    codec = doc.get("codec", "opus")
    if not isinstance(codec, str) or codec.lower() != "opus":
        raise AttachError("codec must be opus (the one codec plain-RTP legs take)")
    payload_type = doc.get("payload_type")
    if (
        type(payload_type) is not int  # bool is an int too
        or not 0 <= payload_type <= 127
        or payload_type in _RTCP_PAYLOAD_TYPES
    ):
        raise AttachError(
            "payload_type must be an integer 0..127 outside 64..95 "
            "(RTCP's range on a port that carries both, RFC 5761)"
        )
    clock_rate = doc.get("clock_rate", OPUS_CLOCK_RATE)
    if type(clock_rate) is not int or clock_rate != OPUS_CLOCK_RATE:
        raise AttachError(f"clock_rate must be {OPUS_CLOCK_RATE} for opus (RFC 7587)")
    srtp = doc.get("srtp", True)
    if not isinstance(srtp, bool):
        raise AttachError("srtp must be true or false")
    srtp_key = _srtp_key(doc.get("srtp_key"))
    if srtp_key is not None and not srtp:
        raise AttachError("srtp_key given with srtp false")
    params = RtpParams(payload_type=payload_type, srtp=srtp, srtp_key=srtp_key)
    return AttachRequest(role=role, params=params)


def _srtp_key(text: object) -> bytes | None:
    """The sender's own key, if it sent one: standard base64 of exactly 30 bytes."""
    if text is None:
        return None
    key = None
    if isinstance(text, str) and text.isascii():
        with contextlib.suppress(binascii.Error):
            key = base64.b64decode(text, validate=True)
    if key is None or len(key) != SRTP_KEY_BYTES:
        raise AttachError(f"srtp_key must be base64 of {SRTP_KEY_BYTES} bytes (key and salt)")
    return key


def attachment_json(rtp_id: str, attachment: RtpAttachment) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": rtp_id, "host": attachment.host, "port": attachment.port}
    if attachment.srtp_key is not None:
        doc["srtp_suite"] = attachment.srtp_suite
        doc["srtp_key"] = attachment.srtp_key_base64
    return doc


async def attach_rtp(
    app: web.Application,
    session_id: str,
    role: Role,
    params: RtpParams,
    lease: PortLease | None = None,
) -> tuple[Leg, RtpAttachment]:
    """A plain-RTP leg for (session, role) on a port of the pool: the first attach of a
    session creates it, one for a live role replaces that role's leg (a reconnect).

    Raises PortsExhausted or CapacityError with nothing left allocated (`lease`, a port the
    caller took first, is given back too). An SFU attach (a Janus forwarder) calls this with
    the port it has already told the SFU, then feeds RTT through `RtpSource.report_rtt`.
    """
    if lease is None:
        lease = app[rtp_ports_key].acquire()
    settings = app[settings_key]
    metrics = app[rtp_metrics_key]
    try:
        return await app[sessions_key].add_leg(
            session_id,
            role,
            lambda feed: RtpSource(
                feed, lease=lease, params=params, settings=settings, ignored=metrics
            ),
        )
    except BaseException:
        lease.release()  # idempotent: a source that started has already given it back
        raise


def _role(claims: Claims, asked: Role | None) -> Role:
    if claims.scope == "publish":
        if asked is not None and asked != claims.role:
            raise web.HTTPForbidden(text="token is for another role\n")
        if claims.role is None:
            raise web.HTTPForbidden(text="publish token without a role\n")
        return claims.role
    if asked is None:
        raise bad_request("role is required with an admin token")
    return asked


async def post_attach(request: web.Request) -> web.StreamResponse:
    settings = request.app[settings_key]
    sessions = request.app[sessions_key]
    session_id = request.match_info["session_id"]
    claims = authenticate(request, settings.secret)
    require(claims, scopes=("admin", "publish"), session=session_id)
    if not sessions.accepting:
        raise unavailable("shutting down", settings.retry_after_seconds)
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="Content-Type must be application/json\n")
    body = await read_body(request, MAX_BODY_BYTES, "body")
    try:
        asked = parse_attach(body)
    except AttachError as exc:
        raise bad_request(str(exc)) from None
    role = _role(claims, asked.role)
    if len(session_id) > MAX_SESSION_ID_CHARS:  # an admin token names any session
        raise bad_request(f"session ids are 1–{MAX_SESSION_ID_CHARS} characters")
    refuse_new_session(request.app, session_id)
    try:
        leg, attachment = await attach_rtp(request.app, session_id, role, asked.params)
    except PortsExhausted as exc:
        log.warning("plain-RTP attach refused: %s", exc)
        reason = "no free plain-RTP port, try again later"
        raise unavailable(reason, settings.retry_after_seconds) from None
    except CapacityError:
        reason = "at capacity, try again later" if sessions.accepting else "shutting down"
        raise unavailable(reason, settings.retry_after_seconds) from None
    # quote(safe=""): a session id may hold "/" (sent as %2F), which url_for leaves as is.
    location = f"/v1/sessions/{quote(session_id, safe='')}/rtp/{leg.resource_id}"
    return web.json_response(
        attachment_json(leg.resource_id, attachment), status=201, headers={"Location": location}
    )


async def delete_attach(request: web.Request) -> web.StreamResponse:
    settings = request.app[settings_key]
    sessions = request.app[sessions_key]
    session_id = request.match_info["session_id"]
    claims = authenticate(request, settings.secret)
    require(claims, scopes=("admin", "publish"), session=session_id)
    rtp_id = request.match_info["rtp_id"]
    leg = sessions.legs_by_resource.get(rtp_id)
    if leg is None or leg.session_id != session_id or leg.kind != RtpSource.kind:
        raise web.HTTPNotFound(text="no such plain-RTP leg (or it ended)\n")
    if claims.scope == "publish" and claims.role != leg.role:
        raise web.HTTPForbidden(text="token is for another role\n")
    await sessions.delete_leg(rtp_id)
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    settings = app[settings_key]
    pool = PortPool(settings.rtp_host, *settings.rtp_ports)
    app[rtp_ports_key] = pool
    app[rtp_metrics_key] = RtpIngestMetrics(app[metrics_key].registry, pool)
    app.router.add_post("/v1/sessions/{session_id}/rtp", post_attach)
    app.router.add_delete("/v1/sessions/{session_id}/rtp/{rtp_id}", delete_attach)
