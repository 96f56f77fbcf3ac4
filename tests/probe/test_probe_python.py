"""qualmon.probe.Probe in an aiortc app: posting to the service, or a callback and metrics only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack
from prometheus_client import CollectorRegistry

from qualmon.media.ice import use_host_addresses
from qualmon.probe import Probe, ProbeSnapshot, session_from_token
from qualmon.sim.audio import EncodedAudioTrack, speech_like_packets

from ..conftest import Service, wait_for

pytestmark = pytest.mark.realtime


@dataclass
class Call:
    """An aiortc app's call: `sender` speaks, `receiver` (the app under test) listens."""

    sender: RTCPeerConnection
    receiver: RTCPeerConnection
    remote_track: MediaStreamTrack


@pytest.fixture
async def call() -> AsyncIterator[Call]:
    use_host_addresses(["127.0.0.1"])
    sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    tracks: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()
    receiver.on("track", tracks.put_nowait)
    try:
        sender.addTransceiver(EncodedAudioTrack(speech_like_packets()), direction="sendonly")
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        track = await asyncio.wait_for(tracks.get(), 5.0)
        await wait_for(
            lambda: receiver.connectionState == "connected", timeout=10.0, what="ICE connected"
        )
        yield Call(sender, receiver, track)
    finally:
        await receiver.close()
        await sender.close()
        use_host_addresses(None)


async def test_probe_posts_what_the_app_hears(service: Service, call: Call) -> None:
    """The app's probe creates the session's heard block from its own RTP taps and STUN RTT."""
    token = service.token("publish", "py-call", "client")
    assert session_from_token(token) == "py-call"
    probe = Probe(call.receiver, url=service.url, token=token, interval_seconds=0.6)
    # The app reads its remote track itself (here: it drains it).
    drain = asyncio.create_task(_drain(call.remote_track))
    await probe.start()
    try:

        async def heard(min_samples: int) -> dict[str, Any] | None:
            doc = await service.session_json("py-call")
            block = doc["legs"]["client"]["heard"]
            return block if block["samples"] >= min_samples else None

        async def exists() -> bool:
            return "py-call" in service.sessions.sessions

        await wait_for(exists, timeout=10.0, what="a session from the probe")
        first = await wait_for(lambda: heard(2), timeout=10.0, what="two probe samples")
        later = await wait_for(
            lambda: heard(first["samples"] + 1), timeout=5.0, what="a later probe sample"
        )
    finally:
        await probe.stop()
        drain.cancel()
        await asyncio.gather(drain, return_exceptions=True)
    assert later["packets_received"] > first["packets_received"] > 0
    assert later["total_samples_received"] > 0
    assert later["audible_concealment_ratio"] == 0.0  # loopback loses nothing
    assert later["loss_ratio"] == 0.0
    assert 0 <= later["jitter_seconds"] < 0.05
    assert later["rtt_seconds"] is not None and 0 < later["rtt_seconds"] < 0.05
    assert 4.0 < later["mos"] <= 4.5
    assert probe.posted >= 3
    doc = await service.session_json("py-call")
    assert doc["legs"]["client"]["state"] == "probe_only"


async def test_probe_without_a_service(call: Call) -> None:
    """Callback and registry only: snapshots with packets, gauges while running, none after."""
    snapshots: list[ProbeSnapshot] = []
    registry = CollectorRegistry()
    probe = Probe(
        call.receiver,
        on_sample=snapshots.append,
        registry=registry,
        track=call.remote_track,
        interval_seconds=0.5,
    )
    await probe.start()
    try:
        await wait_for(
            lambda: snapshots and snapshots[-1].packets_received > 0 and snapshots[-1].rtt_seconds,
            timeout=10.0,
            what="a snapshot with packets and RTT",
        )
        await wait_for(
            lambda: (snapshots[-1].speech_seconds or 0) > 0.5,
            timeout=10.0,
            what="speech in the incoming audio",
        )
        value = registry.get_sample_value
        assert (value("qualmon_probe_packets_received_total") or 0) > 0
        assert value("qualmon_probe_packets_lost_total") == 0
        assert value("qualmon_probe_jitter_seconds") is not None
        assert 0 < (value("qualmon_probe_rtt_seconds") or 0) < 0.05
        assert 4.0 < (value("qualmon_probe_mos") or 0) <= 4.5
        assert (value("qualmon_probe_speech_seconds_total") or 0) > 0.5
    finally:
        await probe.stop()
    last = snapshots[-1]
    assert last.streams == 1
    assert last.loss_ratio == 0.0 and last.dropouts == 0
    assert last.seconds_since_last_packet is not None and last.seconds_since_last_packet < 1.0
    assert last.mic_silent is False
    assert registry.get_sample_value("qualmon_probe_packets_received_total") is None
    with pytest.raises(ValueError, match="publish token"):
        Probe(call.receiver, url="http://127.0.0.1:1")


async def _drain(track: MediaStreamTrack) -> None:
    while True:
        await track.recv()
