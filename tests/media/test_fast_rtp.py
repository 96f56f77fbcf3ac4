"""The short way for a measured audio leg's packets (media/fast_rtp.py) changes no number.

Against the impairment's own record of the same packets, with the short way on (as shipped)
and off (QUALMON_FAST_RTP=off): the leg counts every delivered packet and exactly the dropped
ones, and aiortc's own stream statistics (what its RTCP receiver reports tell the sender)
count the same. With it on, the packets did take the short way: the accuracy tests of
tests/truth measure through it.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from qualmon.media import fast_rtp
from qualmon.media.fast_rtp import FastAudioPath
from qualmon.sim.impairment import ImpairmentConfig

from ..conftest import make_settings, run_service, wait_for
from ..truth.test_network import dropped_before_last_delivered, quiesce


def _audio_receiver(service: Any, session: str) -> Any:
    (leg,) = [
        leg for leg in service.sessions.legs_by_resource.values() if leg.session_id == session
    ]
    pc: RTCPeerConnection = leg.source.pc
    (transceiver,) = [t for t in pc.getTransceivers() if t.kind == "audio"]
    return transceiver.receiver


@pytest.mark.realtime
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "usual"])
async def test_the_short_way_counts_what_the_usual_way_counts(publishers: Any, fast: bool) -> None:
    async with run_service(make_settings(fast_rtp=fast)) as service:
        publisher = await publishers(
            service, "fast", "client", impairment=ImpairmentConfig(loss_ratio=0.05, seed=7)
        )
        assert publisher.impairment is not None

        async def enough() -> bool | None:
            delivered = sum(1 for r in publisher.impairment.records if r.delivered_at)
            return True if delivered >= 250 else None

        await wait_for(enough, timeout=30.0, what="250 packets delivered")
        leg = await quiesce(service, publisher, "fast", "client")
        dropped, sent = dropped_before_last_delivered(publisher)
        delivered = sum(1 for r in publisher.impairment.records if r.delivered_at is not None)
        tolerance = max(1, sent // 1000)  # that of tests/truth/test_network.py
        assert dropped > 0
        assert leg["packets_received"] == delivered  # quiesce waited for it
        assert abs(leg["packets_lost"] - dropped) <= tolerance, (leg["packets_lost"], dropped)

        receiver = _audio_receiver(service, "fast")
        (stream,) = getattr(receiver, fast_rtp.RECEIVER_STREAMS).values()
        assert stream.packets_received == delivered
        assert abs(stream.packets_lost - dropped) <= tolerance, (stream.packets_lost, dropped)

        path: FastAudioPath | None = getattr(receiver.transport, "_qualmon_fast_path", None)
        if fast:
            assert path is not None
            # All but the first few (routed by aiortc, or queued behind DTLS) went short.
            assert path.packets >= delivered - 10, (path.packets, delivered)
            assert path.failures == 0
        else:
            assert path is None
        await publisher.stop()


async def test_the_internals_it_relies_on_still_exist() -> None:
    """A new aiortc or aioice that renames one fails here, not in production (where the
    short way would stay off, logged): installing on a real answering peer works."""
    offerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    answerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        offerer.addTransceiver("audio", direction="sendonly")
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        (transceiver,) = answerer.getTransceivers()
        receiver = transceiver.receiver
        uninstall = fast_rtp.install_fast_audio_path(receiver, lambda packet, at: None)
        assert uninstall is not None
        connection = receiver.transport.transport._connection
        assert connection.data_received == receiver.transport._qualmon_fast_path._data_received
        uninstall()
    finally:
        await offerer.close()
        await answerer.close()


async def test_unknown_internals_leave_aiortc_as_it_was(caplog: pytest.LogCaptureFixture) -> None:
    class Renamed:
        transport = object()  # a DTLS transport without what the short way needs

    with caplog.at_level("WARNING"):
        assert fast_rtp.install_fast_audio_path(Renamed(), lambda p, a: None) is None  # type: ignore[arg-type]
    assert "fast RTP path is off" in caplog.text
