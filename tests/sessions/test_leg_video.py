"""A leg's video: fed by its source beside the audio, measured by core.video, in every
snapshot of the leg and its role; an audio-only leg has none."""

from __future__ import annotations

from qualmon.config import Settings
from qualmon.sessions.session import Session

from ..fakes import FakeClock, fake_leg, join_session

FRAME_SECONDS = 1 / 30


async def test_an_audio_only_leg_has_no_video(settings: Settings, clock: FakeClock) -> None:
    """Without use_video_codec there is nothing to measure: video packets are ignored."""
    leg, source = fake_leg(settings, clock)
    source.send(10)
    source.video_frame(0)
    leg.note_keyframe_request()
    assert leg.video is None and leg.snapshot(clock()).video is None


async def test_video_frames_are_measured_beside_the_audio(
    settings: Settings, clock: FakeClock
) -> None:
    leg, source = fake_leg(settings, clock)
    leg.use_video_codec("vp8")
    for number in range(30):
        clock.advance(FRAME_SECONDS)
        source.video_frame(number)
    leg.note_keyframe_request()
    video = leg.snapshot(clock()).video
    assert video is not None and video.codec == "vp8"
    assert (video.frames_received, video.packets_received) == (30, 60)
    assert video.keyframe_requests == 1 and video.freezes == 0
    # Video says nothing of the leg's liveness: that is the audio's.
    assert leg.state == "connecting" and leg.stats.packets_received == 0


async def test_the_same_codec_again_keeps_the_measures(
    settings: Settings, clock: FakeClock
) -> None:
    leg, source = fake_leg(settings, clock)
    leg.use_video_codec("vp8")
    source.video_frame(0)
    stats = leg.video
    leg.use_video_codec("vp8")
    assert leg.video is stats
    leg.use_video_codec("h264")
    assert leg.video is not stats and leg.video is not None and leg.video.codec == "h264"


async def test_an_ended_leg_takes_no_more_video(settings: Settings, clock: FakeClock) -> None:
    leg, source = fake_leg(settings, clock)
    leg.use_video_codec("vp8")
    source.send(5)
    source.video_frame(0)
    await leg.close("closed")
    clock.advance(FRAME_SECONDS)
    source.video_frame(1)
    video = leg.snapshot(clock()).video
    assert video is not None and video.packets_received == 2


async def test_the_role_shows_its_current_legs_video(settings: Settings, clock: FakeClock) -> None:
    session = Session("s1", wall_clock=clock.wall)
    leg, source = join_session(session, "client", settings, clock)
    join_session(session, "therapist", settings, clock)
    leg.use_video_codec("vp8")
    source.send(5)
    for number in range(10):
        clock.advance(FRAME_SECONDS)
        source.video_frame(number)
    roles = session.snapshot(clock()).roles
    assert roles["therapist"].video is None
    client = roles["client"].video
    assert client is not None and client.frames_received == 10
