"""One session: its roles' legs, measurements, talk turns and JSON form."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.heard import HeardTracker
from ..core.instants import iso
from ..core.speech import SpeechParams, SpeechSegmenter
from ..core.turns import TurnParams, TurnStats, compute_turns
from ..media.leg import LegSnapshot, WhipLeg

log = logging.getLogger(__name__)

ROLES = ("therapist", "client")


@dataclass(frozen=True)
class ConversationDeltas:
    """Growth of a session's conversation counters since the last report."""

    speech_seconds: dict[str, float]
    overlap_seconds: float
    turns: dict[str, int]
    interruptions: dict[str, int]


@dataclass
class RoleSlot:
    """A role's current leg plus the totals of the legs it replaced."""

    segmenter: SpeechSegmenter
    "Speech of this role on the session clock, across reconnects."
    leg: WhipLeg | None = None
    earlier: list[LegSnapshot] = field(default_factory=list)
    reconnects: int = 0
    heard: HeardTracker | None = None
    "What this role hears, from its probe (browser or Python); None without one."


# How a role without a WHIP leg (known from its probe alone) renders the leg fields.
PROBE_ONLY_LEG: dict[str, Any] = {
    "state": "probe_only",
    "end_reason": None,
    "packets_received": 0,
    "packets_lost": 0,
    "loss_ratio": 0.0,
    "recent_loss_ratio": 0.0,
    "jitter_seconds": None,
    "rtt_seconds": None,
    "mos": None,
    "dropouts": 0,
    "dropout_seconds": 0.0,
    "bitrate_bps": 0.0,
    "seconds_since_last_packet": None,
    "dropouts_in_speech": 0,
    "dropout_in_speech_seconds": 0.0,
    "mic_silent": False,
}


class Session:
    """A therapy session as qualmon sees it: one slot per role."""

    def __init__(
        self,
        session_id: str,
        *,
        speech_params: SpeechParams | None = None,
        turn_params: TurnParams | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.id = session_id
        self._speech_params = speech_params or SpeechParams()
        self._turn_params = turn_params or TurnParams()
        self._turns_cache: tuple[float, TurnStats] | None = None
        # Highest values already reported to counters (they must never go down, while a
        # recomputation may reclassify, e.g. an open overlap that becomes a backchannel).
        self._reported: dict[str, float] = {}
        self.started_at = wall_clock()
        self.ended_at: float | None = None
        self.ended_monotonic: float | None = None
        self.slots: dict[str, RoleSlot] = {}

    @property
    def live(self) -> bool:
        return self.ended_at is None

    def slot(self, role: str) -> RoleSlot:
        if role not in self.slots:
            self.slots[role] = RoleSlot(segmenter=SpeechSegmenter(self._speech_params))
        return self.slots[role]

    def turn_stats(self, now: float, *, max_age_seconds: float = 1.0) -> TurnStats:
        """Talk-turn measures, recomputed at most once per max_age_seconds."""
        cached = self._turns_cache
        if cached is not None and now - cached[0] < max_age_seconds:
            return cached[1]
        segmenters = {role: slot.segmenter for role, slot in self.slots.items()}
        starts = [g.first_frame_at for g in segmenters.values() if g.first_frame_at is not None]
        ends = [g.last_frame_end for g in segmenters.values() if g.last_frame_end is not None]
        stats = compute_turns(
            {role: g.all_segments() for role, g in segmenters.items()},
            roles=ROLES,
            span=(min(starts), max(ends)) if starts and ends else None,
            unknown_seconds=sum(g.unknown_total_seconds for g in segmenters.values()),
            params=self._turn_params,
        )
        self._turns_cache = (now, stats)
        return stats

    def conversation_deltas(self, stats: TurnStats) -> ConversationDeltas:
        def grow(key: str, value: float) -> float:
            before = self._reported.get(key, 0.0)
            self._reported[key] = max(before, value)
            return max(0.0, value - before)

        return ConversationDeltas(
            speech_seconds={r: grow("speech:" + r, v) for r, v in stats.speech_seconds.items()},
            overlap_seconds=grow("overlap", stats.overlap_seconds),
            turns={r: int(grow("turns:" + r, v)) for r, v in stats.turn_count.items()},
            interruptions={
                r: int(grow("interruptions:" + r, v)) for r, v in stats.interruptions.items()
            },
        )

    def live_legs(self) -> list[WhipLeg]:
        return [s.leg for s in self.slots.values() if s.leg and s.leg.state != "ended"]

    def heard_fresh(self, now: float, stale_after_seconds: float) -> bool:
        """Some role's probe sent a sample within stale_after_seconds (monotonic now)."""
        return any(
            s.heard is not None and s.heard.fresh(now, stale_after_seconds)
            for s in self.slots.values()
        )

    def role_json(self, role: str, now: float) -> dict[str, Any] | None:
        """The role's leg measures and its `heard` block; a probe-only role has state
        "probe_only", counters 0 and measures null; None for a role with neither."""
        slot = self.slots.get(role)
        if slot is None or (slot.leg is None and slot.heard is None):
            return None
        heard = asdict(slot.heard.snapshot(now)) if slot.heard is not None else None
        if slot.leg is None:
            return {
                **PROBE_ONLY_LEG,
                "reconnects": slot.reconnects,
                "speech_seconds": slot.segmenter.speech_seconds(),
                "heard": heard,
            }
        current = slot.leg.snapshot(now)
        parts = [*slot.earlier, current]
        received = sum(p.packets_received for p in parts)
        expected = sum(p.packets_expected for p in parts)
        lost = sum(p.packets_lost for p in parts)
        doc = asdict(current)
        doc.pop("packets_expected")
        doc.update(
            packets_received=received,
            packets_lost=lost,
            loss_ratio=lost / expected if expected else 0.0,
            dropouts=sum(p.dropouts for p in parts),
            dropout_seconds=sum(p.dropout_seconds for p in parts),
            dropouts_in_speech=sum(p.dropouts_in_speech for p in parts),
            dropout_in_speech_seconds=sum(p.dropout_in_speech_seconds for p in parts),
            reconnects=slot.reconnects,
            speech_seconds=slot.segmenter.speech_seconds(),
            mic_silent=current.state in ("live", "stalled") and slot.segmenter.mic_silent(),
            heard=heard,
        )
        return doc

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": "live" if self.live else "ended",
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "legs": {role: self.role_json(role, now) for role in ROLES if role in self.slots},
            "turns": turns_json(self.turn_stats(now)),
        }


def turns_json(stats: TurnStats) -> dict[str, Any]:
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
