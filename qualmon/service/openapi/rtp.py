"""The contract of plain-RTP ingest: attach a participant's audio sent by an SFU or gateway."""

from __future__ import annotations

from ...media.rtp_source import OPUS_CLOCK_RATE, SRTP_KEY_BYTES, SRTP_SUITE
from .. import rtp_routes
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
from .schemas import ROLE_NAMES, Schema, closed, described, ref

EXAMPLE_ATTACH = {
    "role": "client",
    "codec": "opus",
    "payload_type": 111,
    "clock_rate": OPUS_CLOCK_RATE,
    "srtp": True,
}
KEY_PATTERN = f"^[A-Za-z0-9+/]{{{(SRTP_KEY_BYTES + 2) // 3 * 4}}}$"
"Standard base64 of the key; 30 bytes need no padding."

RTP_SCHEMAS: dict[str, Schema] = {
    "RtpAttachRequest": {
        "type": "object",
        "properties": {
            "role": described(
                {"enum": ROLE_NAMES},
                "Whose audio this is. Required with an admin token; a publish token's own "
                "role is used otherwise (another role here is a 403).",
            ),
            "codec": described(
                {"type": "string", "default": "opus"}, "`opus`, in any case: the one codec."
            ),
            "payload_type": described(
                {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 127,
                    "not": {"type": "integer", "minimum": 64, "maximum": 95},
                },
                "The RTP payload type the sender uses; packets of any other are ignored. "
                "64..95 are refused: on a port carrying RTP and RTCP they read as RTCP "
                "(RFC 5761).",
            ),
            "clock_rate": described(
                {"const": OPUS_CLOCK_RATE, "default": OPUS_CLOCK_RATE},
                "Opus is clocked at 48 kHz on RTP (RFC 7587).",
            ),
            "srtp": described(
                {"type": "boolean", "default": True},
                f"SRTP ({SRTP_SUITE}); false: plain RTP.",
            ),
            "srtp_key": described(
                {"type": "string", "pattern": KEY_PATTERN},
                f"The sender's own SRTP key, base64 of {SRTP_KEY_BYTES} bytes, where the sender "
                "chooses it (a mediasoup PlainTransport's `srtpParameters.keyBase64`); without "
                "it qualmon makes a fresh one (Janus takes it as `srtp_crypto`). Only with SRTP.",
            ),
        },
        "required": ["payload_type"],
        "additionalProperties": False,
    },
    "RtpAttachment": closed(
        {
            "id": described(
                {"type": "string", "minLength": 1},
                "The leg's id (192 random bits, URL-safe base64), for DELETE.",
            ),
            "host": described({"type": "string"}, "Send to this address (QUALMON_RTP_HOST)."),
            "port": described(
                {"type": "integer", "minimum": 1, "maximum": 65535},
                "… and this UDP port, from QUALMON_RTP_PORTS.",
            ),
            "srtp_suite": {"const": SRTP_SUITE},
            "srtp_key": described(
                {"type": "string", "pattern": KEY_PATTERN},
                f"Base64 of {SRTP_KEY_BYTES} bytes: the 16-byte master key, then the "
                "14-byte master salt (Janus `srtp_crypto`); the sender's own if it gave one.",
            ),
        },
        optional=("srtp_suite", "srtp_key"),
    ),
}

RTP_ID: Schema = {
    "name": "rtp_id",
    "in": "path",
    "required": True,
    "description": "The `id` an attach returned.",
    "schema": {"type": "string", "minLength": 1},
}


def rtp_paths() -> dict[str, dict[str, Operation]]:
    post = operation(
        operation_id="rtpAttach",
        tag="Plain-RTP ingest",
        summary="Open a UDP port for a participant's audio as plain RTP or SRTP",
        description="For an SFU's forwarder or a gateway sending one participant's Opus "
        "audio (no ICE, no DTLS). The first attach of a session creates it; an attach for a "
        "live role replaces its leg and counts as a reconnect. The first sender whose packet "
        "is valid RTP of the payload type (and, with SRTP, authenticates) is latched; packets "
        "from other addresses, RTCP, other payload types and malformed or unauthenticated "
        "packets are counted (`qualmon_rtp_ignored_packets_total`) and dropped. No RTT is "
        "measured on this path. A leg without packets for 20 s ends and frees its port.",
        auth=security("admin", "publish"),
        parameters=[SESSION_ID],
        body={"required": True, "content": json_body(ref("RtpAttachRequest"), EXAMPLE_ATTACH)},
        responses={
            "201": answer(
                "Attached: where to send, and the SRTP key (only with SRTP).",
                json_body(ref("RtpAttachment")),
                {
                    "Location": header(
                        "The leg, `/v1/sessions/{session_id}/rtp/{id}`, for DELETE.",
                        {"type": "string", "pattern": "^/v1/sessions/[^/]+/rtp/[^/]+$"},
                    )
                },
            ),
            "400": reason(
                "Not JSON (NaN and Infinity included), not an object, a field given twice, "
                "an unknown field, a field out of range, no role with an admin token, or a "
                f"session id over {MAX_SESSION_ID_CHARS} characters."
            ),
            "413": reason(f"Body over {rtp_routes.MAX_BODY_BYTES} bytes."),
            "415": reason("Content-Type is not application/json."),
            "503": reason(
                "Shutting down, draining (a session not live here), at the leg cap "
                "(QUALMON_MAX_LEGS) or no free port in "
                "QUALMON_RTP_PORTS; nothing was allocated.",
                {"Retry-After": RETRY_AFTER},
            ),
        },
    )
    delete = operation(
        operation_id="rtpDetach",
        tag="Plain-RTP ingest",
        summary="End a plain-RTP leg and free its port",
        description="The leg ends as `closed`. Admin, or the publish token of the leg's "
        "session and role.",
        auth=security("admin", "publish"),
        parameters=[SESSION_ID, RTP_ID],
        responses={
            "204": answer("The leg ended; its port is free."),
            "404": reason("No such plain-RTP leg in this session (or it ended)."),
        },
    )
    return {
        "/v1/sessions/{session_id}/rtp": {"post": post},
        "/v1/sessions/{session_id}/rtp/{rtp_id}": {"delete": delete},
    }
