"""Session reports as records: what the store keeps, and the measures derived from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..core.turns import TurnStats

ReportEndReason = Literal["ended", "lost", "interrupted", "shutdown"]
QualityBand = Literal["good", "fair", "poor", "none"]

BUCKET_SECONDS = 5.0
"The quality timeline keeps one point per role per this many seconds."
GOOD_MOS = 4.0
"E-model R ≈ 80 ('users satisfied', G.107 annex B) and above: good."
FAIR_MOS = 3.6
"R ≈ 70 to 80 ('some users dissatisfied'): fair; below: poor."
LOW_FPS = 15.0
"Below this a face's movement looks jerky (the usual floor for conversational video)."
VideoBand = Literal["smooth", "choppy", "frozen", "none"]


@dataclass(frozen=True)
class LegAggregate:
    """One role's totals over the whole session (all its legs)."""

    role: str
    packets_received: int
    packets_lost: int
    loss_ratio: float
    jitter_p50_seconds: float | None
    "Median of the once-a-second jitter samples while the leg was live."
    jitter_p95_seconds: float | None
    rtt_p50_seconds: float | None
    rtt_p95_seconds: float | None
    mos_min: float | None
    mos_mean: float | None
    dropouts: int
    dropout_seconds: float
    dropouts_in_speech: int
    "Dropouts with this role speaking just before and after them."
    dropout_in_speech_seconds: float
    speech_seconds: float
    reconnects: int
    end_reason: str | None
    "How the role's last leg ended (closed, lost, shutdown, …); None while live."


@dataclass(frozen=True)
class TimelinePoint:
    """The worst of one role's once-a-second samples within a 5 s bucket."""

    role: str
    t_seconds: float
    "Bucket start, seconds since the session started."
    recent_loss_ratio: float | None
    jitter_seconds: float | None
    rtt_seconds: float | None
    mos: float | None
    speaking: bool
    "Any of this role's speech overlaps the bucket."
    stalled: bool
    "The leg went without media (stalled) at some sample in the bucket."
    dropouts: int
    "The role's dropouts that began before the bucket's end (so far)."
    video_fps_min: float | None = None
    "Lowest frame rate sampled in the bucket (complete frames in the last second); None"
    " without video or before its first complete frame."
    video_frozen: bool | None = None
    "A W3C freeze was counted in the bucket; None without video in it."


@dataclass(frozen=True)
class SpeechSpan:
    """One speech segment of a role, in seconds since the session started."""

    role: str
    index: int
    start_seconds: float
    end_seconds: float


@dataclass(frozen=True)
class DropoutMark:
    """One dropout of a role's audio."""

    role: str
    t_seconds: float
    "When the audio stopped (arrival of the last packet before the gap), session seconds."
    duration_seconds: float
    in_speech: bool | None
    "Speech on both sides of it; None while that is not yet known."


@dataclass(frozen=True)
class WarningRecord:
    """A warning's life; times are Unix epoch seconds."""

    kind: str
    severity: str
    role: str | None
    raised_at: float
    cleared_at: float | None
    value: float | None
    threshold: float | None


@dataclass(frozen=True)
class Checkpoint:
    """What the recorder writes: the session's state now, timeline and speech incrementally."""

    session_id: str
    started_at: float
    "Unix epoch seconds."
    checkpoint_at: float
    ended_at: float | None
    end_reason: ReportEndReason | None
    roles: tuple[str, ...]
    legs: tuple[LegAggregate, ...]
    turns: dict[str, Any]
    points: tuple[TimelinePoint, ...]
    "New or changed points only (a point is replaced by role and t_seconds)."
    speech_from: tuple[tuple[str, int], ...]
    "(role, index): that role's stored spans from index on are replaced by `speech`."
    speech: tuple[SpeechSpan, ...]
    dropouts: tuple[DropoutMark, ...]
    "All of the session's dropouts (they are few; in_speech may change late)."


@dataclass(frozen=True)
class SessionReport:
    """A stored session, as loaded back."""

    session_id: str
    started_at: float
    checkpoint_at: float
    ended_at: float | None
    end_reason: ReportEndReason | None
    roles: tuple[str, ...]
    legs: tuple[LegAggregate, ...]
    turns: dict[str, Any]
    points: tuple[TimelinePoint, ...]
    speech: tuple[SpeechSpan, ...]
    dropouts: tuple[DropoutMark, ...]
    warnings: tuple[WarningRecord, ...]

    @property
    def duration_seconds(self) -> float:
        return max(0.0, (self.ended_at or self.checkpoint_at) - self.started_at)

    def leg(self, role: str) -> LegAggregate | None:
        return next((leg for leg in self.legs if leg.role == role), None)


@dataclass(frozen=True)
class ReportListing:
    """One row of the report list."""

    session_id: str
    started_at: float
    ended_at: float | None
    end_reason: ReportEndReason | None
    roles: tuple[str, ...]
    checkpoint_at: float


def turns_json(stats: TurnStats) -> dict[str, Any]:
    """Talk-turn measures as the API serves them and a report stores them."""
    return {
        "talk_share": stats.talk_share,
        "speech_seconds": stats.speech_seconds,
        "turn_count": stats.turn_count,
        "mean_turn_seconds": stats.mean_turn_seconds,
        "longest_turn_seconds": stats.longest_turn_seconds,
        "overlap_seconds": stats.overlap_seconds,
        "interruptions": stats.interruptions,
        "backchannels": stats.backchannels,
        "response_gap_seconds": {
            role: {"median": g.median_seconds, "p90": g.p90_seconds, "count": g.count}
            if g is not None
            else None
            for role, g in stats.response_gaps.items()
        },
        "silence_ratio": stats.silence_ratio,
    }


# -- derived measures ----------------------------------------------------------


def degraded_ratio(warnings: tuple[WarningRecord, ...], start: float, end: float) -> float:
    """Share of [start, end] with at least one warning active (open warnings run to end)."""
    if end <= start:
        return 0.0
    spans = sorted(
        (max(start, w.raised_at), min(end, w.cleared_at if w.cleared_at is not None else end))
        for w in warnings
    )
    covered, reach = 0.0, start
    for s0, s1 in spans:
        s0 = max(s0, reach)
        if s1 > s0:
            covered += s1 - s0
            reach = s1
    return min(1.0, covered / (end - start))


def quality_band(point: TimelinePoint) -> QualityBand:
    if point.stalled:
        return "poor"
    if point.mos is None:
        return "none"
    if point.mos >= GOOD_MOS:
        return "good"
    return "fair" if point.mos >= FAIR_MOS else "poor"


def video_band(point: TimelinePoint) -> VideoBand:
    """How a role's picture was in a bucket: frozen (a freeze), choppy (under 15 fps),
    smooth, or none (no video)."""
    if point.video_frozen is None:
        return "none"
    if point.video_frozen:
        return "frozen"
    if point.video_fps_min is not None and point.video_fps_min < LOW_FPS:
        return "choppy"
    return "smooth"


def degraded_buckets(report: SessionReport) -> set[int]:
    """Bucket numbers in which some role's audio was not good (MOS, stall or a dropout)."""
    bad: set[int] = set()
    before: dict[str, int] = {}
    for point in sorted(report.points, key=lambda p: (p.role, p.t_seconds)):
        bucket = round(point.t_seconds / BUCKET_SECONDS)
        if quality_band(point) in ("fair", "poor") or point.dropouts > before.get(point.role, 0):
            bad.add(bucket)
        before[point.role] = point.dropouts
    return bad


def quality_degraded_ratio(report: SessionReport) -> float:
    """Share of the session in 5 s buckets where some role's audio was not good."""
    duration = report.duration_seconds
    if duration <= 0:
        return 0.0
    seconds = sum(
        max(0.0, min(BUCKET_SECONDS, duration - b * BUCKET_SECONDS))
        for b in degraded_buckets(report)
    )
    return min(1.0, seconds / duration)
