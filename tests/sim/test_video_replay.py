"""The replayed VP8 test picture: ~1 Mbit/s at 30 fps, keyframes where asked, paced replay."""

from __future__ import annotations

import asyncio

from qualmon.sim.video import VIDEO_CLOCK_RATE_HZ
from qualmon.sim.video_replay import EncodedVideoTrack, encode_vp8


def test_encoded_picture_has_the_asked_rate_and_keyframes() -> None:
    frames = encode_vp8(2.0, width=320, height=240, bit_rate=500_000, keyframe_seconds=1.0)
    assert len(frames) == 60
    keyframes = [i for i, f in enumerate(frames) if not f[0] & 1]  # VP8: P bit 0 = key
    assert keyframes == [0, 30]
    bits_per_second = sum(map(len, frames)) * 8 / 2.0
    assert 350_000 < bits_per_second < 650_000


def test_track_replays_in_order_at_90_khz_and_loops() -> None:
    async def take(n: int) -> list[tuple[bytes, int]]:
        track = EncodedVideoTrack([b"\x10a", b"\x11b"], fps=100)
        return [(bytes(p), int(p.pts or 0)) for p in [await track.recv() for _ in range(n)]]

    got = asyncio.run(take(3))
    step = VIDEO_CLOCK_RATE_HZ // 100
    assert got == [(b"\x10a", 0), (b"\x11b", step), (b"\x10a", 2 * step)]
