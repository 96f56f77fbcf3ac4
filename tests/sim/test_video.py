"""The scripted camera: frames paced at 1/fps, stalls as scripted, RTP time following."""

from __future__ import annotations

import pytest

from qualmon.sim.video import ScriptedVideoTrack

from ..fakes import FakeClock


async def test_frames_follow_the_script_in_pts_and_hand_over_times(clock: FakeClock) -> None:
    """Frame 2 is followed by a 0.4 s stall: its successor's pts and hand-over are 0.4 s on."""
    camera = ScriptedVideoTrack(stalls={2: 0.4}, clock=clock)
    pts = []
    for _ in range(5):
        frame = await camera.recv()
        pts.append(frame.pts)
        assert (frame.width, frame.height) == (320, 240)
        clock.advance(0.4 if len(pts) == 3 else 0.03125)  # exactly due (no real sleep) or late
    assert pts[:4] == [0, 3000, 6000, 42000]
    assert camera.inter_frame_delays() == pytest.approx([0.03125, 0.03125, 0.4, 0.03125])
    camera.stop()


@pytest.mark.parametrize("picture", ["solid", "noise"])
async def test_each_frame_is_a_new_picture(clock: FakeClock, picture: str) -> None:
    camera = ScriptedVideoTrack(picture=picture, clock=clock)  # type: ignore[arg-type]
    first = (await camera.recv()).to_ndarray().copy()
    clock.advance(1.0)
    second = (await camera.recv()).to_ndarray()
    assert (first != second).any()
    camera.stop()


def test_sizes_must_suit_yuv_and_noise() -> None:
    with pytest.raises(ValueError, match="even"):
        ScriptedVideoTrack(width=321)
    with pytest.raises(ValueError, match="multiples of 8"):
        ScriptedVideoTrack(width=324, picture="noise")
