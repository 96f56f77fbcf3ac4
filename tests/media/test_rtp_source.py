"""RtpSource with a real leg and a real port: datagrams handed over as the socket would."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from qualmon.config import Settings
from qualmon.media.rtp_ports import PortPool
from qualmon.media.rtp_source import RtpAttachment, RtpParams, RtpSource
from qualmon.sessions.leg import Leg

from ..conftest import make_settings
from ..rtp_sender import RtpSender, client_speech, free_udp_port

SENDER = ("127.0.0.1", 50000)


@dataclass
class Attached:
    leg: Leg
    source: RtpSource
    attachment: RtpAttachment
    pool: PortPool


async def start(settings: Settings, *, srtp: bool) -> Attached:
    first = free_udp_port()
    pool = PortPool("127.0.0.1", first, first)
    leg = Leg(resource_id="r1", session_id="s1", role="client", settings=settings)
    source = RtpSource(
        leg, lease=pool.acquire(), params=RtpParams(payload_type=111, srtp=srtp), settings=settings
    )
    leg.source = source
    return Attached(leg, source, await source.start(), pool)


@pytest.fixture
async def srtp_leg(settings: Settings) -> AsyncIterator[Attached]:
    attached = await start(settings, srtp=True)
    yield attached
    await attached.leg.close("closed")


def sender_for(attached: Attached) -> RtpSender:
    key = attached.attachment.srtp_key_base64
    return RtpSender(attached.attachment.host, attached.attachment.port, srtp_key=key)


async def test_the_attachment_says_where_and_how(srtp_leg: Attached) -> None:
    attachment = srtp_leg.attachment
    assert attachment.srtp_suite == "AES_CM_128_HMAC_SHA1_80"
    assert attachment.srtp_key is not None and len(attachment.srtp_key) == 30
    assert base64.b64decode(attachment.srtp_key_base64 or "") == attachment.srtp_key
    assert attachment.host == "127.0.0.1" and srtp_leg.pool.in_use == 1


async def test_a_replayed_srtp_packet_is_ignored(srtp_leg: Attached) -> None:
    """libsrtp's replay check: a packet seen before is not measured twice."""
    with sender_for(srtp_leg) as sender:
        data = sender.packet(0, client_speech(4.0, 0.02)[0])
    srtp_leg.source.on_datagram(data, SENDER)
    srtp_leg.source.on_datagram(data, SENDER)
    assert srtp_leg.leg.stats.packets_received == 1
    assert srtp_leg.source.ignored == {"srtp": 1}


async def test_rtt_from_elsewhere_reaches_the_leg_until_it_closes(srtp_leg: Attached) -> None:
    """Plain RTP has no RTT of its own; an SFU integration hands one in."""
    assert srtp_leg.leg.rtt_seconds(srtp_leg.leg.created_at) is None
    srtp_leg.source.report_rtt(0.1)
    assert srtp_leg.leg.rtt.snapshot(srtp_leg.leg.created_at).rtt_seconds == pytest.approx(0.1)
    await srtp_leg.leg.close("closed")
    srtp_leg.source.report_rtt(0.5)
    assert srtp_leg.leg.rtt.snapshot(srtp_leg.leg.created_at).rtt_seconds == pytest.approx(0.1)


async def test_close_is_idempotent_frees_the_port_and_stops_counting(settings: Settings) -> None:
    attached = await start(settings, srtp=False)
    with sender_for(attached) as sender:
        packet = sender.packet(0, b"\x01")
    await attached.source.close()
    await attached.source.close()
    assert attached.pool.in_use == 0
    again = attached.pool.acquire()  # bound at once: the socket is closed, not pending
    assert again.port == attached.attachment.port
    again.release()
    attached.source.on_datagram(packet, SENDER)
    assert attached.leg.stats.packets_received == 0 and not attached.source.ignored
    await attached.leg.close("closed")


async def test_without_speech_only_the_network_is_measured() -> None:
    settings = make_settings(speech_enabled=False)
    attached = await start(settings, srtp=False)
    with sender_for(attached) as sender:
        for index, payload in enumerate(client_speech(5.0, 0.2)):
            attached.source.on_datagram(sender.packet(index, payload), SENDER)
    assert attached.leg.stats.packets_received == 10
    assert attached.source.frames_classified == 0
    await attached.leg.close("closed")


async def test_opus_payloads_are_classified_and_counted_after_close(settings: Settings) -> None:
    attached = await start(settings, srtp=False)
    with sender_for(attached) as sender:
        for index, payload in enumerate(client_speech(5.0, 0.2)):
            attached.source.on_datagram(sender.packet(index, payload), SENDER)
    assert attached.source.frames_classified == 10
    await attached.leg.close("closed")
    assert attached.source.frames_classified == 10
    assert attached.leg.vad_frames == 10
