"""Prometheus metrics of video legs: freezes and their seconds (counters), frame rate
(histogram). Labelled by role only, never by session."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

from ..core.video_freezes import FreezeCounts, grown
from ..sessions.leg import Leg
from ..sessions.observer import SessionEnd, SessionObserver
from ..sessions.session import Session
from ..sessions.snapshot import ROLES
from ..warnings.video import freeze_counts, leg_video

# Browsers send 24–30 fps cameras, fewer when the encoder is starved (CPU, bandwidth).
FPS_BUCKETS = (1.0, 5.0, 10.0, 15.0, 20.0, 24.0, 25.0, 28.0, 30.0, 45.0, 60.0)


class VideoMetrics(SessionObserver):
    """Reads each live session's video legs once a second; counters grow by the legs' deltas."""

    def __init__(
        self, registry: CollectorRegistry, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self.freezes = Counter(
            "qualmon_video_freezes",
            "Video freezes (W3C: an inter-frame delay >= max(3 x mean, mean + 150 ms)).",
            ["role"],
            registry=registry,
        )
        self.freeze_seconds = Counter(
            "qualmon_video_freeze_seconds",
            "Summed inter-frame delays of video freezes.",
            ["role"],
            registry=registry,
        )
        self.fps = Histogram(
            "qualmon_video_frames_per_second",
            "Complete video frames in the last second, sampled per live video leg each second.",
            ["role"],
            buckets=FPS_BUCKETS,
            registry=registry,
        )
        for role in ROLES:
            for metric in (self.freezes, self.freeze_seconds, self.fps):
                metric.labels(role=role)
        self._counted: dict[tuple[str, float], dict[str, tuple[Leg, FreezeCounts]]] = {}
        "Per session, each role's current leg and its counts already added to the counters."

    def on_session_sample(self, session: Session, now: float) -> None:
        counted = self._counted.setdefault((session.id, session.started_at), {})
        for role, slot in session.slots.items():
            leg = slot.leg
            if leg is None or leg.state not in ("live", "stalled"):
                continue
            video = leg_video(leg, now)
            if video is None:
                continue
            self._count(counted, role, leg, freeze_counts(video))
            if leg.state == "live" and video.frames_received:
                self.fps.labels(role=role).observe(video.frames_per_second)

    def on_session_ended(self, ended: SessionEnd) -> None:
        session = ended.session
        counted = self._counted.pop((session.id, session.started_at), {})
        now = self._clock()
        for role, slot in session.slots.items():
            video = leg_video(slot.leg, now) if slot.leg is not None else None
            if slot.leg is not None and video is not None:
                self._count(counted, role, slot.leg, freeze_counts(video))

    def _count(
        self,
        counted: dict[str, tuple[Leg, FreezeCounts]],
        role: str,
        leg: Leg,
        counts: FreezeCounts,
    ) -> None:
        held = counted.get(role)
        # A new leg's counters start from zero; a counter that went down (a new SSRC on
        # the same leg) too: `grown` never returns a negative step, so counters only rise.
        before = held[1] if held is not None and held[0] is leg else FreezeCounts()
        step = grown(before, counts)
        counted[role] = (leg, counts)
        if step.freezes:
            self.freezes.labels(role=role).inc(step.freezes)
        if step.freeze_seconds > 0:
            self.freeze_seconds.labels(role=role).inc(step.freeze_seconds)
