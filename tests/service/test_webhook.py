"""Outbound webhook: signed POSTs to a real receiver, retries, a bounded queue, end to end."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from qualmon.service.webhook import (
    RETRY_AFTER_MAX_SECONDS,
    WebhookSender,
    retry_delay_seconds,
    sign,
)
from qualmon.sim.impairment import ImpairmentConfig

from ..conftest import make_settings, run_service, wait_for

WEBHOOK_SECRET = "webhook-secret-" + "w" * 24
FAST_BACKOFF = (0.01, 0.02, 0.04, 0.08)
NOW = 1795600800.0  # 2026-11-25T10:00:00Z
TOLERANCE_SECONDS = 300


def verify(secret: str, headers: Any, body: bytes, now: float) -> bool:
    """What a receiver does (as in the README): recent timestamp, then a constant-time compare."""
    timestamp = headers["X-Qualmon-Timestamp"]
    if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + expected.hexdigest(), headers["X-Qualmon-Signature"])


@dataclass(frozen=True)
class Received:
    path_qs: str
    headers: dict[str, str]
    body: bytes

    @property
    def doc(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    """A real HTTP server that records each POST and answers `statuses` in turn, then 200.

    An answer is a status, or a status with the headers to send along.
    """

    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int | tuple[int, dict[str, str]]] = field(default_factory=list)
    hang: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver(url="")

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        state.requests.append(Received(request.path_qs, dict(request.headers), body))
        if state.hang:
            await state.release.wait()
        answer = state.statuses.pop(0) if state.statuses else 200
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return web.Response(status=status, headers=headers)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}/hook?token=receiver-token"
    try:
        yield state
    finally:
        state.release.set()
        await runner.cleanup()


@dataclass(frozen=True)
class Hook:
    """A sender with its own registry, read the way Prometheus would."""

    sender: WebhookSender
    registry: CollectorRegistry

    def count(self, outcome: str) -> float:
        labels = {"outcome": outcome}
        return self.registry.get_sample_value("qualmon_webhook_deliveries_total", labels) or 0.0

    @property
    def retries(self) -> float:
        return self.registry.get_sample_value("qualmon_webhook_retries_total") or 0.0


@dataclass
class Sleeps:
    """An injectable sleep that records each wait and yields without waiting."""

    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


def hook_for(url: str, **kwargs: Any) -> Hook:
    kwargs.setdefault("backoff_seconds", FAST_BACKOFF)
    kwargs.setdefault("timeout_seconds", 2.0)
    registry = CollectorRegistry()
    return Hook(WebhookSender(url, WEBHOOK_SECRET, registry=registry, **kwargs), registry)


def warning(kind: str = "high_loss", n: int = 0) -> dict[str, Any]:
    return {
        "kind": kind,
        "severity": "warning",
        "role": "client",
        "value": 0.05 + n,
        "threshold": 0.03,
        "at": "2026-11-25T10:00:00.000Z",
        "therapist_text": "The client's audio is breaking up.",
        "sre_text": "loss 5 % over 2 s",
    }


def test_signature_matches_an_independent_hmac() -> None:
    body = b'{"session_id":"s1","event":"raised"}'
    expected = hmac.new(WEBHOOK_SECRET.encode(), b"1700000000." + body, hashlib.sha256)
    assert sign(WEBHOOK_SECRET, 1700000000, body) == "sha256=" + expected.hexdigest()
    assert sign(WEBHOOK_SECRET, 1700000001, body) != sign(WEBHOOK_SECRET, 1700000000, body)


async def test_events_arrive_in_order_signed(receiver: Receiver) -> None:
    """Each event is one POST with the documented body and headers, in the order queued."""
    sent = [("s1", "raised", warning(n=0)), ("s2", "raised", warning("high_rtt", 1))]
    sent.append(("s1", "cleared", warning(n=2)))
    hook = hook_for(receiver.url)
    async with hook.sender as sender:
        for session_id, event, doc in sent:
            sender.enqueue(session_id, event, doc)
        await wait_for(lambda: hook.count("delivered") == 3, what="3 deliveries")
    assert [r.doc for r in receiver.requests] == [
        {"session_id": s, "event": e, "warning": w} for s, e, w in sent
    ]
    for request in receiver.requests:
        assert request.path_qs == "/hook?token=receiver-token"
        assert request.headers["Content-Type"] == "application/json"
        assert verify(WEBHOOK_SECRET, request.headers, request.body, time.time())
        assert not verify("another-secret-" + "z" * 24, request.headers, request.body, time.time())
    assert len({r.headers["X-Qualmon-Delivery"] for r in receiver.requests}) == 3
    assert hook.retries == 0


async def test_5xx_is_retried_with_the_same_delivery_id(receiver: Receiver) -> None:
    receiver.statuses = [503, 503]
    hook = hook_for(receiver.url)
    async with hook.sender as sender:
        sender.enqueue("s1", "raised", warning())
        await wait_for(lambda: hook.count("delivered") == 1, what="delivered after retries")
    assert len(receiver.requests) == 3
    assert len({r.headers["X-Qualmon-Delivery"] for r in receiver.requests}) == 1
    assert all(verify(WEBHOOK_SECRET, r.headers, r.body, time.time()) for r in receiver.requests)
    assert hook.retries == 2
    assert hook.count("failed") == 0


async def test_retry_after_on_503_replaces_the_backoff(receiver: Receiver) -> None:
    """A 503 with `Retry-After: 1`: the one retry waits exactly 1 s, then is delivered."""
    receiver.statuses = [(503, {"Retry-After": "1"})]
    sleeps = Sleeps()
    hook = hook_for(receiver.url, sleep=sleeps)
    async with hook.sender as sender:
        sender.enqueue("s1", "raised", warning())
        await wait_for(lambda: hook.count("delivered") == 1, what="delivered after Retry-After")
    assert len(receiver.requests) == 2
    assert len({r.headers["X-Qualmon-Delivery"] for r in receiver.requests}) == 1
    assert sleeps.waits == [1.0]
    assert hook.retries == 1
    assert hook.count("failed") == 0


async def test_unusable_retry_after_keeps_the_jittered_backoff(receiver: Receiver) -> None:
    """Malformed, or on a status it does not apply to: the usual backoff, 50–100 % of it."""
    receiver.statuses = [(503, {"Retry-After": "soon"}), (500, {"Retry-After": "30"})]
    sleeps = Sleeps()
    hook = hook_for(receiver.url, sleep=sleeps)
    async with hook.sender as sender:
        sender.enqueue("s1", "raised", warning())
        await wait_for(lambda: hook.count("delivered") == 1, what="delivered after 2 retries")
    assert len(sleeps.waits) == 2
    for wait, backoff in zip(sleeps.waits, FAST_BACKOFF[:2], strict=True):
        assert backoff * 0.5 <= wait <= backoff


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (503, "1", 1.0),
        (429, " 7 ", 7.0),
        (503, "0", 0.0),
        (503, "Wed, 25 Nov 2026 10:00:30 GMT", 30.0),  # IMF-fixdate
        (429, "Wednesday, 25-Nov-26 10:00:30 GMT", 30.0),  # obsolete RFC 850
        (503, "Wed Nov 25 10:00:30 2026", 30.0),  # obsolete asctime, no zone: GMT
        (503, "Wed, 25 Nov 2026 09:59:00 GMT", 0.0),  # already past
        (503, "3600", RETRY_AFTER_MAX_SECONDS),
        (503, "9" * 400, RETRY_AFTER_MAX_SECONDS),  # float(int()) overflows
        (429, "9" * 5000, RETRY_AFTER_MAX_SECONDS),  # int() refuses past 4300 digits
        (429, "Wed, 25 Nov 2026 11:00:00 GMT", RETRY_AFTER_MAX_SECONDS),
        (503, None, 0.25),
        (503, "soon", 0.25),
        (503, "1.5", 0.25),
        (503, "-1", 0.25),
        (503, "", 0.25),
        (503, "\u0663", 0.25),  # a digit, but not an ASCII one
        (503, "\u00b2", 0.25),  # isdigit() says yes, int() says no
        (503, "Wed, 31 Nov 2026 10:00:30 GMT", 0.25),  # no such day
        (500, "1", 0.25),
        (408, "1", 0.25),
        (None, "1", 0.25),  # no answer at all (timeout, connection error)
    ],
)
def test_retry_delay_seconds(status: int | None, retry_after: str | None, expected: float) -> None:
    """Retry-After (seconds or an HTTP-date, capped) on 429/503 only; else the backoff given."""
    assert retry_delay_seconds(status, retry_after, 0.25, now=NOW) == pytest.approx(expected)


async def test_4xx_is_not_retried_and_logged_without_secrets(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """A 400 fails at once; the next event still goes out; the log names only the status."""
    receiver.statuses = [400]
    caplog.set_level(logging.INFO, logger="qualmon.service.webhook")
    hook = hook_for(receiver.url)
    async with hook.sender as sender:
        sender.enqueue("secret-session", "raised", warning())
        sender.enqueue("s2", "raised", warning())
        await wait_for(lambda: hook.count("delivered") == 1, what="the second event")
    assert hook.count("failed") == 1
    assert hook.retries == 0
    assert len(receiver.requests) == 2
    [record] = [r for r in caplog.records if r.name == "qualmon.service.webhook"]
    assert "HTTP 400" in record.getMessage()
    for private in ("receiver-token", "127.0.0.1", WEBHOOK_SECRET, "secret-session", "breaking"):
        assert private not in caplog.text


async def test_connection_errors_retry_until_attempts_run_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    caplog.set_level(logging.INFO, logger="qualmon.service.webhook")
    hook = hook_for(f"http://127.0.0.1:{port}/hook?token=receiver-token")
    async with hook.sender as sender:
        sender.enqueue("s1", "raised", warning())
        await wait_for(lambda: hook.count("failed") == 1, what="failure after 5 attempts")
    assert hook.retries == 4
    assert hook.count("delivered") == 0
    assert "after 5 attempt(s): ClientConnectorError" in caplog.text
    assert "receiver-token" not in caplog.text and str(port) not in caplog.text


async def test_a_hanging_receiver_never_blocks_enqueue(receiver: Receiver) -> None:
    """2000 events against a receiver that never answers: 1000 wait, the oldest 1000 are
    dropped and counted, and attempts time out and are retried."""
    receiver.hang = True
    hook = hook_for(receiver.url, timeout_seconds=0.2)
    async with hook.sender as sender:
        for n in range(2000):
            sender.enqueue("s1", "raised", warning(n=n))
        assert sender.queued == 1000
        assert hook.count("dropped") == 1000
        assert hook.registry.get_sample_value("qualmon_webhook_queued") == 1000
        await wait_for(lambda: hook.retries >= 1 and receiver.requests, what="a timed-out retry")
        # The oldest were dropped: the first POST carries event 1000.
        assert receiver.requests[0].doc["warning"]["value"] == pytest.approx(0.05 + 1000)
        assert hook.count("delivered") == 0


@pytest.mark.realtime
async def test_service_posts_a_signed_raised_warning(receiver: Receiver, publishers: Any) -> None:
    """10 % loss on the client's leg: the receiver gets a signed "raised" high_loss for it."""
    settings = make_settings(webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET)
    async with run_service(settings) as service:
        impairment = ImpairmentConfig(loss_ratio=0.10, seed=4)
        await publishers(service, "hooked", "client", impairment=impairment)

        def raised() -> list[Received]:
            return [
                r
                for r in receiver.requests
                if r.doc["event"] == "raised" and r.doc["warning"]["kind"] == "high_loss"
            ]

        [request, *_] = await wait_for(raised, timeout=15.0, what="high_loss POSTed")
        assert verify(WEBHOOK_SECRET, request.headers, request.body, time.time())
        assert request.doc["session_id"] == "hooked"
        warning_doc = request.doc["warning"]
        assert warning_doc["role"] == "client" and warning_doc["threshold"] == 0.043
        assert warning_doc["therapist_text"] and warning_doc["at"].endswith("Z")
        get = service.metrics.registry.get_sample_value
        await wait_for(
            lambda: (get("qualmon_webhook_deliveries_total", {"outcome": "delivered"}) or 0) >= 1,
            what="delivered counter",
        )
        assert get("qualmon_webhook_deliveries_total", {"outcome": "dropped"}) == 0
