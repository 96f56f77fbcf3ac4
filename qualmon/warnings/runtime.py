"""Live warnings: each session's measures into the engine, typed events out to observers
and event-stream subscribers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..core.warnings import DEFAULT_RULES, Rule, WarningEngine, WarningEvent
from ..sessions.registry import SessionRegistry
from ..sessions.session import Session
from ..sessions.snapshot import SessionSnapshot
from .measures import measurements
from .video import VideoWindows

log = logging.getLogger(__name__)

TICK_SECONDS = 0.5
DEADLINE_SLACK_SECONDS = 0.005  # wake just past a deadline, not just before it
SNAPSHOT_EVERY_SECONDS = 3.0
QUEUE_LIMIT = 256  # a subscriber this far behind is dropped, never the service slowed

WarningKey = tuple[str, str | None]
"(kind, role); role None for a warning about the conversation."


@dataclass(frozen=True)
class Pulse:
    """A session's live state for event-stream subscribers, every few seconds."""

    session: SessionSnapshot
    warnings: tuple[WarningEvent, ...]
    at_seconds: float
    "Unix seconds."


@dataclass(frozen=True)
class Restart:
    """The service is going away; subscribers should reconnect after a while."""

    retry_after_seconds: float


StreamMessage = WarningEvent | Pulse | Restart
"What an event-stream subscriber receives; None on its queue ends the stream."


class WarningObserver:
    """Told every raised and cleared warning, with `at` in Unix seconds (metrics, the
    report's timeline, the webhook). Same mechanism as `sessions.observer`."""

    def on_warning(self, session_id: str, event: WarningEvent) -> None:
        """A warning was raised or cleared."""


@dataclass
class SessionWarnings:
    """Engine, active warnings, history and subscribers of one session."""

    engine: WarningEngine
    session: Session
    active: dict[WarningKey, WarningEvent] = field(default_factory=dict)
    "Raised and not yet cleared; `at` in Unix seconds."
    subscribers: set[asyncio.Queue[StreamMessage | None]] = field(default_factory=set)
    last_snapshot_at: float = 0.0
    finished: bool = False
    video: VideoWindows = field(default_factory=VideoWindows)
    "Each role's recent freezes (video_frozen), kept across ticks."


class WarningsRuntime:
    """Ticks every session's engine and fans events out to subscribers and observers."""

    def __init__(
        self,
        sessions: SessionRegistry,
        *,
        rules: tuple[Rule, ...] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._rules = rules
        self._clock = clock
        self._wall = wall_clock
        self.by_session: dict[str, SessionWarnings] = {}
        self._observers: list[WarningObserver] = []
        self._final: dict[str, tuple[WarningEvent, ...]] = {}
        "Warnings still raised when a since compacted session ended, while it is retained."
        self.talk_balance_enabled = any(
            r.kind == "talk_balance" and r.enabled for r in (rules or ())
        )
        # A rule set without media_stopped simply has no deadline to wake for.
        self._media_stopped = next(
            (r for r in rules or DEFAULT_RULES if r.kind == "media_stopped"), None
        )

    def state_for(self, session: Session) -> SessionWarnings:
        current = self.by_session.get(session.id)
        if current is None or current.session is not session:
            engine = WarningEngine(rules=self._rules) if self._rules else WarningEngine()
            subscribers = current.subscribers if current else set()
            current = SessionWarnings(engine=engine, session=session, subscribers=subscribers)
            self.by_session[session.id] = current
        return current

    def add_observer(self, observer: WarningObserver) -> None:
        self._observers.append(observer)

    def active(self, session_id: str) -> tuple[WarningEvent, ...]:
        """Warnings raised and not cleared, oldest first; `at` in Unix seconds. For an
        ended session, the ones still raised when it ended."""
        state = self.by_session.get(session_id)
        if state is not None:
            return tuple(state.active.values())
        return self._final.get(session_id, ())

    def active_counts(self) -> dict[str, int]:
        """Active warnings of sessions still running (an ended session's last ones stay in
        its JSON and report, not in the fleet's gauge)."""
        counts: dict[str, int] = {}
        for state in self.by_session.values():
            if state.finished:
                continue
            for kind, _ in state.active:
                counts[kind] = counts.get(kind, 0) + 1
        return counts

    def subscribe(self, session_id: str) -> asyncio.Queue[StreamMessage | None]:
        queue: asyncio.Queue[StreamMessage | None] = asyncio.Queue(QUEUE_LIMIT)
        state = self.by_session.get(session_id)
        if state is None:
            session = self._sessions.sessions.get(session_id)
            if session is None:
                raise KeyError(session_id)
            state = self.state_for(session)
        for event in state.active.values():
            queue.put_nowait(event)
        state.subscribers.add(queue)
        return queue

    def unsubscribe(self, session_id: str, queue: asyncio.Queue[StreamMessage | None]) -> None:
        state = self.by_session.get(session_id)
        if state is not None:
            state.subscribers.discard(queue)

    def _publish(self, state: SessionWarnings, message: StreamMessage | None) -> None:
        for queue in list(state.subscribers):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                state.subscribers.discard(queue)
                log.warning("dropped an event-stream subscriber that fell behind")

    def tick(self, *, kinds: tuple[str, ...] | None = None) -> None:
        """Evaluate every live session's rules (only `kinds` when given: a deadline check)."""
        now, wall = self._clock(), self._wall()
        if kinds is None:
            self._forget_retired()
        for session in list(self._sessions.sessions.values()):
            state = self.state_for(session)
            if state.finished:
                continue
            values = measurements(
                session, now, talk_balance=self.talk_balance_enabled, video=state.video
            )
            for found in state.engine.evaluate(now, values, kinds=kinds):
                # The engine runs on the monotonic clock; outputs get Unix seconds.
                event = replace(found, at=wall - (now - found.at))
                key = (event.kind, event.role)
                if event.type == "raised":
                    state.active[key] = event
                else:
                    state.active.pop(key, None)
                self._publish(state, event)
                for observer in self._observers:
                    try:
                        observer.on_warning(session.id, event)
                    except Exception:
                        log.exception("warning observer %s failed", type(observer).__name__)
            if kinds is not None:
                continue
            if now - state.last_snapshot_at >= SNAPSHOT_EVERY_SECONDS:
                state.last_snapshot_at = now
                self._publish(state, self.pulse(session, now))
            if not session.live:
                # One last evaluation saw the end (connection_lost); then stop.
                state.finished = True

    def pulse(self, session: Session, now: float) -> Pulse:
        return Pulse(session.snapshot(now), self.active(session.id), self._wall())

    def _forget_retired(self) -> None:
        """Drop the engine and subscribers of sessions the registry has compacted or
        forgotten; of a compacted one keep only the warnings it ended with."""
        registry = self._sessions
        for session_id in [s for s in self.by_session if s not in registry.sessions]:
            state = self.by_session.pop(session_id)
            self._publish(state, None)
            if session_id in registry.ended and state.active:
                self._final[session_id] = tuple(state.active.values())
        for session_id in [s for s in self._final if s not in registry.ended]:
            del self._final[session_id]

    def _media_deadline(self, now: float) -> float | None:
        """When the first leg still receiving will have been silent for media_stopped's time.

        Ticks alone would raise media_stopped up to a tick late (2.0–2.5 s after the last
        packet); a wake-up at the deadline raises it at 2.0 s.
        """
        rule = self._media_stopped
        if rule is None or not rule.enabled:
            return None
        deadline: float | None = None
        for session in self._sessions.sessions.values():
            for slot in session.slots.values():
                leg = slot.leg
                if leg is None or leg.state == "ended":
                    continue
                silent = leg.seconds_since_last_packet(now)
                if silent is not None and silent < rule.threshold:
                    due = now + rule.threshold - silent + DEADLINE_SLACK_SECONDS
                    deadline = due if deadline is None else min(deadline, due)
        return deadline

    async def run(self) -> None:
        next_tick = self._clock() + TICK_SECONDS
        while True:
            now = self._clock()
            deadline = self._media_deadline(now)
            wake = next_tick if deadline is None else min(next_tick, deadline)
            await asyncio.sleep(max(0.0, wake - now))
            try:
                if self._clock() >= next_tick:
                    # Fixed cadence; after a stall (overloaded loop) start afresh from now.
                    next_tick = max(next_tick + TICK_SECONDS, self._clock())
                    self.tick()
                else:
                    self.tick(kinds=("media_stopped",))
            except Exception:
                log.exception("warnings tick failed")

    def close_streams(self, *, restart: bool) -> None:
        """Tell every subscriber the service is going away, then end their streams."""
        for state in self.by_session.values():
            if restart:
                self._publish(state, Restart(retry_after_seconds=5.0))
            self._publish(state, None)
