"""What a session brings along when it moves to this instance: its report so far.

When the instance that measured a session dies (or drains past its deadline), the next leg
of that session lands elsewhere. The new owner continues the session from its last stored
checkpoint instead of starting a second report: same start, the legs' totals and speech
carried over, and the move counted as one reconnect of each role.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CarriedTotals:
    """A role's counters up to the last checkpoint (what its earlier legs measured)."""

    packets_received: int
    packets_lost: int
    dropouts: int
    dropout_seconds: float
    dropouts_in_speech: int
    dropout_in_speech_seconds: float

    @property
    def packets_expected(self) -> int:
        return self.packets_received + self.packets_lost


@dataclass(frozen=True)
class CarriedDropout:
    t_seconds: float
    "Seconds since the session started."
    duration_seconds: float
    in_speech: bool | None


@dataclass(frozen=True)
class CarriedRole:
    role: str
    totals: CarriedTotals
    reconnects: int
    "Reconnects before the move (the move adds one)."
    speech: tuple[tuple[float, float], ...]
    "Speech segments, (start, end) in seconds since the session started."
    dropouts: tuple[CarriedDropout, ...]


@dataclass(frozen=True)
class Resumed:
    """A session continued from its stored report."""

    started_at: float
    "Unix seconds: the report's start, kept so the report goes on under the same key."
    roles: tuple[CarriedRole, ...]

    def role(self, role: str) -> CarriedRole | None:
        return next((r for r in self.roles if r.role == role), None)
