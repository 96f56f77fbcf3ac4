"""Every warning rule's measure for one session now, read from its legs and speech."""

from __future__ import annotations

from ..core.heard import STALE_AFTER_SECONDS
from ..core.rtp_stats import RtpLegStats
from ..core.speech import Segment
from ..core.turns import intersection_length
from ..sessions.session import Session
from .video import VideoWindows, leg_video

# (seconds, packets the window needs, scale to the 5 s threshold): see the high_loss rule.
# At a stream's start a single loss among a few packets would otherwise read as a high rate.
LOSS_WINDOWS = ((5.0, 200, 1.0), (2.0, 80, 0.043 / 0.08), (1.0, 40, 0.043 / 0.14))
RECENT_LOSS_WINDOW = (3.0, 100)
DROPOUT_WINDOW_SECONDS = 10.0
OVERLAP_WINDOW_SECONDS = 30.0
OVERLAP_RTT_SECONDS = 0.300
BALANCE_WINDOW_SECONDS = 300.0


def loss_value(stats: RtpLegStats, now: float) -> float | None:
    """The worst loss window, scaled to the 5 s threshold (high_loss); None: too few packets."""
    worst: float | None = None
    for seconds, min_expected, scale in LOSS_WINDOWS:
        ratio = stats.window_loss_ratio(now, seconds, min_expected=min_expected)
        if ratio is not None and (worst is None or ratio * scale > worst):
            worst = ratio * scale
    return worst


def measurements(
    session: Session,
    now: float,
    *,
    talk_balance: bool = True,
    video: VideoWindows | None = None,
) -> dict[tuple[str, str | None], float | None]:
    """The value of every rule for every role of this session, now (monotonic seconds).

    talk_balance=False skips that (off by default) rule's 5-minute scan. `video` holds the
    session's freeze windows across ticks; without it there is no video_frozen measure.
    """
    values: dict[tuple[str, str | None], float | None] = {}
    video_roles: set[str] = set()
    rtts: list[float] = []
    recent: dict[str, list[Segment]] = {}
    for role, slot in session.slots.items():
        heard = slot.heard
        if heard is not None:
            # What the role hears, from its probe; unknown once the probe goes quiet.
            fresh = heard.fresh(now, STALE_AFTER_SECONDS)
            values[("audible_concealment", role)] = (
                heard.audible_concealment_ratio() if fresh else None
            )
        leg = slot.leg
        if leg is None:
            continue
        if leg.state == "ended":
            values[("connection_lost", role)] = 1.0 if leg.end_reason in ("lost", "failed") else 0.0
            continue
        values[("connection_lost", role)] = 0.0
        video_roles.add(role)  # a stalled leg keeps its window: its freezes are not new
        values[("media_stopped", role)] = leg.seconds_since_last_packet(now)
        recent[role] = slot.segmenter.segments_since(now - OVERLAP_WINDOW_SECONDS)
        if leg.state != "live":
            continue
        rtt = leg.rtt_seconds(now)
        if rtt is not None:
            rtts.append(rtt)
        values[("high_loss", role)] = loss_value(leg.stats, now)
        seconds, min_expected = RECENT_LOSS_WINDOW
        values[("high_loss_recent", role)] = leg.stats.window_loss_ratio(
            now, seconds, min_expected=min_expected
        )
        values[("high_rtt", role)] = rtt
        values[("high_jitter", role)] = leg.stats.jitter_seconds
        values[("low_mos", role)] = leg.mos(now, rtt)
        values[("audio_dropouts", role)] = float(
            sum(1 for d in leg.dropouts_in_speech if d.started_at >= now - DROPOUT_WINDOW_SECONDS)
        )
        values[("mic_silent", role)] = 1.0 if slot.segmenter.mic_silent() else 0.0
        picture = leg_video(leg, now) if video is not None else None
        if video is not None and picture is not None:
            frozen, lately = video.frozen(role, leg, picture, now)
            values[("video_frozen", role)] = frozen
            values[("video_frozen_recent", role)] = lately
    if video is not None:
        video.forget(video_roles)
    if len(recent) == 2:
        a, b = recent.values()
        slow = bool(rtts) and max(rtts) > OVERLAP_RTT_SECONDS
        values[("talk_over_delay", None)] = intersection_length(a, b) if slow else 0.0
    if not talk_balance:
        return values
    speech = {
        role: sum(
            max(0.0, min(s.end, now) - max(s.start, now - BALANCE_WINDOW_SECONDS))
            for s in slot.segmenter.segments_since(now - BALANCE_WINDOW_SECONDS)
        )
        for role, slot in session.slots.items()
    }
    total = sum(speech.values())
    values[("talk_balance", None)] = max(speech.values()) / total if total > 30 else None
    return values
