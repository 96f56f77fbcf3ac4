"""Unit tests of every rule's measure, read from a session of fake legs."""

from __future__ import annotations

import pytest

from qualmon.config import Settings
from qualmon.core.heard import HeardTracker
from qualmon.sessions.leg import EndReason
from qualmon.sessions.session import Session
from qualmon.warnings.measures import measurements
from qualmon.warnings.video import VideoWindows

from ..fakes import FakeClock, give_video, join_session, probe_sample

LIVE_KINDS = {
    "connection_lost",
    "media_stopped",
    "high_loss",
    "high_loss_recent",
    "high_rtt",
    "high_jitter",
    "low_mos",
    "audio_dropouts",
    "mic_silent",
}


async def test_a_live_leg_has_every_leg_measure(settings: Settings, clock: FakeClock) -> None:
    """Values as the leg measures them; loss windows unknown until enough packets came."""
    session = Session("s1", wall_clock=clock.wall)
    leg, source = join_session(session, "client", settings, clock)
    source.send(30)
    source.rtt(0.120)
    clock.advance(0.5)
    values = measurements(session, clock(), talk_balance=False)
    assert {kind for kind, role in values if role == "client"} == LIVE_KINDS
    assert values[("connection_lost", "client")] == 0.0
    assert values[("media_stopped", "client")] == 0.5
    assert values[("high_loss", "client")] is None  # 30 packets: too few for any window
    assert values[("high_loss_recent", "client")] is None
    assert values[("high_rtt", "client")] == 0.120
    assert values[("high_jitter", "client")] == leg.stats.jitter_seconds
    assert values[("low_mos", "client")] == leg.mos(clock(), 0.120)
    assert values[("audio_dropouts", "client")] == 0.0
    assert values[("mic_silent", "client")] == 0.0
    assert ("talk_over_delay", None) not in values  # one role only


async def test_a_connecting_leg_has_no_media_yet(settings: Settings, clock: FakeClock) -> None:
    """Before its first packet: connected so far, media_stopped unknown, nothing else."""
    session = Session("s1", wall_clock=clock.wall)
    join_session(session, "client", settings, clock)
    assert measurements(session, clock(), talk_balance=False) == {
        ("connection_lost", "client"): 0.0,
        ("media_stopped", "client"): None,
    }


async def test_a_stalled_leg_has_only_media_stopped(settings: Settings, clock: FakeClock) -> None:
    """While stalled, the network measures of the last packets say nothing about now."""
    session = Session("s1", wall_clock=clock.wall)
    leg, source = join_session(session, "client", settings, clock)
    source.send(10)
    clock.advance(3.0)
    leg.tick(clock())
    assert leg.state == "stalled"
    assert measurements(session, clock(), talk_balance=False) == {
        ("connection_lost", "client"): 0.0,
        ("media_stopped", "client"): 3.0,
    }


@pytest.mark.parametrize(
    ("reason", "lost"),
    [
        ("lost", 1.0),
        ("failed", 1.0),
        ("closed", 0.0),
        ("replaced", 0.0),
        ("never_connected", 0.0),
        ("shutdown", 0.0),
    ],
)
async def test_connection_lost_only_for_a_leg_that_was_lost(
    settings: Settings, clock: FakeClock, reason: EndReason, lost: float
) -> None:
    """An ended leg has only connection_lost: 1.0 when lost or failed, else 0.0."""
    session = Session("s1", wall_clock=clock.wall)
    leg, source = join_session(session, "client", settings, clock)
    source.send(10)
    await leg.close(reason)
    assert measurements(session, clock(), talk_balance=False) == {
        ("connection_lost", "client"): lost
    }


async def test_high_loss_from_the_worst_window(settings: Settings, clock: FakeClock) -> None:
    """3 s of 20 % loss: too few packets for the 5 s window (200), so the worst is the 2 s
    window's 20 % scaled by 0.043 / 0.08; the 3 s recovery window reads 20 % as it is."""
    session = Session("s1", wall_clock=clock.wall)
    _, source = join_session(session, "client", settings, clock)
    source.send(150, lose={s for s in range(1000, 1150) if s % 5 == 0})
    values = measurements(session, clock(), talk_balance=False)
    loss, recent = values[("high_loss", "client")], values[("high_loss_recent", "client")]
    assert loss is not None and recent is not None
    assert recent == pytest.approx(0.2, abs=0.01)
    assert loss == pytest.approx(0.2 * 0.043 / 0.08, abs=0.006)  # 2 s window, scaled


async def test_audio_dropouts_counts_dropouts_in_speech_of_the_last_10_s(
    settings: Settings, clock: FakeClock
) -> None:
    """One dropout in speech counts for 10 s after it started."""
    session = Session("s1", wall_clock=clock.wall)
    leg, source = join_session(session, "client", settings, clock)
    source.send(50, speech=True)
    source.send(40, lose=set(range(1050, 1060)), speech=True)
    [dropout] = leg.dropouts_in_speech
    values = measurements(session, clock(), talk_balance=False)
    assert values[("audio_dropouts", "client")] == 1.0
    source.send(500 - 40 - 1)  # to 10 s after the dropout began, minus one packet
    clock.advance_to(dropout.started_at + 10.0)
    assert measurements(session, clock())[("audio_dropouts", "client")] == 1.0
    source.send(1)
    assert measurements(session, clock())[("audio_dropouts", "client")] == 0.0


async def test_mic_silent_after_30_s_without_voice(settings: Settings, clock: FakeClock) -> None:
    """30 s of audio with no speech and no level: 1.0."""
    session = Session("s1", wall_clock=clock.wall)
    _, source = join_session(session, "client", settings, clock)
    source.send(1)
    source.speak(100.0, 29.98, False)
    assert measurements(session, clock(), talk_balance=False)[("mic_silent", "client")] == 0.0
    source.speak(129.98, 0.02, False)
    assert measurements(session, clock(), talk_balance=False)[("mic_silent", "client")] == 1.0


@pytest.mark.parametrize(("rtt", "expected"), [(0.250, 0.0), (0.300, 0.0), (0.350, 2.0)])
async def test_talk_over_delay_only_with_rtt_above_300_ms(
    settings: Settings, clock: FakeClock, rtt: float, expected: float
) -> None:
    """Overlap seconds in the last 30 s, counted only while some leg's RTT is > 300 ms.

    Therapist speaks 4 s, client starts 2 s in for 3 s; each segment ends at its last
    speech frame: overlap [t+2, t+4] = 2 s.
    """
    session = Session("s1", wall_clock=clock.wall)
    _, therapist = join_session(session, "therapist", settings, clock)
    _, client = join_session(session, "client", settings, clock)
    therapist.send(1)
    client.send(1)
    client.rtt(rtt)
    t = clock()
    therapist.speak(t, 4.0, True)
    client.speak(t + 2.0, 3.0, True)
    clock.advance(5.0)
    values = measurements(session, clock(), talk_balance=False)
    assert values[("talk_over_delay", None)] == pytest.approx(expected)


async def test_talk_balance(settings: Settings, clock: FakeClock) -> None:
    """Share of the most talkative role over 5 min, once more than 30 s were spoken."""
    session = Session("s1", wall_clock=clock.wall)
    _, therapist = join_session(session, "therapist", settings, clock)
    _, client = join_session(session, "client", settings, clock)
    t = clock()
    therapist.speak(t - 60.0, 20.0, True)
    therapist.speak(t - 40.0, 1.0, False)
    client.speak(t - 30.0, 5.0, True)
    client.speak(t - 25.0, 1.0, False)
    assert measurements(session, t)[("talk_balance", None)] is None  # 25 s spoken
    therapist.speak(t - 20.0, 10.0, True)
    therapist.speak(t - 10.0, 1.0, False)
    # Therapist 20 + 10 s, client 5 s (segments end at their last frame).
    assert measurements(session, t)[("talk_balance", None)] == pytest.approx(30 / 35)
    assert ("talk_balance", None) not in measurements(session, t, talk_balance=False)


async def test_audible_concealment_from_a_fresh_probe(clock: FakeClock) -> None:
    """What the role hears, while its probe is fresh (10 s); unknown after."""
    session = Session("p1", wall_clock=clock.wall)
    tracker = HeardTracker()
    for i in range(3):
        tracker.add(probe_sample(i, concealed_per_interval=4800), received_at=clock())
        clock.advance(2.0)
    session.slot("client").heard = tracker
    values = measurements(session, clock(), talk_balance=False)
    assert values == {("audible_concealment", "client"): 4800 / 96_000}
    clock.advance(8.25)
    values = measurements(session, clock(), talk_balance=False)
    assert values == {("audible_concealment", "client"): None}


async def test_video_frozen_from_the_freezes_of_the_last_30_s(
    settings: Settings, clock: FakeClock
) -> None:
    """A video leg has video_frozen (30 s) and its recovery measure (15 s), from the freezes
    its VideoSnapshot counted since the session's windows first looked at it."""
    session = Session("s1", wall_clock=clock.wall)
    leg, source = join_session(session, "client", settings, clock)
    video = give_video(leg)
    windows = VideoWindows()
    source.send(25)
    values = measurements(session, clock(), talk_balance=False, video=windows)
    assert {kind for kind, _ in values} == LIVE_KINDS | {"video_frozen", "video_frozen_recent"}
    assert values[("video_frozen", "client")] == 0.0
    video.freeze(0.2)
    source.send(25)
    values = measurements(session, clock(), talk_balance=False, video=windows)
    assert values[("video_frozen", "client")] == 0.5  # one freeze counts at least 0.5 s
    source.send(1000)  # 20 s later, a second one
    video.freeze(0.3)
    values = measurements(session, clock(), talk_balance=False, video=windows)
    assert values[("video_frozen", "client")] == 1.0
    assert values[("video_frozen_recent", "client")] == 0.5
    source.send(16 * 50)  # 16 s without a freeze: recovered, but still within the 30 s
    values = measurements(session, clock(), talk_balance=False, video=windows)
    assert values[("video_frozen", "client")] == 0.5
    assert values[("video_frozen_recent", "client")] == 0.0


async def test_no_video_frozen_without_video_or_windows(
    settings: Settings, clock: FakeClock
) -> None:
    """An audio-only leg has no video measure; nor has a caller that keeps no windows."""
    session = Session("s1", wall_clock=clock.wall)
    leg, source = join_session(session, "client", settings, clock)
    source.send(25)
    values = measurements(session, clock(), talk_balance=False, video=VideoWindows())
    assert {kind for kind, _ in values} == LIVE_KINDS
    give_video(leg)
    assert {kind for kind, _ in measurements(session, clock(), talk_balance=False)} == LIVE_KINDS
