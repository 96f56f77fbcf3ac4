"""`POST /v1/integrations/janus/events`: Janus' sample event handler posts here (basic auth,
any user name, password QUALMON_JANUS_EVENTS_SECRET; one event or a grouped array).

VideoRoom events are remembered for every room from the start (participants join before
anyone attaches them); media statistics of attached participants feed their legs: the RTT
Janus measures on a participant's subscriber connections (the only ones it measures RTT on)
through `RtpSource.report_rtt`, and what Janus saw of the participant's publisher connection
(loss, link quality) as `legs.<role>.sfu`. Janus does not retry a refused post and needs no
answer body, so bad events are counted and skipped: a post is never answered with a 5xx.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Literal

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from ..core.janus_events import EventsError, MediaStats, RoomEvent, parse_post
from ..core.janus_rooms import RoomDirectory
from ..core.sfu import SfuSnapshot
from ..sessions.registry import SessionRegistry
from . import janus_share
from .http import bad_request, read_body
from .janus_bridge import JanusAttachment, JanusBridge
from .janus_share import JanusShare
from .keys import janus_key, metrics_key, sessions_key, settings_key

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
"Janus groups what it queued since its last post; a second of a busy server fits."
Outcome = Literal["used", "ignored", "malformed"]
OUTCOMES: tuple[Outcome, ...] = ("used", "ignored", "malformed")
CHALLENGE = {"WWW-Authenticate": 'Basic realm="qualmon janus events"'}


def password_of(header: str | None) -> str | None:
    """The password of an HTTP basic `Authorization` header, or None."""
    if header is None or not header[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, colon, password = decoded.partition(":")
    return password if colon else None


class JanusEvents:
    """Applies event handler posts: remembers rooms, feeds attached legs, counts."""

    def __init__(
        self,
        *,
        sessions: SessionRegistry,
        bridge: JanusBridge | None,
        registry: CollectorRegistry,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._bridge = bridge
        self._clock = clock
        self.rooms = RoomDirectory()
        self._events = Counter(
            "qualmon_janus_events",
            "Janus event handler events received, by what became of them: used (a room"
            " event remembered or a statistic of an attached participant), ignored (kinds or"
            " participants qualmon does not follow), malformed.",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self._events.labels(outcome=outcome)
        self.counts: dict[Outcome, int] = dict.fromkeys(OUTCOMES, 0)

    def _count(self, outcome: Outcome, n: int = 1) -> None:
        if n:
            self.counts[outcome] += n
            self._events.labels(outcome=outcome).inc(n)

    def apply(self, body: bytes) -> None:
        """One post's events; EventsError (counted as one malformed) if it holds none."""
        try:
            parsed = parse_post(body)
        except EventsError:
            self._count("malformed")
            raise
        self._count("ignored", parsed.ignored)
        self._count("malformed", parsed.malformed)
        now = self._clock()
        for event in parsed.events:
            used = (
                self._on_room(event, now)
                if isinstance(event, RoomEvent)
                else self._on_media(event, now)
            )
            self._count("used" if used else "ignored")

    def _on_room(self, event: RoomEvent, now: float) -> bool:
        self.rooms.on_room_event(event, now)
        if event.kind == "published" and self._bridge is not None:
            if event.participant_id is not None:
                self._bridge.republish_soon(event.room, event.participant_id)
        return True

    def _on_media(self, stats: MediaStats, now: float) -> bool:
        feed = self.rooms.feed_of(stats, now)
        if feed is None or self._bridge is None:
            return False
        attached = self._bridge.by_feed.get((feed.room, feed.participant_id))
        if attached is None:
            return False
        if feed.connection == "subscriber":
            if stats.rtt_seconds is None:
                return False  # Janus has had no receiver report on this stream yet
            source = attached.source
            if source is not None:
                source.report_rtt(stats.rtt_seconds)
            self._update_sfu(attached, lambda sfu: replace(sfu, rtt_seconds=stats.rtt_seconds))
            return True
        if stats.media != "audio":
            return False
        lost, received = stats.lost, stats.packets_received
        total = (lost or 0) + (received or 0)
        self._update_sfu(
            attached,
            lambda sfu: replace(
                sfu,
                packets_received=received,
                packets_lost=lost,
                loss_ratio=(lost or 0) / total if total else None,
                link_quality=stats.in_link_quality,
                media_link_quality=stats.in_media_link_quality,
                jitter_seconds=stats.jitter_seconds,
            ),
        )
        return True

    def _update_sfu(
        self, attached: JanusAttachment, change: Callable[[SfuSnapshot], SfuSnapshot]
    ) -> None:
        session = self._sessions.sessions.get(attached.session_id)
        if session is None or not session.live:
            return
        slot = session.slot(attached.role)
        slot.sfu = change(slot.sfu or SfuSnapshot(None, None, None, None, None, None, None))


def setup(app: web.Application) -> None:
    """Call after janus_attach.setup (the bridge, when Janus attach is on)."""
    settings = app[settings_key]
    ingest = JanusEvents(
        sessions=app[sessions_key],
        bridge=app.get(janus_key),
        registry=app[metrics_key].registry,
    )
    share = JanusShare()
    app.cleanup_ctx.append(janus_share.running(share))

    async def post_events(request: web.Request) -> web.StreamResponse:
        secret = settings.janus_events_secret
        given = password_of(request.headers.get("Authorization"))
        if (
            secret is None
            or given is None
            or not hmac.compare_digest(given.encode(), secret.encode())
        ):
            raise web.HTTPUnauthorized(
                text="basic auth with QUALMON_JANUS_EVENTS_SECRET required\n", headers=CHALLENGE
            )
        body = await read_body(request, MAX_BODY_BYTES, "body")
        try:
            ingest.apply(body)
        except EventsError as exc:
            raise bad_request(str(exc)) from None
        share.share(request, body)  # the other instances of a cluster need the events too
        return web.Response(status=204)

    app.router.add_post("/v1/integrations/janus/events", post_events)
