"""A session's report accumulators: per role, bounded whatever the session's length."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.quantiles import LogHistogram
from ..core.rtp_stats import Dropout
from ..core.speech import Segment
from ..core.video import VideoSnapshot
from ..core.video_freezes import FreezeCounts, grown
from ..sessions.leg import Leg
from ..sessions.snapshot import RoleSnapshot
from .model import BUCKET_SECONDS, LegAggregate, TimelinePoint


@dataclass
class Bucket:
    """Worst values of one role's samples within one 5 s bucket."""

    index: int
    loss: float | None = None
    jitter: float | None = None
    rtt: float | None = None
    mos: float | None = None
    stalled: bool = False
    video_fps_min: float | None = None
    video_frozen: bool | None = None

    def add_video(self, fps: float | None, froze: bool) -> None:
        """One video sample: its frame rate (None before a complete frame), a freeze since
        the last sample."""
        if fps is not None:
            self.video_fps_min = fps if self.video_fps_min is None else min(self.video_fps_min, fps)
        self.video_frozen = bool(self.video_frozen) or froze

    def add(self, loss: float, jitter: float, rtt: float | None, mos: float | None) -> None:
        self.loss = loss if self.loss is None else max(self.loss, loss)
        self.jitter = jitter if self.jitter is None else max(self.jitter, jitter)
        if rtt is not None:
            self.rtt = rtt if self.rtt is None else max(self.rtt, rtt)
        if mos is not None:
            self.mos = mos if self.mos is None else min(self.mos, mos)


@dataclass
class Mark:
    """A dropout seen on a leg; `in_speech` settles once the leg or the segmenter knows."""

    dropout: Dropout
    t_seconds: float
    bucket: int
    leg: Leg | None
    "Held only until in_speech is settled (at the latest when the leg has closed)."
    in_speech: bool | None = None


@dataclass
class Track:
    """One role's accumulators; memory stays bounded whatever the session's length."""

    jitter: LogHistogram = field(default_factory=LogHistogram)
    rtt: LogHistogram = field(default_factory=LogHistogram)
    mos_min: float | None = None
    mos_sum: float = 0.0
    mos_count: int = 0
    buckets: dict[int, Bucket] = field(default_factory=dict)
    "Buckets not yet written for the last time (the last few only)."
    marks: list[Mark] = field(default_factory=list)
    leg: Leg | None = None
    dropouts_seen: int = 0
    "How many of `leg.stats.dropouts` became marks."
    speech_written: int = 0
    "Closed speech segments already stored."
    video_leg: Leg | None = None
    video_counts: FreezeCounts = field(default_factory=FreezeCounts)
    "The freeze counters of `video_leg` at the last sample (a new leg starts from zero)."

    def video_sample(self, leg: Leg, video: VideoSnapshot, bucket: Bucket) -> None:
        """Put a video leg's sample into its bucket: lowest frame rate, a freeze since."""
        counts = FreezeCounts(video.freezes, video.freeze_seconds)
        before = self.video_counts if self.video_leg is leg else FreezeCounts()
        self.video_leg, self.video_counts = leg, counts
        fps = video.frames_per_second if video.frames_received else None
        bucket.add_video(fps, grown(before, counts).freezes > 0)


@dataclass
class SessionState:
    origin: float
    "The session's start on the monotonic clock."
    tracks: dict[str, Track] = field(default_factory=dict)
    last_checkpoint: float | None = None
    roles_with_media: frozenset[str] = frozenset()
    "Roles that had sent packets at the last checkpoint."


def aggregate(role: str, live: RoleSnapshot, track: Track) -> LegAggregate:
    return LegAggregate(
        role=role,
        packets_received=live.packets_received,
        packets_lost=live.packets_lost,
        loss_ratio=live.loss_ratio,
        jitter_p50_seconds=track.jitter.quantile(0.5),
        jitter_p95_seconds=track.jitter.quantile(0.95),
        rtt_p50_seconds=track.rtt.quantile(0.5),
        rtt_p95_seconds=track.rtt.quantile(0.95),
        mos_min=track.mos_min,
        mos_mean=track.mos_sum / track.mos_count if track.mos_count else None,
        dropouts=live.dropouts,
        dropout_seconds=live.dropout_seconds,
        dropouts_in_speech=live.dropouts_in_speech,
        dropout_in_speech_seconds=live.dropout_in_speech_seconds,
        speech_seconds=live.speech_seconds,
        reconnects=live.reconnects,
        end_reason=live.end_reason,
    )


def timeline_point(
    role: str, bucket: Bucket, track: Track, segments: list[Segment], origin: float
) -> TimelinePoint:
    start = origin + bucket.index * BUCKET_SECONDS
    end = start + BUCKET_SECONDS
    speaking = False
    for seg in reversed(segments):  # newest first; the buckets asked about are recent
        if seg.end <= start:
            break
        if seg.start < end:
            speaking = True
            break
    return TimelinePoint(
        role=role,
        t_seconds=bucket.index * BUCKET_SECONDS,
        recent_loss_ratio=bucket.loss,
        jitter_seconds=bucket.jitter,
        rtt_seconds=bucket.rtt,
        mos=bucket.mos,
        speaking=speaking,
        stalled=bucket.stalled,
        dropouts=sum(1 for m in track.marks if m.bucket <= bucket.index),
        video_fps_min=bucket.video_fps_min,
        video_frozen=bucket.video_frozen,
    )
