"""The contract of what comes in: WHIP (RFC 9725), probe samples and the probe script."""

from __future__ import annotations

from ...config import Settings
from .. import probe_ingest, whip
from .common import (
    RETRY_AFTER,
    SESSION_ID,
    TEXT,
    Operation,
    answer,
    constant_headers,
    header,
    json_body,
    operation,
    reason,
    security,
)
from .schemas import Schema, ref

EXAMPLE_OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 4005011406 4005011406 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=sendonly",
        "a=mid:0",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=ice-ufrag:e19O",
        "a=ice-pwd:8FQPrusbpX0xR9FPcIO4CB",
        "a=fingerprint:sha-256 95:FB:BF:64:83:6E:DA:90:8F:59:16:98:3B:59:07:3E:"
        "F2:B7:43:E8:7C:47:F5:9D:C6:83:6E:C1:7C:17:E4:EF",
        "a=setup:actpass",
        "",
    ]
)
"A browser-like offer without candidates (they may follow by PATCH)."
EXAMPLE_FRAGMENT = (
    "a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\na=end-of-candidates\r\n"
)
EXAMPLE_SAMPLE = {
    "timestamp": 1764000000000,
    "stats": [
        {
            "type": "inbound-rtp",
            "kind": "audio",
            "id": "IT01A",
            "packetsReceived": 1000,
            "packetsLost": 3,
            "jitter": 0.004,
            "concealedSamples": 4800,
            "silentConcealedSamples": 960,
            "concealmentEvents": 3,
            "totalSamplesReceived": 960000,
            "jitterBufferDelay": 4800.0,
            "jitterBufferEmittedCount": 96000,
            "audioLevel": 0.1,
        },
        {"type": "remote-inbound-rtp", "kind": "audio", "id": "RI1", "roundTripTime": 0.08},
        {"type": "candidate-pair", "id": "CP1", "nominated": True, "currentRoundTripTime": 0.07},
    ],
}

WHIP_CORS = constant_headers(whip.CORS_HEADERS)
STATS_CORS = constant_headers(probe_ingest.CORS_HEADERS)
RESOURCE: Schema = {
    "name": "resource",
    "in": "path",
    "required": True,
    "description": "The WHIP resource id from `Location` (192 random bits, URL-safe base64).",
    "schema": {"type": "string", "minLength": 1},
}


def _text_body(media_type: str, description: str, example: str) -> Schema:
    return {
        "required": True,
        "description": description,
        "content": {media_type: {"schema": {"type": "string"}, "example": example}},
    }


def _with_cors(responses: dict[str, Schema], cors: dict[str, Schema]) -> dict[str, Schema]:
    """Every answer of a CORS route carries Access-Control-Allow-Origin, errors included."""
    origin = {"Access-Control-Allow-Origin": cors["Access-Control-Allow-Origin"]}
    return {
        status: {**doc, "headers": {**doc.get("headers", {}), **origin}}
        for status, doc in responses.items()
    }


def whip_paths(settings: Settings) -> dict[str, dict[str, Operation]]:
    too_large = f"Body over {settings.max_offer_bytes} bytes."
    unavailable = reason(
        "Shutting down, draining (a session not live here; another instance takes it), or "
        "at the leg cap (QUALMON_MAX_LEGS); nothing was allocated.",
        {"Retry-After": RETRY_AFTER},
    )
    preflight = answer(
        "CORS preflight; any origin (bearer tokens, no cookies).",
        headers={
            "Accept-Post": header("Always `application/sdp`.", {"const": "application/sdp"}),
            **WHIP_CORS,
        },
    )
    post = operation(
        operation_id="whipPost",
        tag="WHIP ingest",
        summary="Publish a participant's audio: SDP offer in, SDP answer out",
        description="Session and role come from the publish token. A new offer for a live "
        "(session, role) replaces the old leg and counts as a reconnect. Offers are checked "
        "before aiortc parses them; remote candidates given as host names (mDNS `.local`) are "
        "dropped.",
        auth=security("publish"),
        body=_text_body("application/sdp", "An SDP offer with an audio section.", EXAMPLE_OFFER),
        responses=_with_cors(
            {
                "201": answer(
                    "The SDP answer (receive-only audio).",
                    {"application/sdp": {"schema": {"type": "string"}}},
                    {
                        "Location": header(
                            "The WHIP resource, `/whip/<resource>`, for PATCH and DELETE.",
                            {"type": "string", "pattern": "^/whip/[^/]+$"},
                        ),
                        "ETag": header("Entity tag of the answer.", {"type": "string"}),
                        "Accept-Patch": header(
                            f"Always `{whip.TRICKLE_TYPE}`.", {"const": whip.TRICKLE_TYPE}
                        ),
                        "Server-Timing": header(
                            "W3C Server Timing: the milliseconds this instance took to answer"
                            f" (`{whip.SERVER_TIMING_NAME};dur=3.52`).",
                            {
                                "type": "string",
                                "pattern": f"^{whip.SERVER_TIMING_NAME};dur=[0-9]+[.][0-9]+$",
                            },
                        ),
                        "Access-Control-Expose-Headers": WHIP_CORS["Access-Control-Expose-Headers"],
                    },
                ),
                "400": reason(
                    "Malformed SDP, not UTF-8, no audio section, no a=fingerprint, no ICE "
                    "credentials, a recvonly or inactive audio section, or refused by the "
                    "media stack."
                ),
                "413": reason(too_large),
                "415": reason("Content-Type is not application/sdp."),
                "503": unavailable,
            },
            WHIP_CORS,
        ),
    )
    patch = operation(
        operation_id="whipPatch",
        tag="WHIP ingest",
        summary="Trickle ICE candidates to a leg",
        description="A trickle-ICE SDP fragment (RFC 8840); its `a=candidate` lines are "
        "added, host-name candidates skipped. The publish token of the leg's session and role, "
        "or admin.",
        auth=security("publish", "admin"),
        parameters=[RESOURCE],
        body=_text_body(
            whip.TRICKLE_TYPE, "Candidate lines, optionally ICE credentials.", EXAMPLE_FRAGMENT
        ),
        responses=_with_cors(
            {
                "204": answer("Candidates added."),
                "400": reason("A malformed candidate line, or not UTF-8."),
                "404": reason("No such WHIP resource (or it ended)."),
                "413": reason(too_large),
                "415": reason(f"Content-Type is not {whip.TRICKLE_TYPE}."),
                "422": reason("New ICE credentials: an ICE restart, which is not supported."),
            },
            WHIP_CORS,
        ),
    )
    delete = operation(
        operation_id="whipDelete",
        tag="WHIP ingest",
        summary="End a leg",
        description="The leg ends as `closed`. The publish token of the leg's session and "
        "role, or admin.",
        auth=security("publish", "admin"),
        parameters=[RESOURCE],
        responses=_with_cors(
            {
                "200": answer("The leg ended.", TEXT),
                "404": reason("No such WHIP resource (or it ended)."),
            },
            WHIP_CORS,
        ),
    )
    return {
        "/whip": {
            "post": post,
            "options": operation(
                operation_id="whipOptions",
                tag="WHIP ingest",
                summary="CORS preflight of the WHIP endpoint",
                description="No token needed.",
                responses={"204": preflight},
            ),
        },
        "/whip/{resource}": {
            "patch": patch,
            "delete": delete,
            "options": operation(
                operation_id="whipResourceOptions",
                tag="WHIP ingest",
                summary="CORS preflight of a WHIP resource",
                description="No token needed.",
                parameters=[RESOURCE],
                responses={"204": preflight},
            ),
        },
    }


def probe_paths(settings: Settings) -> dict[str, dict[str, Operation]]:
    post = operation(
        operation_id="postStats",
        tag="Probes",
        summary="Post what a participant hears (a probe sample)",
        description="The publish token of this session: its role says whose ears these are. "
        "Counters are cumulative; the service computes the deltas. The first valid sample "
        "creates the session if needed. Nothing from a refused sample is stored.",
        auth=security("publish"),
        parameters=[SESSION_ID],
        body={"required": True, "content": json_body(ref("StatsSample"), EXAMPLE_SAMPLE)},
        responses=_with_cors(
            {
                "204": answer("Stored."),
                "400": reason(
                    "Not JSON (NaN and Infinity included), an unknown top-level field, a field "
                    "that is read of the wrong type or out of range, an RTP entry whose kind is "
                    "neither audio nor video, no inbound-rtp audio entry, timestamp not "
                    "increasing, or a cumulative counter of a stream going down (packetsLost "
                    "may)."
                ),
                "413": reason(f"Body over {probe_ingest.MAX_SAMPLE_BYTES} bytes."),
                "415": reason("Content-Type is not application/json."),
                "429": reason(
                    "Less than 0.5 s after the previous sample of this session and role.",
                    {"Retry-After": RETRY_AFTER},
                ),
                "503": reason("Shutting down.", {"Retry-After": RETRY_AFTER}),
            },
            STATS_CORS,
        ),
    )
    preflight = operation(
        operation_id="statsOptions",
        tag="Probes",
        summary="CORS preflight of the stats endpoint",
        description="No token needed; any origin may post.",
        parameters=[SESSION_ID],
        responses={"204": answer("Preflight answer.", headers=STATS_CORS)},
    )
    script = operation(
        operation_id="probeScript",
        tag="Probes",
        summary="The browser probe, probe.js",
        description="A dependency-free script: `QualmonProbe.attach(pc, {url, token})`.",
        responses={
            "200": answer(
                "The script.",
                {"text/javascript": {"schema": {"type": "string"}}},
                {
                    "Cache-Control": header(
                        "Cached for 5 minutes.", {"const": "public, max-age=300"}
                    )
                },
            )
        },
    )
    return {
        "/v1/sessions/{session_id}/stats": {"post": post, "options": preflight},
        "/probe.js": {"get": script},
    }
