"""Outbound webhook: raised/cleared warnings POSTed signed and retried, never on the tick's time."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import hmac
import json
import logging
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Literal

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge

from .. import __version__
from ..core.ascii_digits import is_ascii_digits, parse_ascii_int
from ..core.warnings import WarningEvent
from ..l10n.catalogs import english
from ..l10n.localizer import Localizer
from ..warnings.runtime import WarningObserver
from .views import warning_json

log = logging.getLogger(__name__)

QUEUE_LIMIT = 1000
"Events waiting for the sender; beyond this the oldest is dropped (and counted)."
BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0)
"Waits before the 2nd … 5th attempt, each jittered to 50–100 %."
RETRY_AFTER_MAX_SECONDS = 60.0
"The longest a receiver's Retry-After may hold the sender (and every event queued behind)."
DROP_LOG_EVERY_SECONDS = 60.0
OUTCOMES = ("delivered", "failed", "dropped")

Outcome = Literal["delivered", "failed", "dropped"]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Qualmon-Signature value: `sha256=` + hex HMAC-SHA256 of `<timestamp>.<body>`."""
    # The timestamp is inside the MAC so a captured request cannot be replayed later with a
    # fresh X-Qualmon-Timestamp; receivers reject old timestamps.
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _retryable(status: int) -> bool:
    # Other 4xx mean the receiver refuses this request as it is; sending it again cannot help.
    return status >= 500 or status in (408, 429)


def retry_after_seconds(value: str | None, *, now: float) -> float | None:
    """Seconds a Retry-After value asks for (delta-seconds or an HTTP-date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if is_ascii_digits(value):
        # Past 10 digits (300 years) it is "for ever", which the caller caps, rather than
        # int()'s ValueError past 4300 digits or float()'s overflow past 308.
        seconds = parse_ascii_int(value, max_digits=10)
        return math.inf if seconds is None else float(seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    # HTTP-dates are always GMT; the asctime form carries no zone and parses naive.
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - now)


def retry_delay_seconds(
    status: int | None,
    retry_after: str | None,
    backoff: float,
    *,
    now: float,
    limit: float = RETRY_AFTER_MAX_SECONDS,
) -> float:
    """The wait before the next attempt, after an answer `status` (None: no answer).

    A usable Retry-After on a 429 or 503 replaces `backoff`, capped at `limit`.
    """
    if status not in (429, 503):
        return backoff
    asked = retry_after_seconds(retry_after, now=now)
    # Capped, not refused: one receiver asking for an hour must not hold every later event
    # that long, and an early retry costs it one more 503.
    return backoff if asked is None else min(asked, limit)


@dataclass(frozen=True)
class Delivery:
    """One event to POST; every attempt sends the same id and body."""

    delivery_id: str
    "X-Qualmon-Delivery: unchanged across retries, so receivers can drop duplicates."
    body: bytes


class WebhookMetrics:
    """Counters of outcomes and retries, and the queue's depth read on scrape."""

    def __init__(self, registry: CollectorRegistry, queued: Callable[[], int]) -> None:
        self.deliveries = Counter(
            "qualmon_webhook_deliveries",
            "Warning events for the webhook, by outcome: delivered (2xx), failed (refused or "
            "out of retries), dropped (queue full).",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.deliveries.labels(outcome=outcome)
        self.retries = Counter(
            "qualmon_webhook_retries",
            "Webhook attempts repeated after a timeout, connection error, 5xx, 408 or 429.",
            registry=registry,
        )
        depth = Gauge(
            "qualmon_webhook_queued",
            "Warning events waiting for the webhook sender.",
            registry=registry,
        )
        depth.set_function(queued)


class WebhookSender(WarningObserver):
    """Queues events without waiting and POSTs them one at a time, in order, from its own task.

    Use as `async with sender:` (starts and stops the task); `enqueue` is the
    WarningsRuntime listener. Events still queued when it stops are not sent.
    """

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        registry: CollectorRegistry,
        timeout_seconds: float = 5.0,
        backoff_seconds: Sequence[float] = BACKOFF_SECONDS,
        queue_limit: int = QUEUE_LIMIT,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        localizer_for: Callable[[str], Localizer] | None = None,
    ) -> None:
        """`localizer_for(session_id)`: the language of that session's therapist texts
        (the service: the therapist's token claim, else QUALMON_LOCALE); English if None."""
        if not secret:
            raise ValueError("a webhook needs a secret to sign with")
        self._url = url
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._backoff_seconds = tuple(backoff_seconds)
        self._wall = wall_clock
        self._sleep = sleep
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(queue_limit)
        self.metrics = WebhookMetrics(registry, self._queue.qsize)
        self._task: asyncio.Task[None] | None = None
        self._drop_logged_at = -math.inf
        if localizer_for is None:
            source = english()
            localizer_for = lambda _session_id: source  # noqa: E731 - a constant's function
        self._localizer_for = localizer_for

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def on_warning(self, session_id: str, event: WarningEvent) -> None:
        loc = self._localizer_for(session_id)
        self.enqueue(session_id, event.type, warning_json(event, loc))

    def enqueue(self, session_id: str, event: str, warning: dict[str, Any]) -> None:
        """Queue one raised/cleared event; never waits. A full queue loses its oldest event."""
        doc = {"session_id": session_id, "event": event, "warning": warning}
        delivery = Delivery(uuid.uuid4().hex, json.dumps(doc, separators=(",", ":")).encode())
        if self._queue.full():
            # The oldest rather than the newest: a receiver catching up after an outage cares
            # more about how the session is now than about how it was.
            self._queue.get_nowait()
            self._count_drop()
        self._queue.put_nowait(delivery)

    def _count_drop(self) -> None:
        self.metrics.deliveries.labels(outcome="dropped").inc()
        now = time.monotonic()
        if now - self._drop_logged_at >= DROP_LOG_EVERY_SECONDS:
            self._drop_logged_at = now
            log.warning("webhook queue full (%d events): dropping the oldest", self._queue.maxsize)

    async def __aenter__(self) -> WebhookSender:
        if self._task is not None:
            raise RuntimeError("the webhook sender is already running")
        self._task = asyncio.create_task(self._run(), name="qualmon-webhook")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        async with aiohttp.ClientSession(
            timeout=self._timeout,
            headers={"User-Agent": f"qualmon-webhook/{__version__}"},
            cookie_jar=aiohttp.DummyCookieJar(),  # no state carried between deliveries
        ) as http:
            while True:
                delivery = await self._queue.get()
                try:
                    outcome = await self._deliver(http, delivery)
                except Exception as exc:  # a bug here must not end all later deliveries
                    log.error("webhook sender error: %s", type(exc).__name__)
                    outcome = "failed"
                self.metrics.deliveries.labels(outcome=outcome).inc()

    async def _deliver(self, http: aiohttp.ClientSession, delivery: Delivery) -> Outcome:
        attempts = len(self._backoff_seconds) + 1
        problem = ""
        status: int | None = None
        retry_after: str | None = None
        for attempt in range(attempts):
            if attempt:
                self.metrics.retries.inc()
                # Jitter: instances that lost the receiver together do not return in lockstep.
                backoff = self._backoff_seconds[attempt - 1] * random.uniform(0.5, 1.0)
                now = self._wall()
                await self._sleep(retry_delay_seconds(status, retry_after, backoff, now=now))
            try:
                status, retry_after = await self._post(http, delivery)
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, retry_after = None, None
                # The class only: messages name the host and port, some carry the URL.
                problem = type(exc).__name__
                continue
            if 200 <= status < 300:
                return "delivered"
            problem = f"HTTP {status}"
            if not _retryable(status):
                break
        log.warning("webhook delivery failed after %d attempt(s): %s", attempt + 1, problem)
        return "failed"

    async def _post(
        self, http: aiohttp.ClientSession, delivery: Delivery
    ) -> tuple[int, str | None]:
        """One attempt: the status and any Retry-After (read while the response is open)."""
        # Signed afresh per attempt: a late retry still carries a recent timestamp.
        timestamp = int(self._wall())
        headers = {
            "Content-Type": "application/json",
            "X-Qualmon-Timestamp": str(timestamp),
            "X-Qualmon-Signature": sign(self._secret, timestamp, delivery.body),
            "X-Qualmon-Delivery": delivery.delivery_id,
        }
        # No redirects: a signed body goes to the configured receiver or nowhere.
        async with http.post(
            self._url, data=delivery.body, headers=headers, allow_redirects=False
        ) as response:
            return response.status, response.headers.get("Retry-After")
