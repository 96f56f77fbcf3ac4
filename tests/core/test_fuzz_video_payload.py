"""Video payload headers and packet streams from anywhere: read or "unknown", measured,
never an exception."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qualmon.core.video import VideoCodec, VideoSnapshot, VideoStats
from qualmon.core.video_payload import (
    MAX_DIMENSION_PIXELS,
    PayloadInfo,
    parse_h264,
    parse_vp8,
    sps_picture_size,
)

from .test_video_payload import IDR, LIBVPX_KEYFRAME_320X180, REAL_SPS, stap_a
from .video_streams import PPS, SPS_1280X720_HIGH, Vp8Sender, h264_frame, vp8_descriptor

pytestmark = pytest.mark.fuzz

VP8_REAL = (
    b"\x10" + LIBVPX_KEYFRAME_320X180 + bytes(8),
    vp8_descriptor(start=True, picture_id=300) + LIBVPX_KEYFRAME_320X180,
    b"\x90\xf0\x81\x23\x07\x40" + LIBVPX_KEYFRAME_320X180,
    vp8_descriptor(start=False, picture_id=1) + bytes(8),
)
H264_REAL = (
    stap_a(SPS_1280X720_HIGH, PPS, IDR),
    *(bytes.fromhex(sps) for sps, _, _ in REAL_SPS),
    IDR,
    b"\x7c\x85\x88\x84",
    b"\x7c\x45\x00",
)


def _mutate(data: bytes, at: int, value: int, cut: int) -> bytes:
    at %= max(len(data), 1)
    changed = data[:at] + bytes([value]) + data[at + 1 :]
    return changed[:cut]


def payloads(real: tuple[bytes, ...]) -> st.SearchStrategy[bytes]:
    """Real headers, one byte changed and cut anywhere, or any bytes."""
    base = st.sampled_from(real)
    return st.one_of(
        base,
        st.builds(_mutate, base, st.integers(0, 80), st.integers(0, 255), st.integers(0, 80)),
        st.builds(lambda b, cut: b[:cut], base, st.integers(0, 80)),
        st.binary(max_size=64),
    )


def _sane(info: PayloadInfo | None) -> None:
    if info is None:
        return
    assert isinstance(info.frame_start, bool) and isinstance(info.keyframe, bool)
    assert (info.width is None) == (info.height is None)
    if info.width is not None and info.height is not None:
        assert 0 < info.width <= MAX_DIMENSION_PIXELS
        assert 0 < info.height <= MAX_DIMENSION_PIXELS


@given(payloads(VP8_REAL))
def test_vp8_headers(payload: bytes) -> None:
    _sane(parse_vp8(payload))


@given(payloads(H264_REAL))
def test_h264_headers(payload: bytes) -> None:
    _sane(parse_h264(payload))
    size = sps_picture_size(payload)
    assert size is None or all(0 < n <= MAX_DIMENSION_PIXELS for n in size)


PACKET = st.tuples(
    st.sampled_from([1, 1, 1, 1, 2]),  # ssrc
    st.integers(0, 65535),
    st.integers(0, (1 << 32) - 1),
    st.booleans(),
    st.one_of(payloads(VP8_REAL), payloads(H264_REAL)),
    st.floats(-1.0, 10.0, allow_nan=False),  # arrival step (backwards too)
)


@given(st.sampled_from(["vp8", "h264"]), st.lists(PACKET, max_size=60))
def test_random_packets(
    codec: VideoCodec, packets: list[tuple[int, int, int, bool, bytes, float]]
) -> None:
    """Any packets at all: measured without an exception, and the measures stay sane."""
    stats, at = VideoStats(codec), 100.0
    for ssrc, seq, ts, marker, payload, step in packets:
        at += step
        stats.on_packet(
            ssrc=ssrc,
            sequence_number=seq,
            rtp_timestamp=ts,
            marker=marker,
            payload=payload,
            arrival_seconds=at,
        )
    _check(stats, at)


@given(
    st.sampled_from(["vp8", "h264"]),
    st.lists(st.tuples(st.integers(0, 400), st.sampled_from(["drop", "dup", "swap", "late"]))),
    st.integers(0, 65535),
    st.integers(0, (1 << 32) - 1),
)
def test_real_streams_damaged(
    codec: VideoCodec, damage: list[tuple[int, str]], seq: int, ts: int
) -> None:
    """A real stream with packets dropped, duplicated, swapped and delayed: never more
    frames than were sent, never an exception."""
    if codec == "vp8":
        packets = Vp8Sender(seq=seq, ts=ts).frames(120, 0.0)
    else:
        packets = []
        for i in range(120):
            frame = h264_frame(seq=seq, ts=ts + i * 3000, at=i / 30, key=i % 40 == 0)
            packets += frame
            seq += len(frame)
    order = list(range(len(packets)))
    for at, kind in damage:
        at %= len(order)
        if kind == "drop" and len(order) > 1:
            del order[at]
        elif kind == "dup":
            order.insert(at, order[at])
        elif kind == "swap":
            order[at], order[-1 - at] = order[-1 - at], order[at]
        else:
            order.append(order.pop(at))
    stats = VideoStats(codec)
    for i in order:
        p = packets[i]
        stats.on_packet(
            ssrc=1,
            sequence_number=p.seq,
            rtp_timestamp=p.ts,
            marker=p.marker,
            payload=p.payload,
            arrival_seconds=p.at,
        )
    snap = _check(stats, 5.0)
    assert snap.frames_received + snap.frames_incomplete <= 120
    if not damage:
        assert (snap.frames_received, snap.freezes) == (120, 0)


def _check(stats: VideoStats, now: float) -> VideoSnapshot:
    snap = stats.snapshot(now)
    counts = (snap.frames_received, snap.frames_incomplete, snap.freezes, snap.pauses)
    assert all(n >= 0 for n in counts)
    assert snap.keyframes >= 0 and snap.packets_received >= 0 and snap.packets_lost >= 0
    assert 0.0 <= snap.loss_ratio <= 1.0
    for value in (
        snap.freeze_seconds,
        snap.frames_per_second,
        snap.bitrate_bps,
        snap.jitter_seconds,
    ):
        assert math.isfinite(value) and value >= 0.0
    return snap
