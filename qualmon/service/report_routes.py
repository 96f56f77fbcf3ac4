"""Report routes and the store's life in the app: open, mark leftovers, purge, save on exit."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from typing import Any, TypeVar

from aiohttp import web

from ..config import ConfigError
from ..core.instants import iso, parse_instant
from ..l10n.localizer import Localizer
from ..reports.async_store import AsyncReportStore
from ..reports.document import report_json
from ..reports.faults import STORE_ERRORS, StoreUnavailable, describe
from ..reports.html import CONTENT_SECURITY_POLICY, render_report_html
from ..reports.model import SessionReport
from ..reports.pending import pending_bound
from ..reports.recorder import ReportRecorder
from ..reports.resume import resume_lookup
from ..reports.sql_store import BaseReportStore
from ..reports.warning_log import WarningTimeline
from .auth import authenticate, authorize_session, require
from .http import bad_request, unavailable
from .keys import (
    instance_id_key,
    metrics_key,
    recorder_key,
    sessions_key,
    settings_key,
    store_key,
    timeline_key,
    warnings_key,
)
from .language import language_headers, request_localizer
from .metrics import register_store_collector
from .paging import PageError, parse_limit
from .views import session_json

log = logging.getLogger(__name__)

T = TypeVar("T")

PURGE_EVERY_SECONDS = 3600.0
SHUTDOWN_SAVE_SECONDS = 7.0
"Budget for final saves on SIGTERM; the process must be gone within 10 s."
PRIVATE_HEADERS = {
    # Reports are health data and the URL may carry a token: no caching, no referrer.
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


async def _report_for(
    request: web.Request,
) -> tuple[SessionReport, dict[str, Any] | None, Localizer]:
    """The stored report of the path's session (authorised first), its live JSON, and the
    reader's language."""
    session_id = authorize_session(request, request.app[settings_key].secret)
    loc = request_localizer(request)
    registry = request.app[sessions_key]
    session = registry.sessions.get(session_id)
    recorder = request.app[recorder_key]
    live = None
    started_at = None
    if session is not None:
        await recorder.checkpoint_now(session)
        started_at = session.started_at
        if session.live:
            live = session_json(
                session.snapshot(time.monotonic()), instance=request.app[instance_id_key], loc=loc
            )
    else:
        ended = registry.ended.get(session_id)
        started_at = ended.snapshot.started_at if ended is not None else None
        await recorder.settle(session_id, started_at)
    store = request.app[store_key]
    if store.held_back(session_id):
        raise _not_saved_yet(store)
    report = await _read(store, lambda s: s.load(session_id, started_at))
    if report is None:
        raise web.HTTPNotFound(text="no report for this session\n")
    return report, live, loc


def _not_saved_yet(store: AsyncReportStore) -> web.HTTPServiceUnavailable:
    """503: a report this answer needs still waits in memory for the store."""
    reason = store.health().reason or "busy"
    return unavailable(
        f"report not saved yet: report store not writable ({reason})",
        store.retry_after_seconds(),
    )


async def _read(store: AsyncReportStore, work: Callable[[BaseReportStore], T]) -> T:
    """A read of the store, or 503 + Retry-After when it cannot be read."""
    try:
        return await store.run(work)
    except StoreUnavailable as exc:
        raise unavailable(
            f"report store cannot be read ({exc.reason})", store.retry_after_seconds()
        ) from None


async def get_report(request: web.Request) -> web.Response:
    report, live, loc = await _report_for(request)
    doc = report_json(report, loc)
    if live is not None:
        doc["live"] = live
    return web.json_response(doc, headers={**PRIVATE_HEADERS, **language_headers(loc)})


async def get_report_html(request: web.Request) -> web.Response:
    report, _, loc = await _report_for(request)
    return web.Response(
        text=render_report_html(report, loc),
        content_type="text/html",
        charset="utf-8",
        headers={
            **PRIVATE_HEADERS,
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            **language_headers(loc),
        },
    )


def _query_instant(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_instant(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an ISO 8601 date or date-time\n") from None


async def list_reports(request: web.Request) -> web.Response:
    claims = authenticate(request, request.app[settings_key].secret, allow_query=True)
    require(claims, scopes=("admin",))
    since = _query_instant(request, "since")
    until = _query_instant(request, "until")
    if since is not None and until is not None and since > until:
        raise web.HTTPBadRequest(text="since must not be after until\n")
    try:
        limit = parse_limit(request.query.get("limit"))
    except PageError as exc:
        raise bad_request(str(exc)) from None
    await request.app[recorder_key].flush()
    store = request.app[store_key]
    if store.held_back_between(since, until):
        raise _not_saved_yet(store)
    rows = await _read(store, lambda s: s.list_reports(since=since, until=until, limit=limit))
    reports = []
    for row in rows:
        doc = asdict(row)
        doc.update(
            id=doc.pop("session_id"),
            roles=list(row.roles),
            started_at=iso(row.started_at),
            ended_at=iso(row.ended_at),
            checkpoint_at=iso(row.checkpoint_at),
            duration_seconds=round((row.ended_at or row.checkpoint_at) - row.started_at, 3),
        )
        reports.append(doc)
    return web.json_response({"reports": reports}, headers=PRIVATE_HEADERS)


async def _purge_periodically(store: AsyncReportStore, retention_days: float) -> None:
    while True:
        before = time.time() - retention_days * 86400
        with contextlib.suppress(StoreUnavailable):  # counted and logged by the store
            removed = await store.run(functools.partial(_purge, before=before), op="purge")
            if removed:
                log.info("purged %d reports older than %g days", removed, retention_days)
        await asyncio.sleep(PURGE_EVERY_SECONDS)


def _purge(store: BaseReportStore, *, before: float) -> int:
    return store.purge(before)


async def _store_context(app: web.Application) -> AsyncIterator[None]:
    store = app[store_key]
    try:
        await store.open()
    except STORE_ERRORS as exc:
        # The label, not the path: a PostgreSQL URL holds a password.
        raise ConfigError(
            f"cannot open the report store {store.label!r} (QUALMON_DB): {describe(exc)}"
        ) from None
    purger = asyncio.create_task(
        _purge_periodically(store, app[settings_key].retention_days), name="qualmon-purge"
    )
    yield
    purger.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await purger
    # Normally on_shutdown saved everything already; this covers an app torn down without it.
    await app[recorder_key].drain(SHUTDOWN_SAVE_SECONDS)
    await store.close()


async def _save_on_shutdown(app: web.Application) -> None:
    """Runs after the legs were closed: wait for the final reports to be written."""
    started = time.monotonic()
    await app[recorder_key].drain(SHUTDOWN_SAVE_SECONDS)
    health = app[store_key].health()
    waiting = sum(health.pending.values())
    if waiting:
        log.warning(
            "session reports handed over in %.2fs; %d wait for the report store (%s)",
            time.monotonic() - started,
            waiting,
            health.reason,
        )
    else:
        log.info("session reports saved in %.2fs", time.monotonic() - started)


def _record_warnings(app: web.Application, store: AsyncReportStore) -> None:
    runtime = app.get(warnings_key)
    if runtime is None:
        return
    sessions = app[sessions_key]
    timeline = WarningTimeline(sessions, store)
    app[timeline_key] = timeline
    runtime.add_observer(timeline)
    sessions.add_observer(timeline)


def setup(app: web.Application) -> None:
    """Call last in create_app: the shutdown hook must follow the one that closes legs."""
    settings = app[settings_key]
    store = AsyncReportStore(
        settings.db_path,
        max_pending=pending_bound(settings.max_legs),
        instance_id=app[instance_id_key],
    )
    recorder = ReportRecorder(
        store,
        observer=app[metrics_key],
        checkpoint_seconds=settings.report_checkpoint_seconds,
        leg_close_timeout_seconds=settings.close_timeout_seconds + 1.0,
    )
    sessions = app[sessions_key]
    sessions.add_observer(recorder)
    # A session cut off on another instance (killed, or drained past its deadline) goes on
    # here: its participants reconnect within their lost-leg time, plus the checkpoint's age.
    sessions.resume_from = resume_lookup(
        store,
        window_seconds=settings.lost_after_seconds + settings.report_checkpoint_seconds,
        wall_clock=time.time,
    )
    app[store_key] = store
    app[recorder_key] = recorder
    register_store_collector(app[metrics_key], store)
    _record_warnings(app, store)
    app.router.add_get("/v1/sessions/{session_id}/report", get_report)
    app.router.add_get("/v1/sessions/{session_id}/report.html", get_report_html)
    app.router.add_get("/v1/reports", list_reports)
    # First in, last out: the store is open before the session ticker runs and closes
    # after it has stopped.
    app.cleanup_ctx.insert(0, _store_context)
    app.on_shutdown.append(_save_on_shutdown)
