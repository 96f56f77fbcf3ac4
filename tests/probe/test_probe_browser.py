"""probe.js in real headless Chromium: a call between two peer connections, heard by qualmon."""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ..conftest import CHROMIUM_ARGS, Service, serve_page, wait_for

pytestmark = pytest.mark.realtime

CHROMIUM = shutil.which("chromium")
BROWSER_ARGS = [
    *CHROMIUM_ARGS,
    # A fake microphone (a beep), granted without a prompt, played without a gesture.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]

# A platform's page on another origin: it loads probe.js from qualmon and posts there (CORS).
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>call</title><link rel="icon" href="data:,">
<script src="{service}/probe.js"></script></head>
<body>
<audio id="remote" autoplay></audio>
<script>
window.startCall = async function (serviceUrl, token) {{
  const a = new RTCPeerConnection();
  const b = new RTCPeerConnection();
  a.onicecandidate = (e) => {{ if (e.candidate) b.addIceCandidate(e.candidate); }};
  b.onicecandidate = (e) => {{ if (e.candidate) a.addIceCandidate(e.candidate); }};
  for (const pc of [a, b]) {{
    const mic = await navigator.mediaDevices.getUserMedia({{audio: true}});
    mic.getTracks().forEach((t) => pc.addTrack(t, mic));
  }}
  b.ontrack = (e) => {{
    const el = document.getElementById("remote");
    el.srcObject = e.streams[0];
    el.play().catch(() => {{}});
  }};
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription);
  // b is the client's browser: what it hears is what the probe reports.
  window.probe = QualmonProbe.attach(b, {{url: serviceUrl, token: token, intervalMs: 1000}});
  window.pcs = [a, b];
  return typeof window.probe.detach;
}};
</script></body></html>
"""


@pytest.fixture
async def page() -> Any:
    if CHROMIUM is None:
        pytest.skip("Debian chromium is not installed")
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = await browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors
        yield page
        await browser.close()


@pytest.fixture
async def platform_url(service: Service) -> AsyncIterator[str]:
    """A tiny 'platform' site on another port that embeds the probe from the service."""

    async with serve_page(PAGE.format(service=service.url)) as url:
        yield url


async def test_probe_js_reports_what_the_browser_hears(
    service: Service, platform_url: str, page: Any
) -> None:
    """Within 10 s of attaching, legs.client.heard shows plausible, growing counters."""
    await page.goto(platform_url)
    token = service.token("publish", "browser-call", "client")
    attached_at = time.monotonic()
    assert await page.evaluate("([u, t]) => window.startCall(u, t)", [service.url, token]) == (
        "function"
    )

    async def heard(min_samples: int) -> dict[str, Any] | None:
        async with service.http.get(
            f"{service.url}/v1/sessions/browser-call", headers=service.auth("admin")
        ) as r:
            if r.status != 200:
                return None
            doc = await r.json()
        block = (doc["legs"].get("client") or {}).get("heard")
        ok = block and block["samples"] >= min_samples and block["total_samples_received"] > 0
        return block if ok else None

    first = await wait_for(lambda: heard(2), timeout=10.0, what="a heard block from probe.js")
    assert time.monotonic() - attached_at <= 10.0
    later = await wait_for(
        lambda: heard(first["samples"] + 1), timeout=5.0, what="a later probe sample"
    )
    for block in (first, later):
        assert block["packets_received"] > 0
        assert block["total_samples_received"] > 0
        ratio = block["audible_concealment_ratio"]
        assert ratio is not None and 0.0 <= ratio <= 1.0
        assert block["jitter_seconds"] is not None and 0 <= block["jitter_seconds"] < 1
    assert later["packets_received"] > first["packets_received"]
    assert later["total_samples_received"] > first["total_samples_received"]
    assert later["rtt_seconds"] is None or 0 <= later["rtt_seconds"] < 0.5
    assert 1.0 <= later["mos"] <= 4.5
    doc = await service.session_json("browser-call")
    assert doc["legs"]["client"]["state"] == "probe_only"
    status = await page.evaluate("() => window.probe.status")
    assert status["sent"] >= 2 and status["lastStatus"] == 204
    # Closing the connection stops the probe; detach() is harmless afterwards.
    await page.evaluate("() => { window.pcs.forEach((pc) => pc.close()); }")
    await page.evaluate("() => new Promise((r) => setTimeout(r, 1200))")
    assert (await page.evaluate("() => window.probe.status"))["stopped"] is True
    await page.evaluate("() => window.probe.detach()")
    assert page.errors == []
