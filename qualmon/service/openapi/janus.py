"""The contract of the Janus integration: attach a VideoRoom publisher, take Janus' events."""

from __future__ import annotations

from ...media.rtp_source import SRTP_SUITE
from .. import janus_attach, janus_events
from ..auth import MAX_SESSION_ID_CHARS
from .common import (
    RETRY_AFTER,
    SESSION_ID,
    Operation,
    answer,
    header,
    json_body,
    operation,
    reason,
    security,
)
from .schemas import COUNT, RATIO, ROLE_NAMES, SECONDS, Schema, closed, described, maybe, ref

EXAMPLE_JANUS_ATTACH = {
    "room": 1234,
    "publisher_id": 5551,
    "role": "client",
    "room_secret": "the room's secret",
}
JANUS_ID: Schema = {
    "type": "integer",
    "minimum": 1,
    "maximum": janus_attach.MAX_JANUS_ID,
}
QUALITY: Schema = {"type": "integer", "minimum": 0, "maximum": 100}

JANUS_SCHEMAS: dict[str, Schema] = {
    "JanusAttachRequest": {
        "type": "object",
        "properties": {
            "room": described(JANUS_ID, "The VideoRoom's id."),
            "publisher_id": described(JANUS_ID, "The participant's publisher id in the room."),
            "role": described({"enum": ROLE_NAMES}, "Whose audio this is."),
            "room_secret": described(
                {"type": "string", "minLength": 1, "maxLength": janus_attach.MAX_SECRET_CHARS},
                "The room's `secret`, which `rtp_forward` needs where the room has one.",
            ),
            "srtp": described(
                {"type": "boolean", "default": True},
                f"Janus forwards with SRTP ({SRTP_SUITE}, a fresh key per leg); false: plain "
                "RTP, for a Janus on a trusted network.",
            ),
        },
        "required": ["room", "publisher_id", "role"],
        "additionalProperties": False,
    },
    "JanusAttachment": closed(
        {
            "id": described(
                {"type": "string", "minLength": 1}, "The attachment's id (192 random bits)."
            ),
            "role": {"enum": ROLE_NAMES},
            "room": JANUS_ID,
            "publisher_id": JANUS_ID,
            "host": described({"type": "string"}, "Where Janus forwards to (QUALMON_RTP_HOST)."),
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "srtp_suite": {"const": SRTP_SUITE},
        },
        optional=("srtp_suite",),
    ),
    "Sfu": closed(
        {
            "packets_received": maybe(COUNT),
            "packets_lost": described(
                maybe(COUNT), "Missing from what the participant sent to the SFU."
            ),
            "loss_ratio": maybe(RATIO),
            "link_quality": described(maybe(QUALITY), "Janus `in-link-quality`, 0..100."),
            "media_link_quality": described(
                maybe(QUALITY), "Janus `in-media-link-quality`, 0..100."
            ),
            "jitter_seconds": maybe(SECONDS),
            "rtt_seconds": described(
                maybe(SECONDS), "Janus' RTT to the participant, from its subscriber connections."
            ),
        }
    ),
}

JANUS_ATTACH_ID: Schema = {
    "name": "janus_id",
    "in": "path",
    "required": True,
    "description": "The `id` an attach returned.",
    "schema": {"type": "string", "minLength": 1},
}
OFF = "Janus attach is off (QUALMON_JANUS_URL is not set)"


def janus_paths() -> dict[str, dict[str, Operation]]:
    post = operation(
        operation_id="janusAttach",
        tag="Plain-RTP ingest",
        summary="Take a Janus VideoRoom publisher's audio (qualmon calls rtp_forward)",
        description="qualmon opens a plain-RTP port, asks Janus (QUALMON_JANUS_URL) to "
        "`rtp_forward` the publisher's audio there with SRTP and a fresh key (with "
        "QUALMON_JANUS_ADMIN_KEY where the VideoRoom locks rtp_forward), and measures it as "
        "a plain-RTP leg; RTT and the client→Janus loss come from Janus' events. qualmon never "
        "joins the room. When the publisher publishes again, a new forwarder feeds a new leg "
        "of the role (a reconnect); the forwarder stops when the leg ends.",
        auth=security("admin"),
        parameters=[SESSION_ID],
        body={
            "required": True,
            "content": json_body(ref("JanusAttachRequest"), EXAMPLE_JANUS_ATTACH),
        },
        responses={
            "201": answer(
                "Forwarding.",
                json_body(ref("JanusAttachment")),
                {
                    "Location": header(
                        "The attachment, `/v1/sessions/{session_id}/janus/{id}`, for DELETE.",
                        {"type": "string", "pattern": "^/v1/sessions/[^/]+/janus/[^/]+$"},
                    )
                },
            ),
            "400": reason(
                "Not JSON, not an object, a field given twice, an unknown field, a field out "
                f"of range, or a session id over {MAX_SESSION_ID_CHARS} characters."
            ),
            "409": reason("That publisher is attached already; DELETE that attachment first."),
            "413": reason(f"Body over {janus_attach.MAX_BODY_BYTES} bytes."),
            "415": reason("Content-Type is not application/json."),
            "404": reason(f"{OFF}."),
            "502": reason(
                "Janus refused (no such room or publisher, wrong secret or admin key) or could "
                "not be reached; Janus' reason follows `Janus:`. Nothing was allocated."
            ),
            "503": reason(
                "Shutting down, draining (a session not live here), at the leg cap or no free "
                "port; nothing was allocated.",
                {"Retry-After": RETRY_AFTER},
            ),
        },
    )
    delete = operation(
        operation_id="janusDetach",
        tag="Plain-RTP ingest",
        summary="Stop a Janus forwarder and end its leg",
        description="Janus stops forwarding; the leg ends as `closed` and its port is free.",
        auth=security("admin"),
        parameters=[SESSION_ID, JANUS_ATTACH_ID],
        responses={
            "204": answer("Stopped."),
            "404": reason(
                f"No such attachment in this session (or it ended), or {OFF[0].lower()}{OFF[1:]}."
            ),
        },
    )
    events = operation(
        operation_id="janusEvents",
        tag="Plain-RTP ingest",
        summary="Janus event handler posts (sample event handler, grouped or single)",
        description="Point Janus' sample event handler's `backend` here, with `backend_user` "
        "(any) and `backend_pwd` = QUALMON_JANUS_EVENTS_SECRET. VideoRoom events map Janus "
        "handles to participants (remembered from the start, bounded and expiring); media "
        "statistics of attached participants feed their legs: RTT from their subscriber "
        "connections, the client→Janus loss and link quality as `legs.<role>.sfu`. Events "
        "that are unknown or malformed are counted (`qualmon_janus_events_total`) and "
        "skipped.",
        auth=[{"janusEvents": []}],
        body={
            "required": True,
            "content": json_body(
                {"anyOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]}
            ),
        },
        responses={
            "204": answer("Taken (whatever of it qualmon could use)."),
            "400": reason("Not JSON, or neither an event nor an array of events."),
            "401": reason(
                "No basic auth, a wrong password, or QUALMON_JANUS_EVENTS_SECRET is not set.",
                {
                    "WWW-Authenticate": header(
                        "How to authenticate.",
                        {"const": janus_events.CHALLENGE["WWW-Authenticate"]},
                    )
                },
            ),
            "413": reason(f"Body over {janus_events.MAX_BODY_BYTES} bytes."),
        },
    )
    return {
        "/v1/sessions/{session_id}/janus": {"post": post},
        "/v1/sessions/{session_id}/janus/{janus_id}": {"delete": delete},
        "/v1/integrations/janus/events": {"post": events},
    }


EVENTS_SECURITY: Schema = {
    "type": "http",
    "scheme": "basic",
    "description": "Janus' event handler: any user name, password QUALMON_JANUS_EVENTS_SECRET.",
}
