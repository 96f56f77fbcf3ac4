"""aiohttp application factory: state keys, background tasks, logging that keeps secrets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
import traceback
from collections.abc import AsyncIterator
from typing import Any, cast

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from ..cluster.identity import instance_id_of
from ..config import ConfigError, Settings, check_webhook
from ..l10n.catalogs import CatalogError, Catalogs, load_catalogs
from ..media.ice import host_addresses_while_running
from ..sessions.registry import SessionRegistry
from . import (
    api,
    cluster,
    contract,
    drain,
    events,
    janus_attach,
    janus_events,
    probe_ingest,
    relay,
    report_routes,
    rtp_routes,
    whip,
)
from .keys import (
    catalogs_key,
    instance_id_key,
    metrics_key,
    sessions_key,
    settings_key,
    therapist_locales_key,
    warnings_key,
    webhook_key,
)
from .language import remember_therapist_locale
from .memory_trim import trim_periodically
from .metrics import QualmonMetrics, register_live_collector
from .therapist_locales import TherapistLocales
from .video_metrics import VideoMetrics
from .webhook import WebhookSender

log = logging.getLogger(__name__)


_RTP_LEG_PATH = re.compile(r"(/v1/sessions/.+/(?:rtp|janus))/[^/]+")


def loggable_path(request: web.BaseRequest) -> str:
    """The request path as logs may show it: no query (tokens travel in `?token=`), and
    WHIP resource and plain-RTP leg ids masked (capabilities: whoever knows one and holds a
    token of its session may end the leg)."""
    path = request.rel_url.path
    if path.startswith("/whip/"):
        return "/whip/<resource>"
    rtp_leg = _RTP_LEG_PATH.fullmatch(path)
    if rtp_leg is None:
        return path
    return rtp_leg[1] + ("/<rtp_id>" if rtp_leg[1].endswith("/rtp") else "/<janus_id>")


class PrivateAccessLogger(AbstractAccessLogger):
    """Method, safe path, status, time; no client address."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        path = loggable_path(request)
        self.logger.info("%s %s %s %.1fms", request.method, path, response.status, time * 1000)


class _MalformedRequestFilter(logging.Filter):
    """aiohttp logs a request it cannot parse as ERROR "Error handling request from <client
    address>" with a traceback quoting the request line or header (`?token=…`, a bearer
    token). That is the client's mistake, told to it as a 400: keep one INFO line, the
    exception's type only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "Error handling request from %s":
            exc = record.exc_info[1] if record.exc_info else None
            record.msg, record.args = "malformed request refused (%s)", (type(exc).__name__,)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return True


_MALFORMED_REQUEST_FILTER = _MalformedRequestFilter()


def quiet_noisy_loggers() -> None:
    """aioice/aiortc log candidate addresses and SDP at INFO/DEBUG: keep them out of logs;
    aiohttp's server logs malformed requests with the client's address and token."""
    for name in ("aioice", "aiortc"):
        logging.getLogger(name).setLevel(logging.WARNING)
    server = logging.getLogger("aiohttp.server")
    if _MALFORMED_REQUEST_FILTER not in server.filters:
        server.addFilter(_MALFORMED_REQUEST_FILTER)


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Answer a bug with a plain 500; log it without client address, query or message."""
    try:
        return cast(web.StreamResponse, await handler(request))
    except web.HTTPException:
        raise
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:
        # The type and where, not the message: messages can quote SDP or peer addresses.
        log.error(
            "unhandled %s in %s %s\n%s",
            type(exc).__name__,
            request.method,
            loggable_path(request),
            "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
        )
        return web.json_response({"error": "internal error"}, status=500)


async def start_site(
    runner: web.AppRunner,
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
    setting: str = "--port or QUALMON_PORT",
) -> str | None:
    """Listen on host:port: None, or why not in one line (the runner is then cleaned up).

    A port in use is an operator's everyday mistake; it deserves a sentence, not a traceback.
    `reuse_port`: SO_REUSEPORT, so the workers of `serve --workers` share the port.
    """
    try:
        await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()
    except OSError as exc:
        await runner.cleanup()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        return f"cannot listen on {host}:{port} ({reason}); choose another with {setting}"
    return None


async def _measure_loop_lag(metrics: QualmonMetrics, interval: float = 0.1) -> None:
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(interval)
        metrics.loop_lag.observe(max(0.0, loop.time() - before - interval))


async def _background(app: web.Application) -> AsyncIterator[None]:
    sessions = app[sessions_key]
    tasks = [
        asyncio.create_task(sessions.run_ticker(), name="qualmon-ticker"),
        asyncio.create_task(_measure_loop_lag(app[metrics_key]), name="qualmon-loop-lag"),
    ]
    trim_seconds = app[settings_key].memory_trim_seconds
    if trim_seconds is not None:
        trimming = trim_periodically(trim_seconds, app[metrics_key].on_memory_trim)
        tasks.append(asyncio.create_task(trimming, name="qualmon-memory-trim"))
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _on_shutdown(app: web.Application) -> None:
    sessions = app[sessions_key]
    sessions.accepting = False
    started = time.monotonic()
    await sessions.close_all("shutdown")
    log.info("closed all legs in %.2fs", time.monotonic() - started)


async def _name_instance(request: web.Request, response: web.StreamResponse) -> None:
    # Which worker behind a shared port answered: for operators, tests and the relay.
    response.headers["Qualmon-Instance"] = request.app[instance_id_key]


def _catalogs(settings: Settings, catalogs: Catalogs | None) -> Catalogs:
    """The catalogs given, else the compiled ones; a missing one stops the start (exit 2)."""
    try:
        catalogs = catalogs or load_catalogs()
    except CatalogError as exc:
        raise ConfigError(str(exc)) from None
    if settings.locale not in catalogs:
        raise ConfigError(f"QUALMON_LOCALE={settings.locale} has no catalog")
    return catalogs


def create_app(
    settings: Settings, *, metrics: QualmonMetrics | None = None, catalogs: Catalogs | None = None
) -> web.Application:
    """Build the service; `metrics` lets tests inject a fresh registry, `catalogs` more
    locales (the tests' pseudo-locale)."""
    quiet_noisy_loggers()
    catalogs = _catalogs(settings, catalogs)
    metrics = metrics or QualmonMetrics()
    sessions = SessionRegistry(settings, observers=[metrics, VideoMetrics(metrics.registry)])
    register_live_collector(metrics, sessions, settings.max_legs)

    # Offers are capped by the WHIP handler with a clear 413; the app limit only stops abuse.
    app = web.Application(
        client_max_size=max(settings.max_offer_bytes, 1 << 16) * 4,
        # The locale middleware inside the relay's: it sees requests handled here only.
        middlewares=[_errors, relay.middleware, remember_therapist_locale],
    )
    app[settings_key] = settings
    app[catalogs_key] = catalogs
    app[therapist_locales_key] = TherapistLocales(catalogs, settings.locale)
    app[instance_id_key] = instance_id_of(settings)
    app[sessions_key] = sessions
    app[metrics_key] = metrics
    app.on_response_prepare.append(_name_instance)
    relay.setup(app)  # first: its client's pool opens before and closes after the others
    whip.setup(app)
    api.setup(app)
    events.setup(app)
    _setup_webhook(app)  # feeds on the warnings runtime that events.setup made
    probe_ingest.setup(app)
    rtp_routes.setup(app)
    janus_attach.setup(app)
    janus_events.setup(app)
    contract.setup(app)
    drain.setup(app)
    app.cleanup_ctx.append(_background)
    app.cleanup_ctx.append(host_addresses_while_running(settings.ice_addresses))
    app.on_shutdown.append(_on_shutdown)
    # Last: its shutdown hook saves reports after _on_shutdown has closed the legs.
    report_routes.setup(app)
    cluster.setup(app)  # after the store: it leaves the cluster before the store closes
    return app


async def _webhook_running(app: web.Application) -> AsyncIterator[None]:
    async with app[webhook_key]:
        yield


def _setup_webhook(app: web.Application) -> None:
    """Call after events.setup; does nothing unless QUALMON_WEBHOOK_URL is set."""
    settings = app[settings_key]
    if settings.webhook_url is None:
        return
    check_webhook(settings.webhook_url, settings.webhook_secret, settings.secret)
    sender = WebhookSender(
        settings.webhook_url,
        settings.webhook_secret or "",
        registry=app[metrics_key].registry,
        timeout_seconds=settings.webhook_timeout_seconds,
        localizer_for=app[therapist_locales_key].localizer_for,
    )
    app[webhook_key] = sender
    app[warnings_key].add_observer(sender)
    # First in, last out: the sender runs before the warnings ticks start and after they stop.
    app.cleanup_ctx.insert(0, _webhook_running)
