"""A leg's video measures as the outputs read them, and the video_frozen rule's windows.

`leg_video` is the one place the outputs (warnings, metrics, reports) reach a leg's video.
"""

from __future__ import annotations

from ..core.video import VideoSnapshot
from ..core.video_freezes import FreezeCounts, FreezeWindow, frozen_score
from ..sessions.leg import Leg

FROZEN_WINDOW_SECONDS = 30.0
"video_frozen is raised on the freezes of the last 30 s (the W3C freeze rule's own horizon:"
" its mean inter-frame delay runs over the last 30 frames, about 1–2 s, so 30 s is many"
" independent judgements)."
FROZEN_RECOVERY_SECONDS = 15.0
"…and cleared once no freeze was seen for 15 s."


def leg_video(leg: Leg, now: float) -> VideoSnapshot | None:
    """The leg's video measures now; None for an audio-only leg."""
    return leg.video.snapshot(now) if leg.video is not None else None


def freeze_counts(video: VideoSnapshot) -> FreezeCounts:
    return FreezeCounts(video.freezes, video.freeze_seconds)


class VideoWindows:
    """Per role, a freeze window that outlives reconnects: the viewer saw the freezes of the
    replaced leg too, and the new leg's counters start from zero."""

    def __init__(self) -> None:
        self._by_role: dict[str, tuple[Leg, FreezeWindow]] = {}

    def frozen(self, role: str, leg: Leg, video: VideoSnapshot, now: float) -> tuple[float, float]:
        """(video_frozen value over 30 s, the same over the last 15 s for recovery)."""
        held = self._by_role.get(role)
        if held is None:
            window = FreezeWindow(FROZEN_WINDOW_SECONDS)
        else:
            window = held[1]
            if held[0] is not leg:
                window.restart()
        self._by_role[role] = (leg, window)
        window.observe(now, freeze_counts(video))
        return (
            frozen_score(window.since(now, FROZEN_WINDOW_SECONDS)),
            frozen_score(window.since(now, FROZEN_RECOVERY_SECONDS)),
        )

    def forget(self, roles: set[str]) -> None:
        """Drop the windows of roles without a leg (or whose leg ended)."""
        for role in [r for r in self._by_role if r not in roles]:
            del self._by_role[role]
