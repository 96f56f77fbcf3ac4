"""Opus DTX for the benches' many live legs: one small packet per 400 ms of RTP time."""

from __future__ import annotations

import pytest

from qualmon.sim.audio import (
    DTX_EVERY_PACKETS,
    SAMPLES_PER_PACKET,
    EncodedAudioTrack,
    dtx_packets,
)


def test_dtx_packets_are_silence_a_few_bytes_each() -> None:
    packets = dtx_packets()
    assert len(packets) >= 100  # 2 s of 20 ms frames
    assert all(len(p) <= 4 for p in packets)


async def test_a_dtx_track_moves_its_timestamp_by_400_ms_a_packet() -> None:
    """The RTP timestamp (pts at 48 kHz) jumps 20 frames per packet; each packet is the next
    one of the list (the sequence number moves by one)."""
    packets = dtx_packets()
    track = EncodedAudioTrack(packets, every_packets=DTX_EVERY_PACKETS)
    first = await track.recv()
    second = await track.recv()  # paced: due 0.4 s after the first
    assert (first.pts, second.pts) == (0, DTX_EVERY_PACKETS * SAMPLES_PER_PACKET)
    assert bytes(second) == packets[1]
    track.stop()


def test_every_packets_must_be_positive() -> None:
    with pytest.raises(ValueError, match="every_packets must be >= 1"):
        EncodedAudioTrack(dtx_packets(), every_packets=0)
