"""Video metrics: counters fed by the legs' deltas, the frame-rate histogram, and the real
/metrics exposition (bounded labels, no session id). Legs report constructed snapshots."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from qualmon.service.video_metrics import VideoMetrics
from qualmon.sessions.registry import SessionRegistry

from ..conftest import Service, make_settings, wait_for
from ..fakes import FakeClock, FakeSource, attach, give_video
from .test_metrics import ALLOWED_LABELS

HALF = 25


async def setup(clock: FakeClock) -> tuple[SessionRegistry, VideoMetrics, CollectorRegistry]:
    prometheus = CollectorRegistry()
    metrics = VideoMetrics(prometheus, clock=clock)
    registry = SessionRegistry(make_settings(), clock=clock, wall_clock=clock.wall)
    registry.add_observer(metrics)
    return registry, metrics, prometheus


def second(registry: SessionRegistry, *sources: FakeSource) -> None:
    """One second of audio on every source, the registry ticking each half second."""
    for _ in range(2):
        for source in sources:
            source.send(HALF)
        registry.tick()


async def test_counters_grow_by_the_legs_deltas(clock: FakeClock) -> None:
    """Freezes and seconds are added as they grow, per role; a reconnect's new leg counts
    from zero; a counter reset within a leg (new SSRC) never makes them go down."""
    registry, _, prometheus = await setup(clock)
    get = prometheus.get_sample_value
    leg, source = await attach(registry, "s1", "client", clock, first_seq=0)
    video = give_video(leg)
    second(registry, source)
    assert get("qualmon_video_freezes_total", {"role": "client"}) == 0
    video.freeze(0.25)
    video.freeze(0.5)
    second(registry, source)
    assert get("qualmon_video_freezes_total", {"role": "client"}) == 2
    assert get("qualmon_video_freeze_seconds_total", {"role": "client"}) == 0.75
    video.set(freezes=1, freeze_seconds=0.2)  # a new SSRC: counters start again
    second(registry, source)
    assert get("qualmon_video_freezes_total", {"role": "client"}) == 3
    assert get("qualmon_video_freeze_seconds_total", {"role": "client"}) == 0.95
    leg2, source2 = await attach(registry, "s1", "client", clock, first_seq=0, ssrc=9)
    give_video(leg2).freeze(0.3)
    second(registry, source2)
    assert get("qualmon_video_freezes_total", {"role": "client"}) == 4
    assert get("qualmon_video_freeze_seconds_total", {"role": "therapist"}) == 0


async def test_fps_observed_once_a_second_per_live_video_leg(clock: FakeClock) -> None:
    """One observation a second for the client's video leg; none for the audio-only
    therapist, none before the first frame, none while stalled."""
    registry, _, prometheus = await setup(clock)
    get = prometheus.get_sample_value
    leg, client = await attach(registry, "s1", "client", clock, first_seq=0)
    await attach(registry, "s1", "therapist", clock, first_seq=0, ssrc=3)
    video = give_video(leg)
    second(registry, client)  # no complete frame yet
    assert get("qualmon_video_frames_per_second_count", {"role": "client"}) == 0
    video.set(frames_received=300, frames_per_second=24.0)
    for _ in range(3):
        second(registry, client)
    assert get("qualmon_video_frames_per_second_count", {"role": "client"}) == 3
    assert get("qualmon_video_frames_per_second_sum", {"role": "client"}) == 72.0
    assert get("qualmon_video_frames_per_second_bucket", {"role": "client", "le": "20.0"}) == 0
    assert get("qualmon_video_frames_per_second_bucket", {"role": "client", "le": "24.0"}) == 3
    assert get("qualmon_video_frames_per_second_count", {"role": "therapist"}) == 0
    clock.advance(2.5)  # no RTP: the leg stalls
    registry.tick()
    registry.tick()
    assert leg.state == "stalled"
    assert get("qualmon_video_frames_per_second_count", {"role": "client"}) == 3


async def test_freezes_since_the_last_sample_count_at_the_end(clock: FakeClock) -> None:
    """A freeze counted after the last once-a-second sample is added when the session ends."""
    registry, metrics, prometheus = await setup(clock)
    leg, source = await attach(registry, "s1", "client", clock, first_seq=0)
    video = give_video(leg)
    second(registry, source)
    video.freeze(0.4)
    await registry.close_all("closed")
    assert prometheus.get_sample_value("qualmon_video_freezes_total", {"role": "client"}) == 1
    assert not metrics._counted  # nothing kept of an ended session


async def test_exposition_has_bounded_labels_and_no_session_id(service: Service) -> None:
    """The real app exposes the video families by role only; the session id is nowhere."""
    wall_now = time.monotonic()
    clock = FakeClock(wall_now)
    leg, source = await attach(service.sessions, "sess-video-5b1d", "client", clock, first_seq=0)
    give_video(leg).set(frames_received=90, frames_per_second=30.0, freezes=2, freeze_seconds=0.5)
    source.send(3 * 50)  # arrivals up to 3 s ahead of now: the leg stays live while we wait
    get = service.metrics.registry.get_sample_value
    await wait_for(
        lambda: (get("qualmon_video_frames_per_second_count", {"role": "client"}) or 0) >= 1,
        timeout=10.0,
        what="a video frame-rate sample",
    )
    async with service.http.get(service.url + "/metrics") as response:
        text = await response.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "qualmon_video_freezes",
        "qualmon_video_freeze_seconds",
        "qualmon_video_frames_per_second",
    ):
        assert name in families, name
    assert get("qualmon_video_freezes_total", {"role": "client"}) == 2
    for family in families.values():
        for sample in family.samples:
            assert set(sample.labels) <= ALLOWED_LABELS, sample
    assert "sess-video-5b1d" not in text
