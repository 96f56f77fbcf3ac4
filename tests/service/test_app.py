"""The app's own logging (safe paths, unexpected errors logged without their message) and
the ICE choice it holds while it runs."""

from __future__ import annotations

import logging
from collections.abc import Callable

import aiohttp
import aioice.ice
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import CollectorRegistry

from qualmon.config import Settings
from qualmon.media.ice import aioice_uses_own_choice
from qualmon.service.app import create_app, loggable_path
from qualmon.service.metrics import QualmonMetrics

from ..conftest import Service, make_settings
from ..fuzzing import raw_request
from ..privacy import IPV4

PRIVATE = "a=candidate:1 1 udp 1 192.0.2.7 9 typ host"
"What an exception message may carry from SDP: a peer's address."


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("/whip/Zm9vYmFyLWNhcGFiaWxpdHktaWQ", "/whip/<resource>"),
        ("/whip/abc?token=secret", "/whip/<resource>"),
        ("/whip", "/whip"),
        ("/v1/sessions/s1/report?token=secret", "/v1/sessions/s1/report"),
        ("/v1/sessions/s1/rtp/Zm9vYmFyLWNhcGFiaWxpdHktaWQ", "/v1/sessions/s1/rtp/<rtp_id>"),
        ("/v1/sessions/s1/rtp", "/v1/sessions/s1/rtp"),
    ],
)
def test_loggable_path_masks_capabilities_and_drops_the_query(url: str, shown: str) -> None:
    assert loggable_path(make_mocked_request("GET", url)) == shown


async def test_unexpected_error_is_a_500_logged_by_type_and_safe_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The log line names the exception type and where it happened (with the traceback),
    never the message (it may quote SDP or addresses), the resource id or the token."""
    app = create_app(make_settings(), metrics=QualmonMetrics(CollectorRegistry()))

    async def broken(request: web.Request) -> web.Response:
        # Built at run time: the traceback quotes source lines, which must stay harmless.
        resource, token = request.match_info["resource"], request.query["token"]
        raise ValueError(f"{resource} {token} sent {PRIVATE}")

    app.router.add_get("/whip/{resource}", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        with caplog.at_level(logging.ERROR, logger="qualmon.service.app"):
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/whip/CAPABILITY42?token=TOKEN42") as r,
            ):
                assert r.status == 500
                assert await r.json() == {"error": "internal error"}
    finally:
        await runner.cleanup()
    (record,) = [r for r in caplog.records if r.name == "qualmon.service.app"]
    text = caplog.text
    assert record.getMessage().startswith("unhandled ValueError in GET /whip/<resource>\n")
    assert "in broken" in text  # the traceback is there
    for secret in ("192.0.2.7", "a=candidate", "CAPABILITY42", "TOKEN42"):
        assert secret not in text


async def run_briefly(settings: Settings, check: Callable[[], None]) -> None:
    """Start the app (no listening socket), run `check`, clean up."""
    runner = web.AppRunner(create_app(settings, metrics=QualmonMetrics(CollectorRegistry())))
    await runner.setup()
    try:
        check()
    finally:
        await runner.cleanup()


async def test_loopback_ice_is_in_force_only_while_an_app_that_asks_runs() -> None:
    """Building an app leaves aioice alone; running one with ice_addresses makes aioice
    gather on them; its clean-up gives aioice its own choice back. Without ice_addresses
    (the production default) aioice is never touched."""
    assert aioice_uses_own_choice()
    create_app(make_settings(), metrics=QualmonMetrics(CollectorRegistry()))
    assert aioice_uses_own_choice()

    def loopback_only() -> None:
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1"]

    await run_briefly(make_settings(ice_addresses=("127.0.0.1",)), loopback_only)
    assert aioice_uses_own_choice()

    def untouched() -> None:
        assert aioice_uses_own_choice()

    await run_briefly(make_settings(ice_addresses=None), untouched)
    assert aioice_uses_own_choice()


@pytest.mark.parametrize(
    "request_head",
    [
        b"GET /v1/sessions?token=" + b"S3CR3T" * 1500 + b" HTTP/1.1\r\n",
        b"GET /v1/sessions HTTP/1.1\r\nAuthorization: Bearer " + b"S3CR3T" * 1500 + b"\r\n",
        b"GET /v1/sessions?token=S3CR3T\xff HTTP/1.1\r\n",
    ],
    ids=["long-query", "long-header", "bad-byte-in-query"],
)
async def test_a_malformed_request_is_logged_without_address_or_token(
    service: Service, caplog: pytest.LogCaptureFixture, request_head: bytes
) -> None:
    """Found by fuzzing tokens: aiohttp answered a 9 KB `?token=` or bearer header with 400
    and logged ERROR "Error handling request from 127.0.0.1" with a traceback quoting the
    token. It is one INFO line with the exception's type now."""
    with caplog.at_level(logging.DEBUG):
        status, _ = await raw_request(
            service, request_head + b"Host: qualmon\r\nConnection: close\r\n\r\n"
        )
    assert status == 400
    (record,) = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert record.levelno == logging.INFO
    assert record.getMessage().startswith("malformed request refused (")
    assert record.exc_info is None
    assert "S3CR3T" not in caplog.text
    assert not IPV4.findall(caplog.text.encode())
