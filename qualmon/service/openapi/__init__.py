"""qualmon's HTTP API as an OpenAPI 3.1 document, built from the code's own constants."""

from __future__ import annotations

from typing import Any

from ... import __version__
from ...config import Settings
from ...reports.html import CONTENT_SECURITY_POLICY as REPORT_CSP
from ..events import WIDGET_CSP
from ..relay import RELAYED_ROUTES
from .admin import admin_paths
from .common import RESPONSES, SECURITY_SCHEMES, relayed
from .ingest import probe_paths, whip_paths
from .janus import EVENTS_SECURITY, JANUS_SCHEMAS, janus_paths
from .reads import ops_paths, report_paths, session_paths, stream_paths
from .rtp import RTP_SCHEMAS, rtp_paths
from .samples import STATS_SAMPLE
from .schemas import SCHEMAS
from .video import VIDEO_SCHEMAS

OPENAPI_VERSION = "3.1.0"
DESCRIPTION = """\
A session-quality monitor for online therapy: a receive-only WebRTC peer (WHIP, RFC 9725),
or a UDP port an SFU forwards a participant's RTP to, that measures each participant's
round-trip time, loss, jitter, dropouts, estimated MOS and talk turns, warns live, and keeps
a report of each session.

**Tokens.** JWT HS256 (`qualmon token`). Missing, invalid or expired → 401; a valid token of
another scope, session or role → 403; an unknown session → 404, checked after the token so a
token cannot probe for other sessions. GET endpoints that a browser opens directly also take
the token as `?token=`.

**Errors.** Every 4xx answer is `text/plain`: a short reason (one line where qualmon writes
it). A bug answers 500 with `{"error": "internal error"}`. The 503 of WHIP, of plain-RTP
attaches and of the stats ingest, and 429, say when to come back in `Retry-After` (seconds).

**Clusters.** Any instance answers any request: one for a session another instance owns is
relayed to that owner and its answer (streams included) passed back unchanged. When the owner
cannot be reached, the relaying instance answers 503 with `Retry-After`.
"""
TAGS = [
    {"name": "WHIP ingest", "description": "Publish each participant's audio (RFC 9725)."},
    {
        "name": "Plain-RTP ingest",
        "description": "Take a participant's audio from an SFU or gateway as RTP or SRTP "
        "(any sender, or a Janus VideoRoom that qualmon drives).",
    },
    {"name": "Sessions", "description": "Live numbers per session and role."},
    {"name": "Live warnings", "description": "Server-Sent Events, WebSocket and the widget."},
    {"name": "Probes", "description": "What participants hear, from their own clients."},
    {"name": "Reports", "description": "Stored sessions, for review afterwards."},
    {"name": "Operations", "description": "Metrics, health and this contract."},
]


def build_document(settings: Settings) -> dict[str, Any]:
    """The contract of a service run with `settings` (limits such as the offer size)."""
    paths = {
        **whip_paths(settings),
        **rtp_paths(),
        **janus_paths(),
        **session_paths(),
        **stream_paths(WIDGET_CSP),
        **probe_paths(settings),
        **report_paths(REPORT_CSP),
        **ops_paths(),
        **admin_paths(),
    }
    for method, path in RELAYED_ROUTES:
        relayed(paths[path][method.lower()])
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "qualmon",
            "version": __version__,
            "summary": "Call-quality monitor for online therapy over WebRTC.",
            "description": DESCRIPTION,
            "license": {"name": "Proprietary"},
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "tags": TAGS,
        "paths": paths,
        "components": {
            "schemas": {
                **SCHEMAS,
                **RTP_SCHEMAS,
                **JANUS_SCHEMAS,
                **VIDEO_SCHEMAS,
                "StatsSample": STATS_SAMPLE,
            },
            "responses": RESPONSES,
            "securitySchemes": {**SECURITY_SCHEMES, "janusEvents": EVENTS_SECURITY},
        },
    }
