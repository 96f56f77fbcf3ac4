"""The contract of what goes out: sessions, live warnings, the widget, reports, operations."""

from __future__ import annotations

from ..api import LIST_SCOPES
from ..paging import DEFAULT_LIMIT, MAX_LIMIT
from ..report_routes import PRIVATE_HEADERS
from .common import (
    BAD_LANG,
    HTML,
    LANG,
    RETRY_AFTER,
    SESSION_ID,
    TEXT,
    Operation,
    answer,
    header,
    json_body,
    operation,
    reason,
    security,
)
from .page import DOCS_CSP
from .schemas import SSE_EVENT, Schema, ref

READERS = security("admin", "watch", query=True)
"Admin, or a watch token for the path's session; header or `?token=`."
UNKNOWN_SESSION = reason(
    "No such session (checked after the token, so a token cannot probe for other sessions)."
)
NO_STORE = {
    name: header(f"Always `{value}`.", {"const": value}) for name, value in PRIVATE_HEADERS.items()
}


_LIMIT = {
    "name": "limit",
    "in": "query",
    "required": False,
    "description": "How many at most (ASCII digits).",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
}


def _page_headers(csp: str) -> dict[str, Schema]:
    return {"Content-Security-Policy": header("No external resources.", {"const": csp})}


def session_paths() -> dict[str, dict[str, Operation]]:
    return {
        "/v1/sessions": {
            "get": operation(
                operation_id="listSessions",
                tag="Sessions",
                summary="Live and recently ended sessions, a page at a time",
                description="Ended sessions stay listed for 10 minutes. Sorted by session id "
                "(code points), at most `limit` per page; `next` is the `cursor` of the page "
                "after (null on the last page): follow it until null to list every session "
                "once. A page may hold fewer than `limit` sessions before the end. In a "
                "cluster, by default the sessions of every live instance: each is asked for "
                "its own page concurrently (`scope=local`, the same `limit` and `cursor`) "
                "and the pages merged; an instance that does not answer within 5 s is left "
                "out and named in `partial`.",
                auth=security("admin", query=True),
                parameters=[
                    {
                        "name": "scope",
                        "in": "query",
                        "required": False,
                        "description": "`cluster`: every instance's sessions; `local`: only "
                        "those of the instance that answers.",
                        "schema": {"enum": list(LIST_SCOPES), "default": "cluster"},
                    },
                    _LIMIT,
                    {
                        "name": "cursor",
                        "in": "query",
                        "required": False,
                        "description": "`next` of the previous page (opaque); absent: the "
                        "first page.",
                        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]*$"},
                    },
                ],
                responses={
                    "200": answer(
                        "A page of sessions (one entry per session, its live one if any).",
                        json_body(
                            {
                                "type": "object",
                                "properties": {
                                    "sessions": {"type": "array", "items": ref("SessionListed")},
                                    "next": {
                                        "type": ["string", "null"],
                                        "description": "The `cursor` of the next page; null "
                                        "on the last page.",
                                    },
                                    "partial": {
                                        "type": "array",
                                        "items": {"type": "string"},
                                        "description": "With scope `cluster` (then always "
                                        "present): ids of the instances whose sessions are "
                                        "missing because they did not answer; empty when the "
                                        "list is complete.",
                                    },
                                },
                                "required": ["sessions", "next"],
                                "additionalProperties": False,
                            }
                        ),
                    ),
                    "400": reason(
                        "scope is neither `cluster` nor `local`, limit not an integer "
                        f"1..{MAX_LIMIT}, or cursor not one this API gave out."
                    ),
                },
            )
        },
        "/v1/sessions/{session_id}": {
            "get": operation(
                operation_id="getSession",
                tag="Sessions",
                summary="One session's live numbers and active warnings",
                description="Per role: network measures, speech, and what its probe heard; "
                "active warnings with the therapist's words in the reader's language.",
                auth=READERS,
                parameters=[SESSION_ID, LANG],
                responses={
                    "200": answer("The session.", json_body(ref("Session"))),
                    "400": reason(BAD_LANG),
                    "404": UNKNOWN_SESSION,
                },
            )
        },
    }


def stream_paths(widget_csp: str) -> dict[str, dict[str, Operation]]:
    events = operation(
        operation_id="sessionEvents",
        tag="Live warnings",
        summary="Live warnings as Server-Sent Events",
        description="First a `snapshot` with the active warnings, then `event: raised` / "
        "`cleared` (data: a Warning), `snapshot` every 3 s (data: a Pulse), `heartbeat` "
        "every 5 s when quiet (data: `{}`), `restart` when the service shuts down (data: "
        '`{"retry_after_seconds": …}`). Each `data:` line is one JSON object '
        "(StreamMessage's `data`). The stream ends after `restart`, or when the service "
        "forgets the session (10 minutes after it ended); for a session that is already over, "
        "it is its last `snapshot` and the end.",
        auth=READERS,
        parameters=[SESSION_ID, LANG],
        responses={
            "400": reason(BAD_LANG),
            "200": answer(
                "An endless event stream.",
                {"text/event-stream": {"schema": SSE_EVENT}},
                {"Cache-Control": header("Always `no-cache`.", {"const": "no-cache"})},
            ),
            "404": UNKNOWN_SESSION,
        },
    )
    socket = operation(
        operation_id="sessionWebSocket",
        tag="Live warnings",
        summary="Live warnings over a WebSocket",
        description="A GET with `Connection: Upgrade`, `Upgrade: websocket` (RFC 6455). "
        "The server sends the same messages as the event stream, each a JSON text message "
        '`{"event": …, "data": …}` (StreamMessage); clients only listen. Token and '
        "session are checked before the upgrade, so refusals are plain HTTP answers.",
        auth=READERS,
        parameters=[
            {"name": "Upgrade", "in": "header", "required": True, "schema": {"const": "websocket"}},
            {"name": "Connection", "in": "header", "required": True, "schema": {"type": "string"}},
            {
                "name": "Sec-WebSocket-Key",
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
            },
            {
                "name": "Sec-WebSocket-Version",
                "in": "header",
                "required": True,
                "schema": {"const": "13"},
            },
            SESSION_ID,
            LANG,
        ],
        responses={
            "101": answer(
                "Switching to the WebSocket protocol; then text messages, each a "
                "StreamMessage (see the schema)."
            ),
            "400": reason("Not a WebSocket handshake, or " + BAD_LANG),
            "404": UNKNOWN_SESSION,
        },
    )
    widget = operation(
        operation_id="widget",
        tag="Live warnings",
        summary="The therapist widget, an embeddable page",
        description="Self-contained (no external assets, strict CSP), for an iframe: "
        "connection state, current warnings in the therapist's words, a stale notice; in the "
        "reader's language (`lang`, the token's `locale` claim, Accept-Language, QUALMON_LOCALE).",
        auth=security("watch", "admin", query=True),
        parameters=[
            {
                "name": "session",
                "in": "query",
                "required": False,
                "description": "The session to watch; needed with an admin token, ignored "
                "with a watch token (its own session).",
                "schema": {"type": "string"},
            },
            LANG,
        ],
        responses={
            "200": answer(
                "The page.",
                HTML,
                {**_page_headers(widget_csp), "Cache-Control": NO_STORE["Cache-Control"]},
            ),
            "400": reason("An admin token without `?session=`, or " + BAD_LANG),
        },
    )
    return {
        "/v1/sessions/{session_id}/events": {"get": events},
        "/v1/sessions/{session_id}/ws": {"get": socket},
        "/widget": {"get": widget},
    }


def report_paths(report_csp: str) -> dict[str, dict[str, Operation]]:
    no_report = reason("No report for this session (checked after the token).")
    store_busy = reason(
        "The report store cannot be read now, or a report this answer needs still waits in "
        "memory to be saved.",
        {"Retry-After": RETRY_AFTER},
    )
    instant = {"type": "string", "description": "ISO 8601 date or date-time; UTC if no zone."}
    return {
        "/v1/sessions/{session_id}/report": {
            "get": operation(
                operation_id="getReport",
                tag="Reports",
                summary="A session's stored report",
                description="The newest report of that id; for a live session a fresh "
                "checkpoint plus `live`, the session JSON.",
                auth=READERS,
                parameters=[SESSION_ID, LANG],
                responses={
                    "200": answer("The report.", json_body(ref("Report")), NO_STORE),
                    "400": reason(BAD_LANG),
                    "404": no_report,
                    "503": store_busy,
                },
            )
        },
        "/v1/sessions/{session_id}/report.html": {
            "get": operation(
                operation_id="getReportHtml",
                tag="Reports",
                summary="A session's report as a page",
                description="Self-contained (no external assets, strict CSP): clinician "
                "summary, SVG timeline, tables.",
                auth=READERS,
                parameters=[SESSION_ID, LANG],
                responses={
                    "200": answer("The page.", HTML, {**NO_STORE, **_page_headers(report_csp)}),
                    "400": reason(BAD_LANG),
                    "404": no_report,
                    "503": store_busy,
                },
            )
        },
        "/v1/reports": {
            "get": operation(
                operation_id="listReports",
                tag="Reports",
                summary="Stored reports, newest first",
                description="Reports whose session started in [since, until).",
                auth=security("admin", query=True),
                parameters=[
                    {"name": "since", "in": "query", "required": False, "schema": instant},
                    {"name": "until", "in": "query", "required": False, "schema": instant},
                    _LIMIT,
                ],
                responses={
                    "200": answer("The reports.", json_body(ref("ReportList")), NO_STORE),
                    "400": reason(
                        "since or until not an ISO 8601 date, since after until, or limit "
                        f"not an integer 1..{MAX_LIMIT}."
                    ),
                    "503": store_busy,
                },
            )
        },
    }


def ops_paths() -> dict[str, dict[str, Operation]]:
    def public(operation_id: str, summary: str, description: str, responses: Schema) -> Operation:
        return operation(
            operation_id=operation_id,
            tag="Operations",
            summary=summary,
            description=description,
            responses=responses,
        )

    return {
        "/metrics": {
            "get": public(
                "metrics",
                "Prometheus exposition",
                "Bounded labels only: no session, participant or resource id.",
                {"200": answer("Metrics in the Prometheus text format.", TEXT)},
            )
        },
        "/healthz": {
            "get": public(
                "healthz",
                "Liveness",
                "Always cheap; for liveness probes (not /metrics).",
                {"200": answer("`ok`.", TEXT)},
            )
        },
        "/readyz": {
            "get": public(
                "readyz",
                "Readiness: whether to send new offers here",
                "For readiness probes and load balancers.",
                {
                    "200": answer(
                        "`ready`, or `degraded: <reason>` while the report store fails (media "
                        "is still taken).",
                        TEXT,
                    ),
                    "503": reason(
                        "`shutting down`, `draining` (see `POST /v1/admin/drain`), or "
                        "`at capacity` (the leg cap)."
                    ),
                },
            )
        },
        "/openapi.json": {
            "get": public(
                "openapi",
                "This contract",
                "OpenAPI 3.1, as JSON.",
                {"200": answer("The document.", json_body({"type": "object"}))},
            )
        },
        "/docs": {
            "get": public(
                "docs",
                "This contract as a page",
                "Rendered on the server; no scripts, no external assets.",
                {"200": answer("The page.", HTML, _page_headers(DOCS_CSP))},
            )
        },
    }
