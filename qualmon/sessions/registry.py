"""The session registry: creates sessions, admits, replaces and retires legs, runs leg timers.

Legs come from any `LegSource` through a factory (`add_leg`), so the registry never knows
whether media arrives over WHIP, plain RTP or an SFU.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from ..config import Settings
from ..core.heard import HeardInterval, HeardSample, HeardTracker
from ..core.leg_source import LegFeed, LegSource
from .leg import EndReason, Leg
from .observer import SessionEnd, SessionObserver
from .resume import Resumed
from .sampling import SampleSchedule
from .session import Session
from .snapshot import EndedSession, SessionSnapshot

log = logging.getLogger(__name__)


AnswerT = TypeVar("AnswerT")
SourceFactory = Callable[[LegFeed], LegSource[AnswerT]]
"Builds a leg's media end around the leg it will feed (e.g. a WHIP peer for an offer)."
ResumeLookup = Callable[[str], Awaitable[Resumed | None]]
"The stored report a new session may continue (it moved here from another instance)."


class CapacityError(RuntimeError):
    """The configured leg cap is reached."""


class SessionRegistry:
    """Live and recently ended sessions; creates, replaces and retires legs."""

    def __init__(
        self,
        settings: Settings,
        *,
        observers: Sequence[SessionObserver] = (),
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._observers = tuple(observers)
        self._clock = clock
        self._wall_clock = wall_clock
        self.sessions: dict[str, Session] = {}
        "Live sessions, and ended ones until their legs have closed and outputs settled."
        self.ended: dict[str, EndedSession] = {}
        "Ended sessions as frozen snapshots, kept readable for ended_retention_seconds."
        self.legs_by_resource: dict[str, Leg] = {}
        self._closing: set[asyncio.Task[None]] = set()
        # (received, lost) already reported per leg, so counters get deltas only.
        self._counted: dict[str, tuple[int, int]] = {}
        # Legs being answered (inside aiortc) count against the cap already.
        self._pending = 0
        self.resume_from: ResumeLookup | None = None
        "Set by the report store: asked once per session this instance starts with a leg."
        self._leg_samples = SampleSchedule()
        self._session_samples = SampleSchedule()
        self.accepting = True
        self._shutting_down = False

    def add_observer(self, observer: SessionObserver) -> None:
        self._observers = (*self._observers, observer)

    def _tell(self, call: Callable[[SessionObserver], None]) -> None:
        for observer in self._observers:
            try:
                call(observer)
            except Exception:
                log.exception("session observer %s failed", type(observer).__name__)

    # -- queries -------------------------------------------------------------

    def live_leg_count(self) -> int:
        return sum(1 for leg in self.legs_by_resource.values() if leg.state != "ended")

    def is_live(self, session_id: str) -> bool:
        """The session is live here (a dict look-up: asked on every relayed route)."""
        session = self.sessions.get(session_id)
        return session is not None and session.live

    def live_sessions(self) -> list[Session]:
        return [s for s in self.sessions.values() if s.live]

    def snapshot_of(self, session_id: str, now: float) -> SessionSnapshot | None:
        """The session now, live or ended (while it is retained); None if unknown."""
        session = self.sessions.get(session_id)
        if session is not None:
            return session.snapshot(now)
        ended = self.ended.get(session_id)
        return ended.snapshot if ended is not None else None

    def snapshots(self, now: float) -> list[SessionSnapshot]:
        """Every session the registry knows: live, just ended, and retained."""
        found = [s.snapshot(now) for s in self.sessions.values()]
        found.extend(e.snapshot for e in self.ended.values() if e.snapshot.id not in self.sessions)
        return found

    # -- legs ----------------------------------------------------------------

    async def add_leg(
        self, session_id: str, role: str, make_source: SourceFactory[AnswerT]
    ) -> tuple[Leg, AnswerT]:
        """Create a leg for (session, role), replacing a live one; returns it and what its
        source's start gave (a WHIP answer).

        Everything that depends on other legs is decided after the awaits (the stored report
        a new session may continue, the source starting), so concurrent attaches for one
        session or near the cap cannot race.
        """
        if not self._live_role(session_id, role) and (
            self.live_leg_count() + self._pending >= self._settings.max_legs
        ):
            raise CapacityError("leg cap reached")
        leg = Leg(
            resource_id=secrets.token_urlsafe(24),
            session_id=session_id,
            role=role,
            settings=self._settings,
            on_dropout=lambda leg, d: self._tell(lambda o: o.on_dropout(leg.role, d)),
            on_rtt=lambda leg, rtt: self._tell(lambda o: o.on_rtt(leg.role, rtt)),
            on_dropout_in_speech=lambda leg, d: self._tell(
                lambda o: o.on_dropout_in_speech(leg.role, d)
            ),
            clock=self._clock,
        )
        self._pending += 1
        try:
            resumed = await self._resumable(session_id)
            source = leg.source = make_source(leg)
            answer = await source.start()
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
            if resumed is not None:
                session.resume(resumed, self._clock(), self._wall_clock())
        slot = session.slot(role)
        # Media flows only once the answer is returned, so the role's segmenter is in
        # place before the first frame.
        leg.use_segmenter(slot.segmenter, slot.voice)
        old = slot.leg
        if old is not None:
            if old.state != "ended":
                slot.reconnects += 1
                self._tell(lambda o: o.on_reconnect(role))
                self._retire(old, "replaced")
            # Its totals carry over, whether replaced now or ended on its own earlier.
            slot.earlier.append(old.snapshot(self._clock()))
        slot.leg = leg
        self.legs_by_resource[leg.resource_id] = leg
        return leg, answer

    async def _resumable(self, session_id: str) -> Resumed | None:
        """The stored report to continue if this leg starts the session here; never raises
        (a store that cannot answer costs the continuation, not the leg)."""
        if self.resume_from is None or self.is_live(session_id):
            return None
        try:
            return await self.resume_from(session_id)
        except Exception as exc:  # a store fault: start a new report instead
            log.warning("cannot look up a stored report to continue (%s)", type(exc).__name__)
            return None

    def _new_session(self, session_id: str) -> Session:
        session = Session(
            session_id,
            speech_params=self._settings.speech,
            turn_params=self._settings.turns,
            voice_params=self._settings.voice,
            wall_clock=self._wall_clock,
        )
        self.sessions[session_id] = session
        self.ended.pop(session_id, None)  # an id may be reused once its session ended
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
        if not self.is_live(session_id):
            return False
        session = self.sessions[session_id]
        slot = session.slots.get(role)
        return bool(slot and slot.leg and slot.leg.state != "ended")

    def _retire(self, leg: Leg, reason: EndReason) -> None:
        """End a leg and move its totals into its role's history."""
        task = leg.request_close(reason)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        self._count(leg)
        self._counted.pop(leg.resource_id, None)
        self._leg_samples.forget(leg.resource_id)
        self.legs_by_resource.pop(leg.resource_id, None)
        ended = leg.end_reason or reason
        self._tell(lambda o: o.on_leg_ended(leg.role, ended))

    async def delete_leg(self, resource_id: str) -> bool:
        leg = self.legs_by_resource.get(resource_id)
        if leg is None:
            return False
        self._retire(leg, "closed")
        self._maybe_end_session(leg.session_id)
        # The leg's close is bounded by its source; this bound only keeps a caller (DELETE)
        # from waiting for ever should a source break that promise.
        ended = asyncio.ensure_future(leg.ended.wait())
        done, _ = await asyncio.wait({ended}, timeout=2 * self._settings.close_timeout_seconds + 1)
        if not done:
            ended.cancel()
            log.warning("a deleted leg had not finished closing; answered anyway")
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
            deltas = session.conversation_deltas(stats)
            self._tell(lambda o: o.on_conversation(deltas))
            end = SessionEnd(session, "shutdown" if self._shutting_down else "ended", stats)
            self._tell(lambda o: o.on_session_ended(end))
            log.info("session ended (%d roles)", len(session.slots))

    def _count(self, leg: Leg) -> None:
        received0, lost0 = self._counted.get(leg.resource_id, (0, 0))
        received = leg.stats.packets_received
        # A late reordered packet lowers `lost`; a counter must not go down, so
        # report only growth beyond the highest value reported.
        lost = max(lost0, leg.stats.packets_expected - received)
        if received > received0 or lost > lost0:
            grown = (received - received0, lost - lost0)
            self._tell(lambda o: o.on_packets(leg.role, *grown))
        self._counted[leg.resource_id] = (received, lost)

    # -- timers --------------------------------------------------------------

    def tick(self) -> None:
        """Leg timers, metric feeds and forgetting old sessions; call every few 100 ms."""
        now = self._clock()
        for leg in list(self.legs_by_resource.values()):
            leg.tick(now)
            self._count(leg)
            if leg.state in ("live", "stalled") and self._leg_samples.due(leg.resource_id, now):
                self._sample_leg(leg, now)
            if leg.state == "ended":
                self._retire(leg, leg.end_reason or "failed")
        for session in list(self.sessions.values()):
            if session.live and self._session_samples.due(session.id, now):
                self._sample_session(session, now)
            if not session.live:
                self._session_samples.forget(session.id)
            if session.live:
                self._maybe_end_session(session.id)
            elif self._settled(session, now):
                self._compact(session, now)
        retention = self._settings.ended_retention_seconds
        for session_id, ended in list(self.ended.items()):
            if now - ended.ended_monotonic > retention:
                del self.ended[session_id]

    def _settled(self, session: Session, now: float) -> bool:
        """Ended, its legs closed, and long enough ago that every output had its last look
        (the warnings runtime's final evaluation, the recorder's final report)."""
        ended_at = session.ended_monotonic
        if ended_at is None or now - ended_at < self._settings.settle_seconds:
            return False
        return all(s.leg is None or s.leg.ended.is_set() for s in session.slots.values())

    def _compact(self, session: Session, now: float) -> None:
        """Keep a frozen snapshot and let the session go, with every leg, buffer and
        speech history it holds: ended sessions stay readable for minutes, and a platform
        ends thousands of them."""
        ended_at = session.ended_monotonic if session.ended_monotonic is not None else now
        if now - ended_at <= self._settings.ended_retention_seconds:
            self.ended[session.id] = EndedSession(session.snapshot(now), ended_at)
        del self.sessions[session.id]

    def _sample_leg(self, leg: Leg, now: float) -> None:
        snapshot = leg.snapshot(now)
        self._tell(lambda o: o.on_leg_sample(leg.role, snapshot))

    def _sample_session(self, session: Session, now: float) -> None:
        deltas = session.conversation_deltas(session.turn_stats(now))
        self._tell(lambda o: o.on_conversation(deltas))
        self._tell(lambda o: o.on_session_sample(session, now))

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
