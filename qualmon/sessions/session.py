"""One session: its roles' legs on one clock, their talk turns, and its snapshot."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.heard import HeardSnapshot, HeardTracker
from ..core.sfu import SfuSnapshot
from ..core.speech import Segment, SpeechParams, SpeechSegmenter
from ..core.turns import TurnParams, TurnStats, compute_turns
from ..core.voice import EchoReference, VoiceClassifier, VoiceParams
from .leg import Leg, LegSnapshot
from .resume import CarriedTotals, Resumed
from .snapshot import ROLES, RoleSnapshot, SessionSnapshot

log = logging.getLogger(__name__)


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
    voice: VoiceClassifier
    "Decides which webrtcvad frames are this role's voice; feeds `segmenter`."
    leg: Leg | None = None
    earlier: list[LegSnapshot] = field(default_factory=list)
    reconnects: int = 0
    heard: HeardTracker | None = None
    "What this role hears, from its probe (browser or Python); None without one."
    sfu: SfuSnapshot | None = None
    "What the SFU measured of this role's path into it (Janus events); None without."
    carried: CarriedTotals | None = None
    "Totals measured by the instance this session moved from (see `Session.resume`)."


class Session:
    """A therapy session as qualmon sees it: one slot per role."""

    def __init__(
        self,
        session_id: str,
        *,
        speech_params: SpeechParams | None = None,
        turn_params: TurnParams | None = None,
        voice_params: VoiceParams | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.id = session_id
        self._speech_params = speech_params or SpeechParams()
        self._turn_params = turn_params or TurnParams()
        self._voice_params = voice_params or VoiceParams()
        self.echo = EchoReference()
        "Every role's recent levels: a frame far under the other side's is its echo."
        self._turns_cache: tuple[float, TurnStats] | None = None
        # Highest values already reported to counters (they must never go down, while a
        # recomputation may reclassify, e.g. an open overlap that becomes a backchannel).
        self._reported: dict[str, float] = {}
        self.started_at = wall_clock()
        self.ended_at: float | None = None
        self.ended_monotonic: float | None = None
        self.slots: dict[str, RoleSlot] = {}
        self.resumed: Resumed | None = None
        "The stored report this session continues, when it moved here from another instance."

    @property
    def live(self) -> bool:
        return self.ended_at is None

    def slot(self, role: str) -> RoleSlot:
        if role not in self.slots:
            segmenter = SpeechSegmenter(self._speech_params)
            voice = VoiceClassifier(
                segmenter, role=role, reference=self.echo, params=self._voice_params
            )
            self.slots[role] = RoleSlot(segmenter=segmenter, voice=voice)
        return self.slots[role]

    def resume(self, resumed: Resumed, now: float, wall_now: float) -> None:
        """Continue a session measured elsewhere until its last checkpoint: its start, its
        roles' totals and speech; the move is one reconnect of every role it had. Call
        before any leg feeds it (`now` monotonic, `wall_now` Unix seconds)."""
        self.started_at = resumed.started_at
        origin = now - (wall_now - resumed.started_at)
        for carried in resumed.roles:
            slot = self.slot(carried.role)
            slot.carried = carried.totals
            slot.reconnects = carried.reconnects + 1
            slot.segmenter.seed([Segment(origin + a, origin + b) for a, b in carried.speech])
        self.resumed = resumed

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

    def live_legs(self) -> list[Leg]:
        return [s.leg for s in self.slots.values() if s.leg and s.leg.state != "ended"]

    def heard_fresh(self, now: float, stale_after_seconds: float) -> bool:
        """Some role's probe sent a sample within stale_after_seconds (monotonic now)."""
        return any(
            s.heard is not None and s.heard.fresh(now, stale_after_seconds)
            for s in self.slots.values()
        )

    def role_snapshot(self, role: str, now: float) -> RoleSnapshot | None:
        """The role's measures now, its legs' totals across reconnects; None for a role with
        neither a leg nor a probe."""
        slot = self.slots.get(role)
        if slot is None or (slot.leg is None and slot.heard is None and slot.carried is None):
            return None
        heard = slot.heard.snapshot(now) if slot.heard is not None else None
        speech_seconds = slot.segmenter.speech_seconds()
        if slot.leg is None and slot.carried is None:
            return _probe_only(slot.reconnects, speech_seconds, heard)
        current = slot.leg.snapshot(now) if slot.leg is not None else None
        parts: list[LegSnapshot | CarriedTotals] = [*slot.earlier]
        if slot.carried is not None:
            parts.append(slot.carried)
        if current is not None:
            parts.append(current)
        expected = sum(p.packets_expected for p in parts)
        lost = sum(p.packets_lost for p in parts)
        return RoleSnapshot(
            # A moved role whose participant has not reconnected yet: its leg was lost
            # with the instance that measured it.
            state=current.state if current else "ended",
            end_reason=current.end_reason if current else "lost",
            packets_received=sum(p.packets_received for p in parts),
            packets_lost=lost,
            loss_ratio=lost / expected if expected else 0.0,
            recent_loss_ratio=current.recent_loss_ratio if current else 0.0,
            jitter_seconds=current.jitter_seconds if current else None,
            rtt_seconds=current.rtt_seconds if current else None,
            mos=current.mos if current else None,
            dropouts=sum(p.dropouts for p in parts),
            dropout_seconds=sum(p.dropout_seconds for p in parts),
            bitrate_bps=current.bitrate_bps if current else 0.0,
            seconds_since_last_packet=current.seconds_since_last_packet if current else None,
            dropouts_in_speech=sum(p.dropouts_in_speech for p in parts),
            dropout_in_speech_seconds=sum(p.dropout_in_speech_seconds for p in parts),
            reconnects=slot.reconnects,
            speech_seconds=speech_seconds,
            mic_silent=current is not None
            and current.state in ("live", "stalled")
            and slot.segmenter.mic_silent(),
            heard=heard,
            sfu=slot.sfu,
            video=current.video if current else None,
        )

    def snapshot(self, now: float) -> SessionSnapshot:
        roles: dict[str, RoleSnapshot] = {}
        for role in ROLES:
            found = self.role_snapshot(role, now)
            if found is not None:
                roles[role] = found
        return SessionSnapshot(
            id=self.id,
            live=self.live,
            started_at=self.started_at,
            ended_at=self.ended_at,
            roles=roles,
            turns=self.turn_stats(now),
        )


def _probe_only(
    reconnects: int, speech_seconds: float, heard: HeardSnapshot | None
) -> RoleSnapshot:
    """A role known from its probe alone: no leg, so counters 0 and measures unknown."""
    return RoleSnapshot(
        state="probe_only",
        end_reason=None,
        packets_received=0,
        packets_lost=0,
        loss_ratio=0.0,
        recent_loss_ratio=0.0,
        jitter_seconds=None,
        rtt_seconds=None,
        mos=None,
        dropouts=0,
        dropout_seconds=0.0,
        bitrate_bps=0.0,
        seconds_since_last_packet=None,
        dropouts_in_speech=0,
        dropout_in_speech_seconds=0.0,
        reconnects=reconnects,
        speech_seconds=speech_seconds,
        mic_silent=False,
        heard=heard,
    )
