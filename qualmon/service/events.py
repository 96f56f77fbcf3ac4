"""Live warnings over Server-Sent Events and WebSocket, and the therapist widget."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from aiohttp import WSMsgType, web
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..core.warnings import DEFAULT_RULES, WarningEvent
from ..l10n.localizer import Localizer
from ..warnings.runtime import Pulse, StreamMessage, WarningObserver, WarningsRuntime
from .auth import authenticate, authorize_session, require
from .keys import metrics_key, sessions_key, settings_key, warnings_key
from .language import language_headers, request_localizer
from .views import stream_message
from .widget_page import render_widget

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
WIDGET_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:"
)
"Embeddable in a platform's page; no external resources at all."
KINDS = tuple(rule.kind for rule in DEFAULT_RULES)
"Every warning kind, so the active-warnings gauge shows zeros rather than gaps."


def _authorize(request: web.Request) -> str:
    session_id = authorize_session(request, request.app[settings_key].secret)
    registry = request.app[sessions_key]
    if session_id not in registry.sessions and session_id not in registry.ended:
        raise web.HTTPNotFound(text="unknown session\n")
    return session_id


@contextlib.asynccontextmanager
async def _subscription(
    request: web.Request, session_id: str
) -> AsyncIterator[asyncio.Queue[StreamMessage | None]]:
    runtime = request.app[warnings_key]
    registry = request.app[sessions_key]
    ended = registry.ended.get(session_id)
    if session_id not in registry.sessions and ended is not None:
        # Over and compacted: its last state, then the end of the stream.
        final: asyncio.Queue[StreamMessage | None] = asyncio.Queue()
        final.put_nowait(Pulse(ended.snapshot, runtime.active(session_id), time.time()))
        final.put_nowait(None)
        yield final
        return
    try:
        queue = runtime.subscribe(session_id)
    except KeyError:
        raise web.HTTPNotFound(text="unknown session\n") from None
    queue.put_nowait(runtime.pulse(registry.sessions[session_id], time.monotonic()))
    try:
        yield queue
    finally:
        runtime.unsubscribe(session_id, queue)


async def _messages(
    request: web.Request, queue: asyncio.Queue[StreamMessage | None], loc: Localizer
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs, the therapist's words in `loc`'s language, with a heartbeat
    whenever nothing happened for a while; ends on None."""
    talk_balance = request.app[warnings_key].talk_balance_enabled
    while True:
        try:
            message = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
        except TimeoutError:
            yield "heartbeat", {}
            continue
        if message is None:
            return
        event, data = stream_message(message, loc)
        if isinstance(message, Pulse):
            data["talk_balance_enabled"] = talk_balance
        yield event, data


async def sse(request: web.Request) -> web.StreamResponse:
    session_id = _authorize(request)
    loc = request_localizer(request)
    async with _subscription(request, session_id) as queue:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # proxies must not hold events back
                **language_headers(loc),
            }
        )
        await response.prepare(request)
        try:
            async for event, data in _messages(request, queue, loc):
                frame = f"event: {event}\ndata: {json.dumps(data)}\n\n"
                await response.write(frame.encode())
        except ConnectionResetError:
            pass  # the client went away; nothing to tell it
        return response


async def ws(request: web.Request) -> web.StreamResponse:
    session_id = _authorize(request)
    loc = request_localizer(request)
    # Subscribe before the upgrade, so a session gone meanwhile is a plain 404, not a 101.
    async with _subscription(request, session_id) as queue:
        socket = web.WebSocketResponse(heartbeat=15.0)
        socket.headers.update(language_headers(loc))
        await socket.prepare(request)

        async def drain_client() -> None:
            async for msg in socket:  # clients only listen; read to notice closes
                if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break

        reader = asyncio.create_task(drain_client())
        try:
            async for event, data in _messages(request, queue, loc):
                if socket.closed or reader.done():
                    break
                await socket.send_json({"event": event, "data": data})
        except ConnectionResetError:
            pass  # the client went away; nothing to tell it
        finally:
            reader.cancel()
            # wait(), not `await reader`: our own cancellation must still propagate.
            await asyncio.wait([reader])
            await socket.close()
    return socket


async def widget(request: web.Request) -> web.Response:
    claims = authenticate(request, request.app[settings_key].secret, allow_query=True)
    require(claims, scopes=("watch", "admin"))
    session_id = claims.session or request.query.get("session", "")
    if not session_id:
        raise web.HTTPBadRequest(text="an admin token needs ?session=ID\n")
    loc = request_localizer(request)
    return web.Response(
        text=render_widget(loc, session_id),
        content_type="text/html",
        headers={
            "Content-Security-Policy": WIDGET_CSP,
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            **language_headers(loc),
        },
    )


class ActiveWarningsCollector(Collector):
    def __init__(self, runtime: WarningsRuntime) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "qualmon_warnings_active", "Warnings raised and not yet cleared.", labels=["kind"]
        )
        counts = self._runtime.active_counts()
        for kind in KINDS:
            gauge.add_metric([kind], counts.get(kind, 0))
        yield gauge


class _CountRaised(WarningObserver):
    """qualmon_warnings_total{kind, severity}."""

    def __init__(self, total: Counter) -> None:
        self._total = total

    def on_warning(self, session_id: str, event: WarningEvent) -> None:
        if event.type == "raised":
            self._total.labels(kind=event.kind, severity=event.severity).inc()


async def _run(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[warnings_key].run(), name="qualmon-warnings")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _on_shutdown(app: web.Application) -> None:
    app[warnings_key].close_streams(restart=True)


def setup(app: web.Application) -> None:
    runtime = WarningsRuntime(app[sessions_key], rules=app[settings_key].warning_rules)
    app[warnings_key] = runtime
    registry = app[metrics_key].registry
    total = Counter(
        "qualmon_warnings",
        "Warnings raised, by kind and severity.",
        ["kind", "severity"],
        registry=registry,
    )
    runtime.add_observer(_CountRaised(total))
    registry.register(ActiveWarningsCollector(runtime))
    app.router.add_get("/v1/sessions/{session_id}/events", sse)
    app.router.add_get("/v1/sessions/{session_id}/ws", ws)
    app.router.add_get("/widget", widget)
    app.cleanup_ctx.append(_run)
    # Before legs close, so subscribers hear "restart" rather than a dead socket.
    app.on_shutdown.insert(0, _on_shutdown)
