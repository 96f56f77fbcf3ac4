"""Live warnings: measurements from each session's legs into the engine, events to listeners."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.heard import STALE_AFTER_SECONDS
from ..core.instants import iso
from ..core.speech import Segment
from ..core.turns import intersection_length
from ..core.warnings import DEFAULT_RULES, Rule, WarningEngine, WarningEvent
from ..sessions.registry import SessionRegistry
from ..sessions.session import Session

log = logging.getLogger(__name__)

TICK_SECONDS = 0.5
DEADLINE_SLACK_SECONDS = 0.005  # wake just past a deadline, not just before it
SNAPSHOT_EVERY_SECONDS = 3.0
# (seconds, packets the window needs, scale to the 5 s threshold): see the high_loss rule.
# At a stream's start a single loss among a few packets would otherwise read as a high rate.
LOSS_WINDOWS = ((5.0, 200, 1.0), (2.0, 80, 0.043 / 0.08), (1.0, 40, 0.043 / 0.14))
RECENT_LOSS_WINDOW = (3.0, 100)
DROPOUT_WINDOW_SECONDS = 10.0
OVERLAP_WINDOW_SECONDS = 30.0
OVERLAP_RTT_SECONDS = 0.300
BALANCE_WINDOW_SECONDS = 300.0
QUEUE_LIMIT = 256  # a subscriber this far behind is dropped, never the service slowed


@dataclass(frozen=True)
class StreamMessage:
    """One message for event-stream subscribers: raised, cleared, snapshot or restart."""

    event: str
    data: dict[str, Any]


def event_json(event: WarningEvent, wall_at: float) -> dict[str, Any]:
    doc = asdict(event)
    doc.pop("type")
    doc["at"] = iso(wall_at)
    return doc


def loss_value(stats: Any, now: float) -> float | None:
    """The worst loss window, scaled to the 5 s threshold (high_loss); None: too few packets."""
    worst: float | None = None
    for seconds, min_expected, scale in LOSS_WINDOWS:
        ratio = stats.window_loss_ratio(now, seconds, min_expected=min_expected)
        if ratio is not None and (worst is None or ratio * scale > worst):
            worst = ratio * scale
    return worst


def measurements(
    session: Session, now: float, *, talk_balance: bool = True
) -> dict[tuple[str, str | None], float | None]:
    """The value of every rule for every role of this session, now (monotonic seconds).

    talk_balance=False skips that (off by default) rule's 5-minute scan.
    """
    values: dict[tuple[str, str | None], float | None] = {}
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
        values[("media_stopped", role)] = leg.stats.seconds_since_last_packet(now)
        recent[role] = slot.segmenter.segments_since(now - OVERLAP_WINDOW_SECONDS)
        if leg.state != "live":
            continue
        rtt = leg.rtt.snapshot(now).rtt_seconds
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


@dataclass
class SessionWarnings:
    """Engine, active warnings, history and subscribers of one session."""

    engine: WarningEngine
    session: Session
    active: dict[tuple[str, str | None], dict[str, Any]] = field(default_factory=dict)
    history: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    subscribers: set[asyncio.Queue[StreamMessage | None]] = field(default_factory=set)
    last_snapshot_at: float = 0.0
    finished: bool = False


class WarningsRuntime:
    """Ticks every session's engine and fans events out to subscribers and listeners."""

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
        # Called with (session_id, "raised"|"cleared", event json): metrics, store, webhooks.
        self.listeners: list[Callable[[str, str, dict[str, Any]], None]] = []
        self.talk_balance_enabled = any(
            r.kind == "talk_balance" and r.enabled for r in (rules or ())
        )
        self._media_stopped = next(r for r in rules or DEFAULT_RULES if r.kind == "media_stopped")

    def state_for(self, session: Session) -> SessionWarnings:
        current = self.by_session.get(session.id)
        if current is None or current.session is not session:
            engine = WarningEngine(rules=self._rules) if self._rules else WarningEngine()
            subscribers = current.subscribers if current else set()
            current = SessionWarnings(engine=engine, session=session, subscribers=subscribers)
            self.by_session[session.id] = current
        return current

    def active_json(self, session_id: str) -> list[dict[str, Any]]:
        state = self.by_session.get(session_id)
        return list(state.active.values()) if state else []

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
        for doc in state.active.values():
            queue.put_nowait(StreamMessage("raised", doc))
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
            values = measurements(session, now, talk_balance=self.talk_balance_enabled)
            for event in state.engine.evaluate(now, values, kinds=kinds):
                doc = event_json(event, wall - (now - event.at))
                key = (event.kind, event.role)
                if event.type == "raised":
                    state.active[key] = doc
                else:
                    state.active.pop(key, None)
                state.history.append((event.type, doc))
                self._publish(state, StreamMessage(event.type, doc))
                for listener in self.listeners:
                    try:
                        listener(session.id, event.type, doc)
                    except Exception:
                        log.exception("warning listener failed")
            if kinds is not None:
                continue
            if now - state.last_snapshot_at >= SNAPSHOT_EVERY_SECONDS:
                state.last_snapshot_at = now
                self._publish(state, StreamMessage("snapshot", self.snapshot(session, now)))
            if not session.live:
                # One last evaluation saw the end (connection_lost); then stop.
                state.finished = True

    def snapshot(self, session: Session, now: float) -> dict[str, Any]:
        doc = session.to_json(now)
        legs = {
            role: {
                k: leg.get(k)
                for k in (
                    "state",
                    "loss_ratio",
                    "recent_loss_ratio",
                    "jitter_seconds",
                    "rtt_seconds",
                    "mos",
                    "dropouts",
                    "dropouts_in_speech",
                    "mic_silent",
                )
            }
            for role, leg in doc["legs"].items()
            if leg is not None
        }
        return {
            "id": session.id,
            "state": doc["state"],
            "legs": legs,
            "talk_share": doc["turns"]["talk_share"],
            "warnings": self.active_json(session.id),
            "at": iso(self._wall()),
        }

    def _forget_retired(self) -> None:
        """Drop the state of sessions the registry has retired (it keeps ended ones a while)."""
        for session_id in [s for s in self.by_session if s not in self._sessions.sessions]:
            self._publish(self.by_session.pop(session_id), None)

    def _media_deadline(self, now: float) -> float | None:
        """When the first leg still receiving will have been silent for media_stopped's time.

        Ticks alone would raise media_stopped up to a tick late (2.0–2.5 s after the last
        packet); a wake-up at the deadline raises it at 2.0 s.
        """
        rule = self._media_stopped
        if not rule.enabled:
            return None
        deadline: float | None = None
        for session in self._sessions.sessions.values():
            for slot in session.slots.values():
                leg = slot.leg
                if leg is None or leg.state == "ended":
                    continue
                silent = leg.stats.seconds_since_last_packet(now)
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
                self._publish(state, StreamMessage("restart", {"retry_after_seconds": 5}))
            self._publish(state, None)
