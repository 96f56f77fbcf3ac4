"""Unit tests of the measured leg, fed by a FakeSource on a fake clock."""

from __future__ import annotations

import pytest

from qualmon.config import Settings
from qualmon.core.rtp_stats import Dropout
from qualmon.sessions.leg import Leg

from ..fakes import FakeClock, fake_leg


async def test_packets_make_the_leg_live_and_count_loss(
    settings: Settings, clock: FakeClock
) -> None:
    """Packets make it live; lost sequence numbers are lost packets, single ones no dropout."""
    leg, source = fake_leg(settings, clock)
    assert (leg.state, leg.receiving, leg.kind) == ("connecting", False, "fake")
    assert leg.snapshot(clock()).mos is None
    source.send(100, lose={1010, 1020, 1030})
    snap = leg.snapshot(clock())
    assert (leg.state, leg.receiving) == ("live", True)
    assert (snap.packets_received, snap.packets_expected, snap.packets_lost) == (97, 100, 3)
    assert snap.loss_ratio == 3 / 100
    assert snap.dropouts == 0  # one packet (20 ms) missing is below the 150 ms threshold
    assert snap.seconds_since_last_packet == 0.0
    assert snap.mos is not None


async def test_jitter_follows_rfc3550(settings: Settings, clock: FakeClock) -> None:
    """Each packet 10 ms later than its timestamp says: J converges as J += (D − J)/16."""
    leg, source = fake_leg(settings, clock)
    source.send(1)
    source.send(10, interval_seconds=0.030)
    expected = 0.010 * (1 - (15 / 16) ** 10)
    assert leg.snapshot(clock()).jitter_seconds == pytest.approx(expected, rel=1e-6)
    assert leg.snapshot(clock()).dropouts == 0  # 10 ms late each is no gap


async def test_gaps_are_dropouts_reported_to_the_callback(
    settings: Settings, clock: FakeClock
) -> None:
    """Lost packets and packets held back both end in a dropout, told to the callback."""
    seen: list[tuple[Leg, Dropout]] = []
    leg, source = fake_leg(settings, clock, on_dropout=lambda leg, d: seen.append((leg, d)))
    source.send(50)
    source.send(20, lose=set(range(1050, 1060)))  # 10 packets: 200 ms of audio lost
    clock.advance(0.5)  # then nothing for half a second, and no packet missing
    source.send(10)
    lost, held = leg.stats.dropouts
    assert seen == [(leg, lost), (leg, held)]
    assert lost.started_at == source.arrivals[1049]
    assert lost.missing_packets == 10
    assert lost.duration_seconds == pytest.approx(0.200)
    assert held.started_at == source.arrivals[1069]
    assert held.missing_packets == 0
    assert held.duration_seconds == pytest.approx(0.500)
    snap = leg.snapshot(clock())
    assert snap.dropouts == 2
    assert snap.dropout_seconds == pytest.approx(0.700)


async def test_rtt_samples_reach_the_callback(settings: Settings, clock: FakeClock) -> None:
    """An RTT sample is measured and told; a probe without answer is not a sample."""
    told: list[float] = []
    leg, source = fake_leg(settings, clock, on_rtt=lambda leg, rtt: told.append(rtt))
    source.rtt(None)
    assert leg.snapshot(clock()).rtt_seconds is None
    source.rtt(0.080)
    assert told == [0.080]
    assert leg.snapshot(clock()).rtt_seconds == 0.080
    assert leg.rtt.timeouts == 1


async def test_stall_then_lost(settings: Settings, clock: FakeClock) -> None:
    """No RTP for stall_after_seconds: stalled; for lost_after_seconds: ended as lost."""
    leg, source = fake_leg(settings, clock)
    source.send(10)
    last = clock()
    clock.advance_to(last + settings.stall_after_seconds - 0.001)
    leg.tick(clock())
    assert leg.state == "live"
    clock.advance_to(last + settings.stall_after_seconds)
    leg.tick(clock())
    assert (leg.state, leg.end_reason, leg.receiving) == ("stalled", None, True)
    clock.advance_to(last + settings.lost_after_seconds - 0.001)
    leg.tick(clock())
    assert leg.state == "stalled"
    clock.advance_to(last + settings.lost_after_seconds)
    leg.tick(clock())
    assert (leg.state, leg.end_reason, leg.receiving) == ("ended", "lost", False)
    await leg.ended.wait()
    assert source.close_calls == 1
    assert leg.source is None


async def test_media_after_a_stall_makes_it_live_again(
    settings: Settings, clock: FakeClock
) -> None:
    """A stall is not an end: the next packet brings the leg back."""
    leg, source = fake_leg(settings, clock)
    source.send(10)
    clock.advance(settings.stall_after_seconds)
    leg.tick(clock())
    assert leg.state == "stalled"
    source.send(1)
    assert leg.state == "live"
    assert leg.snapshot(clock()).seconds_since_last_packet == 0.0


async def test_never_connected(settings: Settings, clock: FakeClock) -> None:
    """No packet at all within connect_timeout_seconds: ended as never_connected."""
    leg, source = fake_leg(settings, clock)
    created = clock()
    clock.advance_to(created + settings.connect_timeout_seconds - 0.001)
    leg.tick(clock())
    assert leg.state == "connecting"
    clock.advance_to(created + settings.connect_timeout_seconds)
    leg.tick(clock())
    assert (leg.state, leg.end_reason) == ("ended", "never_connected")
    await leg.ended.wait()
    assert source.close_calls == 1


async def test_transport_failure_ends_the_leg(settings: Settings, clock: FakeClock) -> None:
    """on_failed ends it as failed; later packets and failures change nothing."""
    leg, source = fake_leg(settings, clock)
    source.send(5)
    source.fail()
    assert (leg.state, leg.end_reason) == ("ended", "failed")
    await leg.ended.wait()
    source.fail()
    source.send(5)
    leg.tick(clock())
    assert (leg.state, leg.end_reason) == ("ended", "failed")
    assert leg.snapshot(clock()).packets_received == 5
    assert source.close_calls == 1


async def test_request_close_is_idempotent(settings: Settings, clock: FakeClock) -> None:
    """The first reason wins; the source is closed once and released; `ended` is set."""
    leg, source = fake_leg(settings, clock)
    source.send(7, speech=False)
    first = leg.request_close("closed")
    assert leg.request_close("lost") is first
    assert (leg.state, leg.end_reason) == ("ended", "closed")
    assert not leg.ended.is_set()  # the source closes in a task
    await first
    assert leg.ended.is_set()
    assert source.close_calls == 1
    assert (leg.source, leg.kind) == (None, "none")
    await leg.close("shutdown")
    assert leg.end_reason == "closed"
    assert source.close_calls == 1
    assert leg.vad_frames == 7  # the source's count, kept once it is released


async def test_a_source_that_fails_to_close_still_ends_the_leg(
    settings: Settings, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A close that raises is logged; the leg still ends and lets the source go."""
    leg, source = fake_leg(settings, clock)

    async def broken() -> None:
        raise OSError("stuck")

    source.close = broken  # type: ignore[method-assign]
    await leg.close("closed")
    assert leg.ended.is_set()
    assert leg.source is None
    assert "leg source close failed" in caplog.text


@pytest.mark.parametrize(
    ("before", "after", "in_speech"),
    [(True, True, True), (False, False, False), (True, False, False), (False, True, False)],
)
async def test_dropout_in_speech_needs_speech_on_both_sides(
    settings: Settings, clock: FakeClock, before: bool, after: bool, in_speech: bool
) -> None:
    """Settled once 0.3 s of audio after the gap is classified: speech before and after."""
    told: list[Dropout] = []
    leg, source = fake_leg(settings, clock, on_dropout_in_speech=lambda leg, d: told.append(d))
    source.send(50, speech=before)
    source.send(20, lose=set(range(1050, 1060)), speech=after)  # 10 packets after the gap
    [dropout] = leg.stats.dropouts
    assert told == []  # 0.2 s after the gap: not known yet
    source.send(20, speech=after)
    assert told == ([dropout] if in_speech else [])
    assert leg.dropouts_in_speech == told
    snap = leg.snapshot(clock())
    assert snap.dropouts == 1
    assert snap.dropouts_in_speech == (1 if in_speech else 0)
    assert snap.dropout_in_speech_seconds == (dropout.duration_seconds if in_speech else 0.0)


async def test_a_stall_settles_pending_dropouts_as_not_in_speech(
    settings: Settings, clock: FakeClock
) -> None:
    """A gap still unsettled when media stalls counts as not in speech; the stall's own gap,
    with speech before it and after media resumes, is in speech."""
    told: list[Dropout] = []
    leg, source = fake_leg(settings, clock, on_dropout_in_speech=lambda leg, d: told.append(d))
    source.send(50, speech=True)
    source.send(15, lose=set(range(1050, 1060)), speech=True)  # 0.1 s after the gap
    source.send(101, lose=set(range(1065, 1166)))  # then the network goes away for 2.02 s
    leg.tick(clock())
    assert leg.state == "stalled"
    source.send(50, speech=True)
    assert leg.state == "live"
    early, stall = leg.stats.dropouts
    assert (early.missing_packets, stall.missing_packets) == (10, 101)
    assert told == [stall]
    assert leg.dropouts_in_speech == [stall]


async def test_pending_dropouts_are_settled_when_the_leg_closes(
    settings: Settings, clock: FakeClock
) -> None:
    """Closing settles what is still pending: not in speech, and nothing left waiting."""
    told: list[Dropout] = []
    leg, source = fake_leg(settings, clock, on_dropout_in_speech=lambda leg, d: told.append(d))
    source.send(50, speech=True)
    source.send(15, lose=set(range(1050, 1060)), speech=True)
    await leg.close("closed")
    source.speak(source.media_time(1065), 1.0, True)  # speech after it, too late to count
    assert told == []
    assert leg.dropouts_in_speech == []
    assert leg.snapshot(clock()).dropouts == 1
