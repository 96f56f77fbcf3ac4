"""Video through the whole path: an aiortc publisher's VP8 (scripted camera) → impairment →
WHIP → tapped RTP → the leg's VideoStats → the session API, against the camera's own record
of when it handed each frame over."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from qualmon.sessions.leg import Leg
from qualmon.sim.impairment import ImpairmentConfig
from qualmon.sim.publisher import WhipPublisher
from qualmon.sim.video import ScriptedVideoTrack

from ..conftest import Service, wait_for

pytestmark = pytest.mark.realtime

Start = Callable[..., Awaitable[WhipPublisher]]
FREEZE_TOLERANCE_SECONDS = 0.060
STALL_SECONDS = 0.400
STALL_AFTER_FRAMES = (60, 120, 180)
"Two seconds apart at 30 fps: each stall has left the 30-frame window before the next."


def leg_of(service: Service, session: str, role: str = "client") -> Leg | None:
    found = service.sessions.sessions.get(session)
    return found.slots[role].leg if found else None


def video_now(service: Service, session: str) -> Any:
    leg = leg_of(service, session)
    return leg.video.snapshot(leg._clock()) if leg is not None and leg.video else None


def decoder_threads() -> list[str]:
    """aiortc names its per-receiver decoder threads '<kind>-decoder'."""
    return [t.name for t in threading.enumerate() if t.name.endswith("-decoder")]


async def test_three_stalls_are_three_freezes_of_their_length(
    service: Service, publishers: Start
) -> None:
    """Three 400 ms stalls at 30 fps: 3 freezes, each as long as its stall's inter-frame
    delay ±60 ms; no other freeze."""
    camera = ScriptedVideoTrack(stalls=dict.fromkeys(STALL_AFTER_FRAMES, STALL_SECONDS))
    await publishers(service, "v-stall", "client", video=camera)
    measured: list[float] = []
    before = 0.0
    for count in range(1, len(STALL_AFTER_FRAMES) + 1):
        snapshot = await wait_for(
            lambda c=count: (v := video_now(service, "v-stall")) and v.freezes >= c and v,
            timeout=20.0,
            what=f"freeze {count}",
        )
        measured.append(snapshot.freeze_seconds - before)
        before = snapshot.freeze_seconds
    # Beyond the last stall by 2 s: nothing else froze.
    await wait_for(lambda: len(camera.handed_over) > STALL_AFTER_FRAMES[-1] + 60, timeout=20.0)
    final = video_now(service, "v-stall")
    truth = [camera.inter_frame_delays()[i] for i in STALL_AFTER_FRAMES]
    print(
        "freezes measured", [round(m, 3) for m in measured], "truth", [round(t, 3) for t in truth]
    )
    assert final.freezes == 3, (final, truth)
    for got, sent in zip(measured, truth, strict=True):
        assert abs(got - sent) <= FREEZE_TOLERANCE_SECONDS, (measured, truth)
    assert final.pauses == 0


async def test_steady_camera_is_30_fps_without_freezes_and_audio_as_before(
    service: Service, publishers: Start
) -> None:
    """A steady 320×240 camera at 30 fps: 30 ± 1 frames per second, no freeze, the size as
    sent; the same leg's audio is measured as it always was; no aiortc decoder thread."""
    camera = ScriptedVideoTrack()
    await publishers(service, "v-steady", "client", video=camera)
    await wait_for(lambda: len(camera.handed_over) >= 150, timeout=20.0, what="5 s of video")
    video = video_now(service, "v-steady")
    print("steady fps", video.frames_per_second, "frames", video.frames_received)
    assert 29.0 <= video.frames_per_second <= 31.0, video
    assert video.freezes == 0 and video.frames_incomplete == 0, video
    assert (video.width, video.height) == (320, 240)
    assert video.codec == "vp8" and video.keyframes >= 1 and video.packets_lost == 0
    assert video.bitrate_bps > 0
    assert decoder_threads() == []
    doc = await service.session_json("v-steady")
    client = doc["legs"]["client"]
    assert client["state"] == "live" and client["packets_received"] >= 200
    assert client["packets_lost"] == 0 and client["mos"] is not None
    assert client["video"]["width"] == 320 and client["video"]["freezes"] == 0
    leg = leg_of(service, "v-steady")
    assert leg is not None and leg.vad_frames > 0, "the speech path still classifies audio"


async def test_loss_makes_incomplete_frames_not_freezes(
    service: Service, publishers: Start
) -> None:
    """5 % of RTP lost (audio and video alike; frames of several packets): frames go
    incomplete and packets are counted lost, but complete frames do not freeze."""
    camera = ScriptedVideoTrack(picture="noise")
    await publishers(
        service,
        "v-loss",
        "client",
        video=camera,
        impairment=ImpairmentConfig(loss_ratio=0.05, seed=16),
    )
    await wait_for(lambda: len(camera.handed_over) >= 180, timeout=25.0, what="6 s of video")
    video = video_now(service, "v-loss")
    print("loss", video)
    assert video.frames_incomplete > 0 and video.packets_lost > 0, video
    assert 0.01 <= video.loss_ratio <= 0.12, video
    assert video.frames_received > 100
    assert video.freezes == 0, video
    doc = await service.session_json("v-loss")
    assert doc["legs"]["client"]["packets_lost"] > 0


async def test_an_audio_only_leg_has_no_video(service: Service, publishers: Start) -> None:
    await publishers(service, "v-none", "client")
    await wait_for(
        lambda: (leg := leg_of(service, "v-none")) is not None and leg.stats.packets_received > 10,
        timeout=15.0,
    )
    doc = await service.session_json("v-none")
    assert doc["legs"]["client"]["video"] is None
