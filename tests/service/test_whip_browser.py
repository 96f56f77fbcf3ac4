"""A real Chromium publishes its (fake) microphone, and camera, over WHIP: browser Opus and
VP8 through our path."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ..conftest import Service, serve_page, wait_for
from ..probe.test_probe_browser import page  # noqa: F401  (the Chromium page fixture)

pytestmark = pytest.mark.realtime

# A platform's page on another origin publishing with plain browser APIs, as RFC 9725 says:
# one POST of the complete offer, the answer in the response.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>publish</title><link rel="icon" href="data:,"></head>
<body><script>
window.publish = async function (whipUrl, token, video) {
  const pc = new RTCPeerConnection();
  const media = await navigator.mediaDevices.getUserMedia({audio: true, video: !!video});
  pc.addTransceiver(media.getAudioTracks()[0], {direction: "sendonly"});
  if (video) pc.addTransceiver(media.getVideoTracks()[0], {direction: "sendonly"});
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && resolve();
  });
  const response = await fetch(whipUrl, {
    method: "POST",
    headers: {"Content-Type": "application/sdp", "Authorization": "Bearer " + token},
    body: pc.localDescription.sdp,
  });
  if (response.status !== 201) return "POST " + response.status + " " + await response.text();
  await pc.setRemoteDescription({type: "answer", sdp: await response.text()});
  window.pc = pc;
  return "ok";
};
</script></body></html>
"""


@pytest.fixture
async def publisher_url() -> AsyncIterator[str]:
    async with serve_page(PAGE) as url:
        yield url


async def test_browser_opus_is_measured_and_classified(
    service: Service,
    publisher_url: str,
    page: Any,  # noqa: F811
) -> None:
    """Chromium's Opus (its own encoder settings, FEC, header extensions) is counted from the
    tap and decoded by our libopus path: every 20 ms classified, nothing rejected."""
    await page.goto(publisher_url)
    token = service.token("publish", "browser-whip", "client")
    result = await page.evaluate("([u, t]) => window.publish(u, t)", [service.whip_url, token])
    assert result == "ok", result

    def leg() -> Any:
        session = service.sessions.sessions.get("browser-whip")
        return session.slots["client"].leg if session else None

    await wait_for(
        lambda: leg() is not None and leg().stats.packets_received >= 150,
        timeout=15.0,
        what="3 s of browser audio",
    )
    live = leg()
    speech = live.source._opus_speech
    assert speech is not None, "browser Opus should take the libopus path"
    received = live.stats.packets_received
    frames = live.vad_frames
    # One 20 ms decision per packet (the tap sees a packet a little before it is classified).
    assert received - 5 <= frames <= received, (received, frames)
    assert speech.decode_errors == 0
    doc = await service.session_json("browser-whip")
    client = doc["legs"]["client"]
    assert client["state"] == "live" and client["packets_lost"] == 0
    await page.evaluate("() => window.pc.close()")


async def test_browser_camera_and_mic_are_measured_without_decoding(
    service: Service,
    publisher_url: str,
    page: Any,  # noqa: F811
) -> None:
    """Chromium's fake camera (VP8, its own packetization, RTX, header extensions) and mic
    in one offer: video measured from RTP (frames, size), audio as before, and no aiortc
    decoder thread runs for either."""
    await page.goto(publisher_url)
    token = service.token("publish", "browser-av", "client")
    result = await page.evaluate(
        "([u, t]) => window.publish(u, t, true)", [service.whip_url, token]
    )
    assert result == "ok", result

    def leg() -> Any:
        session = service.sessions.sessions.get("browser-av")
        return session.slots["client"].leg if session else None

    def video() -> Any:
        live = leg()
        return live.video.snapshot(live._clock()) if live is not None and live.video else None

    await wait_for(
        lambda: (v := video()) is not None and v.frames_received >= 60 and v.width,
        timeout=20.0,
        what="browser video frames with a keyframe's size",
    )
    await wait_for(
        lambda: leg().stats.packets_received >= 150, timeout=15.0, what="3 s of browser audio"
    )
    seen = video()
    assert seen.codec == "vp8" and seen.keyframes >= 1
    assert seen.width > 0 and seen.height > 0 and seen.frames_per_second > 5
    assert leg().source._opus_speech is not None and leg().vad_frames > 0
    assert [t.name for t in threading.enumerate() if t.name.endswith("-decoder")] == []
    doc = await service.session_json("browser-av")
    client = doc["legs"]["client"]
    assert client["state"] == "live" and client["packets_received"] >= 150
    assert client["video"]["frames_received"] >= 60
    print("browser video", seen)
    await page.evaluate("() => window.pc.close()")
