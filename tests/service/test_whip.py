"""WHIP ingest over a real server: answers, bad input, CORS, PATCH, DELETE, caps, reconnects."""

from __future__ import annotations

import asyncio
import fractions
import os
from collections.abc import AsyncIterator
from typing import Any

import av
import pytest
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)

from qualmon.media.whip_source import WhipSource
from qualmon.sessions.leg import Leg
from qualmon.sim.audio import EncodedAudioTrack, speech_like_packets, speech_like_pcm

from ..conftest import Service, make_settings, run_service, wait_for

pytestmark = pytest.mark.realtime


async def make_offer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(EncodedAudioTrack(speech_like_packets()), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def baseline_fds(service: Service) -> int:
    """Open descriptors once the client's keep-alive connection exists."""
    async with service.http.get(service.url + "/healthz") as r:
        await r.read()
    return open_fds()


async def post(
    service: Service,
    body: str | bytes | AsyncIterator[bytes],
    *,
    headers: dict[str, str] | None = None,
    token: str | None = None,
    content_type: str = "application/sdp",
) -> tuple[int, str, Any]:
    hdrs = {"Content-Type": content_type}
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    hdrs.update(headers or {})
    async with service.http.post(service.whip_url, data=body, headers=hdrs) as r:
        return r.status, await r.text(), r.headers


@pytest.fixture
async def offer() -> Any:
    pc, sdp = await make_offer()
    yield sdp
    await pc.close()


async def test_post_answers_recvonly_with_location(service: Service, offer: str) -> None:
    """201, an SDP answer with recvonly audio, an unguessable Location, exposed to scripts."""
    status, body, headers = await post(
        service, offer, token=service.token("publish", "s", "client")
    )
    assert status == 201, body
    assert headers["Content-Type"].startswith("application/sdp")
    assert "m=audio" in body and "a=recvonly" in body
    location = headers["Location"]
    assert location.startswith("/whip/")
    # token_urlsafe(24): 24 random bytes = 192 bits
    assert len(location.removeprefix("/whip/")) >= 32
    assert "Location" in headers["Access-Control-Expose-Headers"]
    assert headers["ETag"]
    leg = service.sessions.legs_by_resource[location.removeprefix("/whip/")]
    assert (leg.session_id, leg.role) == ("s", "client")


async def test_options_preflight(service: Service) -> None:
    """CORS preflight needs no token and advertises application/sdp."""
    async with service.http.options(
        service.whip_url,
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    ) as r:
        assert r.status == 204
        assert r.headers["Accept-Post"] == "application/sdp"
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert "Authorization" in r.headers["Access-Control-Allow-Headers"]


BAD_SDP = {
    "garbage": ("hello world", "bad offer"),
    "empty": ("", "bad offer"),
    "no audio": (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n",
        "audio",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SDP))
async def test_malformed_offers_are_400(service: Service, case: str) -> None:
    """Malformed SDP → 400 with a one-line reason, and nothing allocated."""
    body, needle = BAD_SDP[case]
    fds = await baseline_fds(service)
    status, text, _ = await post(service, body, token=service.token("publish", "s", "client"))
    assert status == 400
    assert needle in text.lower()
    assert len(text.strip().splitlines()) == 1
    assert not service.sessions.legs_by_resource
    assert not service.sessions.sessions
    assert open_fds() <= fds


def _edit(sdp: str, *, drop: str | None = None, replace: tuple[str, str] | None = None) -> str:
    lines = sdp.splitlines()
    if drop:
        lines = [line for line in lines if not line.startswith(drop)]
    text = "\r\n".join(lines) + "\r\n"
    if replace:
        text = text.replace(*replace)
    return text


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"drop": "a=fingerprint"}, "fingerprint"),
        ({"replace": ("a=sendonly", "a=recvonly")}, "recvonly"),
        ({"replace": ("a=sendonly", "a=inactive")}, "inactive"),
    ],
)
async def test_unusable_offers_are_400(
    service: Service, offer: str, change: dict[str, Any], needle: str
) -> None:
    """No fingerprint (would connect nowhere) or a non-sending audio section → 400."""
    status, text, _ = await post(
        service, _edit(offer, **change), token=service.token("publish", "s", "client")
    )
    assert status == 400, text
    assert needle in text.lower()
    assert not service.sessions.legs_by_resource


async def test_wrong_content_type_is_415(service: Service, offer: str) -> None:
    status, text, _ = await post(
        service, offer, content_type="text/plain", token=service.token("publish", "s", "client")
    )
    assert status == 415
    assert "application/sdp" in text
    assert not service.sessions.sessions


async def test_oversize_offer_is_413(service: Service, offer: str) -> None:
    body = offer + "a=x-padding:" + "z" * 70000 + "\r\n"
    status, _, _ = await post(service, body, token=service.token("publish", "s", "client"))
    assert status == 413
    assert not service.sessions.sessions


@pytest.mark.parametrize(
    ("token_kind", "expected"),
    [
        ("missing", 401),
        ("garbage", 401),
        ("expired", 401),
        ("wrong-secret", 401),
        ("watch", 403),
        ("admin", 403),
    ],
)
async def test_post_auth(service: Service, offer: str, token_kind: str, expected: int) -> None:
    """Missing/invalid/expired token → 401; a token of another scope → 403."""
    from qualmon.service.auth import issue_token

    tokens = {
        "missing": None,
        "garbage": "not-a-jwt",
        "expired": issue_token(
            "test-secret-" + "x" * 24,
            scope="publish",
            session="s",
            role="client",
            ttl_seconds=1,
            now=0,
        ),
        "wrong-secret": issue_token(
            "another-secret-0123456789-0123456789", scope="publish", session="s", role="client"
        ),
        "watch": service.token("watch", "s"),
        "admin": service.token("admin"),
    }
    status, text, headers = await post(service, offer, token=tokens[token_kind])
    assert status == expected, text
    if expected == 401:
        assert headers["WWW-Authenticate"].startswith("Bearer")
    assert not service.sessions.sessions


async def test_whip_requests_are_counted_by_code(service: Service, offer: str) -> None:
    await post(service, offer, token=None)
    await post(service, offer, token=service.token("publish", "s", "client"))
    counter = service.metrics.registry.get_sample_value
    assert counter("qualmon_whip_requests_total", {"method": "POST", "code": "401"}) == 1
    assert counter("qualmon_whip_requests_total", {"method": "POST", "code": "201"}) == 1


async def test_an_answer_says_what_it_cost_here(service: Service, offer: str) -> None:
    """A 201 carries Server-Timing `answer;dur=<ms>` and is observed once in
    qualmon_whip_offer_seconds (no session label); a refusal is in neither."""
    status, _, refused = await post(
        service, "v=0\r\n", token=service.token("publish", "s", "client")
    )
    assert status == 400 and "Server-Timing" not in refused
    status, body, headers = await post(
        service, offer, token=service.token("publish", "s", "client")
    )
    assert status == 201, body
    name, _, duration = headers["Server-Timing"].partition(";dur=")
    assert name == "answer" and 0 < float(duration) < 60_000
    sample = service.metrics.registry.get_sample_value
    assert sample("qualmon_whip_offer_seconds_count") == 1
    observed = sample("qualmon_whip_offer_seconds_sum")
    assert observed == pytest.approx(float(duration) / 1000, abs=0.00001)


@pytest.fixture
def settings() -> Any:
    # Short timers so lifecycle tests run in seconds; a cap of 2 legs for the 503 test.
    return make_settings(
        max_legs=2, stall_after_seconds=1.0, lost_after_seconds=3.0, connect_timeout_seconds=2.0
    )


async def test_leg_cap_is_503_and_allocates_nothing(service: Service, offer: str) -> None:
    """Over the cap → 503 with Retry-After; a reconnect of a live role is still allowed."""
    for session in ("a", "b"):
        status, _, _ = await post(service, offer, token=service.token("publish", session, "client"))
        assert status == 201
    fds = await baseline_fds(service)
    status, _text, headers = await post(
        service, offer, token=service.token("publish", "c", "client")
    )
    assert status == 503
    assert int(headers["Retry-After"]) > 0
    assert "c" not in service.sessions.sessions
    assert open_fds() <= fds
    status, _, _ = await post(service, offer, token=service.token("publish", "a", "client"))
    assert status == 201


async def test_never_connected_offer_is_reaped(service: Service, offer: str) -> None:
    """An answered offer whose peer never connects is closed by our own timer."""
    status, _, headers = await post(service, offer, token=service.token("publish", "z", "client"))
    assert status == 201
    resource = headers["Location"].removeprefix("/whip/")
    leg = service.sessions.legs_by_resource[resource]
    await wait_for(lambda: leg.state == "ended", timeout=6.0, what="reaping")
    assert leg.end_reason == "never_connected"
    await wait_for(lambda: not service.sessions.sessions["z"].live, timeout=2.0, what="session end")


async def test_reconnect_replaces_leg_and_counts(service: Service, publishers: Any) -> None:
    """A second POST for a live (session, role) replaces the leg; totals carry over."""
    first = await publishers(service, "r", "client")
    await wait_for(
        lambda: service.sessions.sessions["r"].slots["client"].leg.stats.packets_received > 20,  # type: ignore[union-attr]
        what="first leg media",
    )
    second = await publishers(service, "r", "client")
    await wait_for(
        lambda: service.sessions.sessions["r"].slots["client"].leg.stats.packets_received > 20,  # type: ignore[union-attr]
        what="second leg media",
    )
    doc = await service.session_json("r")
    leg = doc["legs"]["client"]
    assert leg["reconnects"] == 1
    assert leg["state"] == "live"
    assert service.sessions.live_leg_count() == 1
    assert leg["packets_received"] > 40
    assert (
        service.metrics.registry.get_sample_value(
            "qualmon_leg_reconnects_total", {"role": "client"}
        )
        == 1
    )
    assert first.resource_url != second.resource_url


async def test_stalled_then_lost(service: Service, publishers: Any) -> None:
    """No RTP for stall_after → stalled; for lost_after → ended as lost, and the session ends."""
    publisher = await publishers(service, "k", "therapist")
    leg = service.sessions.sessions["k"].slots["therapist"].leg
    assert leg is not None
    await wait_for(lambda: leg.state == "live", what="live")
    publisher.track.pause()
    await wait_for(lambda: leg.state == "stalled", timeout=3.0, what="stalled")
    await wait_for(lambda: leg.state == "ended", timeout=5.0, what="lost")
    assert leg.end_reason == "lost"
    doc = await service.session_json("k")
    assert doc["state"] == "ended"
    assert doc["ended_at"].endswith("Z")
    assert doc["legs"]["therapist"]["end_reason"] == "lost"


async def test_delete_ends_leg_and_session(service: Service, publishers: Any) -> None:
    publisher = await publishers(service, "d", "client")
    await publisher.stop()
    assert not service.sessions.legs_by_resource
    doc = await service.session_json("d")
    assert doc["state"] == "ended"
    assert doc["legs"]["client"]["end_reason"] == "closed"


async def test_delete_and_patch_need_the_right_token(service: Service, publishers: Any) -> None:
    """Unknown resource → 404; another session's publish token → 403; no token → 401."""
    publisher = await publishers(service, "p", "client")
    assert publisher.resource_url is not None
    url = publisher.resource_url
    other = service.auth("publish", "other", "client")
    async with service.http.delete(url, headers=other) as r:
        assert r.status == 403
    async with service.http.delete(url) as r:
        assert r.status == 401
    async with service.http.delete(
        service.whip_url + "/nope", headers=service.auth("publish", "p", "client")
    ) as r:
        assert r.status == 404
    assert service.sessions.live_leg_count() == 1


async def test_patch_trickle_and_ice_restart(service: Service, publishers: Any) -> None:
    """Trickle fragment → 204; new ICE credentials (restart) → 422; wrong type → 415."""
    publisher = await publishers(service, "t", "client")
    url = publisher.resource_url
    assert url is not None
    auth = service.auth("publish", "t", "client")
    frag = "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
    hdrs = {**auth, "Content-Type": "application/trickle-ice-sdpfrag"}
    async with service.http.patch(url, data=frag, headers=hdrs) as r:
        assert r.status == 204
    restart = "a=ice-ufrag:newufrag\r\na=ice-pwd:newpasswordnewpassword12\r\n" + frag
    async with service.http.patch(url, data=restart, headers=hdrs) as r:
        assert r.status == 422
    async with service.http.patch(
        url, data=frag, headers={**auth, "Content-Type": "text/plain"}
    ) as r:
        assert r.status == 415
    async with service.http.patch(url, data="a=candidate:garbage\r\n", headers=hdrs) as r:
        assert r.status == 400
    assert service.sessions.live_leg_count() == 1


async def test_simultaneous_joins_share_one_session(service: Service, publishers: Any) -> None:
    """Therapist and client POSTing at the same moment end up in the same session."""
    await asyncio.gather(
        publishers(service, "both", "therapist"), publishers(service, "both", "client")
    )
    doc = await service.session_json("both")
    assert set(doc["legs"]) == {"therapist", "client"}
    assert service.sessions.live_leg_count() == 2


async def test_cap_holds_under_concurrent_posts(service: Service) -> None:
    """Five POSTs at once against a cap of two: exactly two are admitted."""
    pcs_offers = [await make_offer() for _ in range(5)]
    try:
        results = await asyncio.gather(
            *(
                post(service, sdp, token=service.token("publish", f"c{i}", "client"))
                for i, (_, sdp) in enumerate(pcs_offers)
            )
        )
    finally:
        for pc, _ in pcs_offers:
            await pc.close()
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [201, 201, 503, 503, 503]
    assert service.sessions.live_leg_count() == 2


def decoder_threads() -> list[str]:
    import threading

    return [t.name for t in threading.enumerate() if t.name.endswith("-decoder")]


@pytest.mark.parametrize("speech", [True, False], ids=["speech-on", "speech-off"])
async def test_aiortc_decoder_is_not_run(publishers: Any, speech: bool) -> None:
    """Opus is decoded from tapped payloads (or not at all): aiortc's thread is stopped."""
    async with run_service(make_settings(speech_enabled=speech)) as service:
        await publishers(service, "dec", "client")
        leg = service.sessions.sessions["dec"].slots["client"].leg
        assert leg is not None
        await wait_for(lambda: leg.stats.packets_received > 100, what="media")
        assert decoder_threads() == []
        if speech:
            await wait_for(lambda: leg.segmenter.speech_seconds() > 0.5, what="speech found")
        else:
            assert leg.segmenter.first_frame_at is None


class SpeechLikeTrack(MediaStreamTrack):
    """Raw 48 kHz frames in real time, for codecs aiortc must encode itself (G.711)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pcm = speech_like_pcm(10.0)
        self._index = 0
        self._started: float | None = None

    async def recv(self) -> av.AudioFrame:
        loop = asyncio.get_running_loop()
        if self._started is None:
            self._started = loop.time()
        due = self._started + self._index * 0.020
        await asyncio.sleep(max(0.0, due - loop.time()))
        start = (self._index * 960) % (len(self._pcm) - 960)
        frame = av.AudioFrame.from_ndarray(
            self._pcm[start : start + 960].reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = 48000, self._index * 960
        frame.time_base = fractions.Fraction(1, 48000)
        self._index += 1
        return frame


async def test_pcmu_leg_takes_the_frame_path(service: Service) -> None:
    """A codec we do not decode ourselves keeps aiortc's decoder and the resampler path."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver(SpeechLikeTrack(), direction="sendonly")
    pcmu = [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.name == "PCMU"]
    transceiver.setCodecPreferences(pcmu)
    try:
        await pc.setLocalDescription(await pc.createOffer())
        status, answer, headers = await post(
            service, pc.localDescription.sdp, token=service.token("publish", "g711", "client")
        )
        assert status == 201, answer
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        leg = service.sessions.legs_by_resource[headers["Location"].removeprefix("/whip/")]
        await wait_for(lambda: leg.stats.packets_received >= 150, what="3 s of PCMU")
        assert isinstance(leg.source, WhipSource)
        assert leg.source._opus_speech is None and leg.source._speech is not None
        assert decoder_threads() == ["audio-decoder"]
        await wait_for(lambda: leg.vad_frames >= 100, what="PCMU audio classified")
        await wait_for(lambda: leg.segmenter.speech_seconds() > 0.5, what="speech found")
    finally:
        await pc.close()


async def in_two_parts(data: bytes, pause: float = 0.2) -> AsyncIterator[bytes]:
    """A body sent as two writes with a pause between: two TCP segments for the server."""
    half = len(data) // 2
    yield data[:half]
    await asyncio.sleep(pause)
    yield data[half:]


async def test_offer_in_two_segments_is_read_whole(service: Service, offer: str) -> None:
    """A body still arriving when the handler starts reading is read to its end, not cut."""
    status, answer, _ = await post(
        service, in_two_parts(offer.encode()), token=service.token("publish", "split", "client")
    )
    assert status == 201, answer
    assert "a=recvonly" in answer


async def test_oversize_chunked_offer_is_413(service: Service, offer: str) -> None:
    """Without a Content-Length the cap is enforced while reading."""
    padded = (offer + "a=x-padding:" + "z" * 70000 + "\r\n").encode()
    status, text, _ = await post(
        service, in_two_parts(padded), token=service.token("publish", "big", "client")
    )
    assert status == 413, text
    assert "larger than 65536 bytes" in text
    assert not service.sessions.sessions


async def test_offer_answered_during_shutdown_is_closed(
    service: Service, offer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shutdown beginning while aiortc answers: 503 + Retry-After and the new leg closed,
    not left running where close_all can no longer see it."""
    real_start = WhipSource.start
    sources: list[WhipSource] = []

    async def start_then_shut_down(self: WhipSource) -> str:
        sources.append(self)
        answer = await real_start(self)  # real aiortc; only the timing is chosen
        service.sessions.accepting = False  # what _on_shutdown does first
        return answer

    monkeypatch.setattr(WhipSource, "start", start_then_shut_down)
    status, text, headers = await post(
        service, offer, token=service.token("publish", "d", "client")
    )
    assert status == 503, text
    assert "shutting down" in text
    assert int(headers["Retry-After"]) > 0
    (source,) = sources
    leg = source._feed  # the leg it fed: never registered, so only reachable from here
    assert isinstance(leg, Leg)
    assert (leg.state, leg.end_reason) == ("ended", "shutdown")
    await wait_for(lambda: source.pc.connectionState == "closed", what="peer connection closed")
    assert not service.sessions.legs_by_resource and not service.sessions.sessions


async def test_stop_iteration_inside_aiortc_counts_as_a_refusal() -> None:
    """PEP 479 turns a StopIteration escaping a coroutine into RuntimeError: that is the
    refusal to map to 400; other RuntimeErrors are ours and stay 500."""
    from qualmon.service.whip import _refused_by_aiortc

    async def answer() -> None:
        next(iter(()))

    with pytest.raises(RuntimeError) as caught:
        await answer()
    assert _refused_by_aiortc(caught.value)
    assert not _refused_by_aiortc(RuntimeError("a bug of ours"))
    assert _refused_by_aiortc(ValueError("bad fingerprint"))
