"""The session registry: creates sessions, admits, replaces and retires legs, runs leg timers."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import Protocol

from ..config import Settings
from ..core.heard import HeardInterval, HeardSample, HeardTracker
from ..core.rtp_stats import Dropout
from ..core.turns import TurnStats
from ..media.leg import EndReason, LegSnapshot, WhipLeg
from ..media.offer import ValidatedOffer
from .session import ConversationDeltas, Session

log = logging.getLogger(__name__)


class QualityObserver(Protocol):
    """What the session layer reports to (the Prometheus exporter, tests)."""

    def on_dropout(self, role: str, dropout: Dropout) -> None: ...
    def on_rtt(self, role: str, rtt_seconds: float) -> None: ...
    def on_packets(self, role: str, received: int, lost: int) -> None: ...
    def on_leg_sample(self, role: str, snapshot: LegSnapshot) -> None: ...
    def on_leg_ended(self, role: str, reason: EndReason) -> None: ...
    def on_dropout_in_speech(self, role: str, dropout: Dropout) -> None: ...
    def on_conversation(self, deltas: ConversationDeltas) -> None: ...
    def on_session_ended(self, stats: TurnStats) -> None: ...
    def on_reconnect(self, role: str) -> None: ...


class CapacityError(RuntimeError):
    """The configured leg cap is reached."""


class SessionRegistry:
    """Live and recently ended sessions; creates, replaces and retires legs."""

    def __init__(
        self,
        settings: Settings,
        observer: QualityObserver,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._observer = observer
        self._clock = clock
        self._wall_clock = wall_clock
        self.sessions: dict[str, Session] = {}
        self.legs_by_resource: dict[str, WhipLeg] = {}
        self._closing: set[asyncio.Task[None]] = set()
        # (received, lost) already reported per leg, so counters get deltas only.
        self._counted: dict[str, tuple[int, int]] = {}
        # Legs being answered (inside aiortc) count against the cap already.
        self._pending = 0
        self._last_sample_at = 0.0
        self.accepting = True
        # Called with (session, now) once a second per live session, and with
        # (session, reason) when a session ends; reason is "ended" or "shutdown".
        # The warning engine and the store hang off these.
        self.sample_hooks: list[Callable[[Session, float], None]] = []
        self.end_hooks: list[Callable[[Session, str], None]] = []
        self._shutting_down = False

    # -- queries -------------------------------------------------------------

    def live_leg_count(self) -> int:
        return sum(1 for leg in self.legs_by_resource.values() if leg.state != "ended")

    def live_sessions(self) -> list[Session]:
        return [s for s in self.sessions.values() if s.live]

    # -- legs ----------------------------------------------------------------

    async def add_leg(
        self, session_id: str, role: str, offer: ValidatedOffer
    ) -> tuple[WhipLeg, str]:
        """Create a leg for (session, role), replacing a live one; returns it and the answer.

        Everything that depends on other legs is decided after the only await (aiortc
        answering), so concurrent POSTs for one session or near the cap cannot race.
        """
        if not self._live_role(session_id, role) and (
            self.live_leg_count() + self._pending >= self._settings.max_legs
        ):
            raise CapacityError("leg cap reached")
        leg = WhipLeg(
            resource_id=secrets.token_urlsafe(24),
            session_id=session_id,
            role=role,
            settings=self._settings,
            on_dropout=lambda leg, d: self._observer.on_dropout(leg.role, d),
            on_rtt=lambda leg, rtt: self._observer.on_rtt(leg.role, rtt),
            on_dropout_in_speech=lambda leg, d: self._observer.on_dropout_in_speech(leg.role, d),
            clock=self._clock,
        )
        self._pending += 1
        try:
            answer = await leg.accept(offer)
        except BaseException:
            await leg.close("failed")
            raise
        finally:
            self._pending -= 1
        if not self.accepting:
            # Shutdown began while aiortc answered; close_all has not seen this leg.
            await leg.close("shutdown")
            raise CapacityError("shutting down")
        session = self.sessions.get(session_id)
        if session is None or not session.live:
            session = self._new_session(session_id)
        slot = session.slot(role)
        # Media flows only once the answer is returned, so the role's segmenter is in
        # place before the first frame.
        leg.use_segmenter(slot.segmenter)
        old = slot.leg
        if old is not None:
            if old.state != "ended":
                slot.reconnects += 1
                self._observer.on_reconnect(role)
                self._retire(old, "replaced")
            # Its totals carry over, whether replaced now or ended on its own earlier.
            slot.earlier.append(old.snapshot(self._clock()))
        slot.leg = leg
        self.legs_by_resource[leg.resource_id] = leg
        return leg, answer

    def _new_session(self, session_id: str) -> Session:
        session = Session(
            session_id,
            speech_params=self._settings.speech,
            turn_params=self._settings.turns,
            wall_clock=self._wall_clock,
        )
        self.sessions[session_id] = session
        return session

    def add_heard(
        self, session_id: str, role: str, sample: HeardSample
    ) -> tuple[Session, HeardInterval | None]:
        """Take a validated probe sample for (session, role); the first one creates the session.

        Checked against the role's previous sample first (HeardError: nothing is stored,
        no session is created). Returns the session and the interval the sample closed.
        """
        now = self._clock()
        session = self.sessions.get(session_id)
        if session is not None and not session.live:
            session = None  # an ended session stays readable; new data starts a new one
        slot = session.slots.get(role) if session is not None else None
        tracker = slot.heard if slot is not None else None
        if tracker is None:
            tracker = HeardTracker(emodel=self._settings.emodel)
        interval = tracker.add(sample, received_at=now)
        if session is None:
            session = self._new_session(session_id)
            log.info("session started from probe data")
        session.slot(role).heard = tracker
        return session, interval

    def _live_role(self, session_id: str, role: str) -> bool:
        session = self.sessions.get(session_id)
        if session is None or not session.live:
            return False
        slot = session.slots.get(role)
        return bool(slot and slot.leg and slot.leg.state != "ended")

    def _retire(self, leg: WhipLeg, reason: EndReason) -> None:
        """End a leg and move its totals into its role's history."""
        task = leg.request_close(reason)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        self._count(leg)
        self._counted.pop(leg.resource_id, None)
        self.legs_by_resource.pop(leg.resource_id, None)
        self._observer.on_leg_ended(leg.role, leg.end_reason or reason)

    async def delete_leg(self, resource_id: str) -> bool:
        leg = self.legs_by_resource.get(resource_id)
        if leg is None:
            return False
        self._retire(leg, "closed")
        self._maybe_end_session(leg.session_id)
        await leg.ended.wait()
        return True

    def _maybe_end_session(self, session_id: str, *, force: bool = False) -> None:
        session = self.sessions.get(session_id)
        if session is None or not session.live or session.live_legs():
            return
        # A probe still sending keeps the session (probe-only sessions have no legs at all).
        stale_after = self._settings.lost_after_seconds
        if force or not session.heard_fresh(self._clock(), stale_after):
            session.ended_at = self._wall_clock()
            session.ended_monotonic = self._clock()
            stats = session.turn_stats(self._clock(), max_age_seconds=0.0)
            self._observer.on_conversation(session.conversation_deltas(stats))
            self._observer.on_session_ended(stats)
            reason = "shutdown" if self._shutting_down else "ended"
            for hook in self.end_hooks:
                try:
                    hook(session, reason)
                except Exception:
                    log.exception("session end hook failed")
            log.info("session ended (%d roles)", len(session.slots))

    def _count(self, leg: WhipLeg) -> None:
        received0, lost0 = self._counted.get(leg.resource_id, (0, 0))
        received = leg.stats.packets_received
        # A late reordered packet lowers `lost`; a counter must not go down, so
        # report only growth beyond the highest value reported.
        lost = max(lost0, leg.stats.packets_expected - received)
        if received > received0 or lost > lost0:
            self._observer.on_packets(leg.role, received - received0, lost - lost0)
        self._counted[leg.resource_id] = (received, lost)

    # -- timers --------------------------------------------------------------

    def tick(self) -> None:
        """Leg timers, metric feeds and forgetting old sessions; call every few 100 ms."""
        now = self._clock()
        sample = now - self._last_sample_at >= 1.0
        if sample:
            self._last_sample_at = now
        for leg in list(self.legs_by_resource.values()):
            leg.tick(now)
            self._count(leg)
            if sample and leg.state in ("live", "stalled"):
                self._observer.on_leg_sample(leg.role, leg.snapshot(now))
            if leg.state == "ended":
                self._retire(leg, leg.end_reason or "failed")
        for session in list(self.sessions.values()):
            if session.live and sample:
                stats = session.turn_stats(now)
                self._observer.on_conversation(session.conversation_deltas(stats))
                for sample_hook in self.sample_hooks:
                    try:
                        sample_hook(session, now)
                    except Exception:
                        log.exception("session sample hook failed")
            if session.live:
                self._maybe_end_session(session.id)
            elif (
                session.ended_monotonic is not None
                and now - session.ended_monotonic > self._settings.ended_retention_seconds
            ):
                del self.sessions[session.id]

    async def run_ticker(self) -> None:
        while True:
            await asyncio.sleep(self._settings.tick_seconds)
            try:
                self.tick()
            except Exception:
                log.exception("session tick failed")

    async def close_all(self, reason: EndReason = "shutdown") -> None:
        self._shutting_down = reason == "shutdown"
        for leg in list(self.legs_by_resource.values()):
            self._retire(leg, reason)
        for session_id in list(self.sessions):
            self._maybe_end_session(session_id, force=True)
        if self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)
