"""A session as the outputs see it at one moment: typed, frozen, serialized only at the edge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..core.heard import HeardSnapshot
from ..core.sfu import SfuSnapshot
from ..core.turns import TurnStats
from ..core.video import VideoSnapshot
from .leg import EndReason, LegState

Role = Literal["therapist", "client"]
ROLES: tuple[Role, ...] = ("therapist", "client")

RoleState = LegState | Literal["probe_only"]


@dataclass(frozen=True)
class RoleSnapshot:
    """One role now: its current leg's state, totals across its reconnects, its speech and
    what it hears. A role known from its probe alone is "probe_only", counters 0, measures
    None."""

    state: RoleState
    end_reason: EndReason | None
    packets_received: int
    "Summed over every leg the role had (reconnects included)."
    packets_lost: int
    loss_ratio: float
    "Lost / expected over every leg the role had."
    recent_loss_ratio: float
    jitter_seconds: float | None
    rtt_seconds: float | None
    mos: float | None
    dropouts: int
    dropout_seconds: float
    bitrate_bps: float
    seconds_since_last_packet: float | None
    dropouts_in_speech: int
    dropout_in_speech_seconds: float
    reconnects: int
    speech_seconds: float
    mic_silent: bool
    heard: HeardSnapshot | None
    "From the role's probe (browser or Python); None without one."
    sfu: SfuSnapshot | None = None
    "From the SFU's events (Janus): its view of the role's path into it; None without."
    video: VideoSnapshot | None = None
    "The current leg's video; None for an audio-only leg or without a leg."


@dataclass(frozen=True)
class SessionSnapshot:
    """A session now; times are Unix seconds."""

    id: str
    live: bool
    started_at: float
    ended_at: float | None
    roles: dict[str, RoleSnapshot]
    "In ROLES order; only roles that have a leg or a probe."
    turns: TurnStats


@dataclass(frozen=True)
class EndedSession:
    """What the registry keeps of a session once it has ended and settled: its last
    snapshot (a few KB), not its legs, buffers or speech history."""

    snapshot: SessionSnapshot
    ended_monotonic: float
    "When it ended, on the monotonic clock (for its retention)."
