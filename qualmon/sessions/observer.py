"""What the session layer tells its outputs (metrics, reports, the warning timeline).

The one observer mechanism of qualmon: an output subclasses the observer, overrides the
calls it needs (every one is a no-op here) and is handed to the layer that emits them —
`SessionRegistry(observers=…)` here, `WarningsRuntime.add_observer` for warnings. Calls
carry typed values, never JSON; an observer that raises is logged and skipped, and never
stops the measuring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..core.rtp_stats import Dropout
from ..core.turns import TurnStats
from .leg import EndReason, LegSnapshot
from .session import ConversationDeltas, Session

SessionEndReason = Literal["ended", "shutdown"]


@dataclass(frozen=True)
class SessionEnd:
    """A session that just ended, with its final talk-turn figures."""

    session: Session
    reason: SessionEndReason
    turns: TurnStats


class SessionObserver:
    """Override what you need; the registry calls every method on the event loop."""

    def on_dropout(self, role: str, dropout: Dropout) -> None:
        """A stretch of missing audio ended on a leg of this role."""

    def on_dropout_in_speech(self, role: str, dropout: Dropout) -> None:
        """That dropout turned out to have speech on both sides of it."""

    def on_rtt(self, role: str, rtt_seconds: float) -> None:
        """One round-trip measurement."""

    def on_packets(self, role: str, received: int, lost: int) -> None:
        """Growth of a leg's received and lost packet counts (never negative)."""

    def on_leg_sample(self, role: str, snapshot: LegSnapshot) -> None:
        """A live leg's measures, once a second."""

    def on_leg_ended(self, role: str, reason: EndReason) -> None:
        """A leg ended (and left the registry)."""

    def on_reconnect(self, role: str) -> None:
        """A role's live leg was replaced by a new one."""

    def on_conversation(self, deltas: ConversationDeltas) -> None:
        """Growth of a session's conversation counters, once a second and at its end."""

    def on_session_sample(self, session: Session, now: float) -> None:
        """A live session, once a second (monotonic now)."""

    def on_session_ended(self, ended: SessionEnd) -> None:
        """A session ended: its last legs are closing, its report is due."""
