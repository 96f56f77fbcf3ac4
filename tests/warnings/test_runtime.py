"""Unit tests of the warnings runtime over a registry of fake legs, on fake clocks."""

from __future__ import annotations

import asyncio
import logging

import pytest

from qualmon.config import Settings
from qualmon.core.warnings import DEFAULT_RULES, WarningEvent
from qualmon.sessions.registry import SessionRegistry
from qualmon.warnings.runtime import (
    DEADLINE_SLACK_SECONDS,
    QUEUE_LIMIT,
    Pulse,
    Restart,
    StreamMessage,
    WarningObserver,
    WarningsRuntime,
)

from ..conftest import make_settings
from ..fakes import WALL_START, FakeClock, FakeSource, RecordingWarningObserver, attach

# Only the rules under test, so other measures (MOS drops with loss) stay out of the way.
RULES = tuple(
    r for r in DEFAULT_RULES if r.kind in ("high_loss", "media_stopped", "connection_lost")
)
HALF = 25
"Packets in half a second, the runtime's tick."

Queue = asyncio.Queue[StreamMessage | None]


def drain(queue: Queue) -> list[StreamMessage | None]:
    out: list[StreamMessage | None] = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


def events(messages: list[StreamMessage | None]) -> list[WarningEvent]:
    return [m for m in messages if isinstance(m, WarningEvent)]


async def setup(
    clock: FakeClock, wall: FakeClock, settings: Settings | None = None
) -> tuple[SessionRegistry, WarningsRuntime, FakeSource]:
    registry = SessionRegistry(settings or make_settings(), clock=clock, wall_clock=wall)
    runtime = WarningsRuntime(registry, rules=RULES, clock=clock, wall_clock=wall)
    _, source = await attach(registry, "s1", "client", clock, first_seq=0)
    return registry, runtime, source


def every_fifth(source: FakeSource, count: int) -> set[int]:
    """The next `count` packets lose every fifth: 20 % loss."""
    return {s for s in range(source.next_seq, source.next_seq + count) if s % 5 == 0}


async def test_sustained_loss_raises_and_recovery_clears_high_loss(
    clock: FakeClock, warning_observer: RecordingWarningObserver
) -> None:
    """20 % loss raises high_loss after 1 s (not 0.5 s); observers and subscribers get the
    same typed event, `at` in wall-clock seconds; it clears once the last 3 s are clean."""
    wall = FakeClock(WALL_START)
    registry, runtime, source = await setup(clock, wall)
    runtime.add_observer(warning_observer)
    queue = runtime.subscribe("s1")
    told: list[tuple[int, float, WarningEvent]] = []
    for half in range(24):  # 2 s clean, 3 s at 20 % loss, 7 s clean; a tick each 0.5 s
        lossy = 4 <= half < 10
        source.send(HALF, lose=every_fifth(source, HALF) if lossy else set())
        wall.advance(0.5)
        if half == 12:
            wall.advance(3600.0)  # the wall clock is stepped: events follow it, not monotonic
        registry.tick()
        runtime.tick()
        for _, event in warning_observer.events[len(told) :]:
            told.append((half, wall(), event))
        if 5 <= half < 10:
            assert [e.kind for e in runtime.active("s1")] == ["high_loss"]
    [(raised_half, raised_wall, raised), (cleared_half, cleared_wall, cleared)] = told
    assert raised_half == 5
    assert (raised.type, raised.kind, raised.role, raised.severity) == (
        "raised",
        "high_loss",
        "client",
        "warning",
    )
    assert raised.threshold == 0.043
    assert 0.043 <= raised.value <= 0.2 * 0.043 / 0.08  # the 2 s window, all of it lossy
    assert raised.at == raised_wall  # wall − (now − engine time), the engine time being now
    assert raised.therapist_text
    assert 15 <= cleared_half <= 17  # the 3 s recovery window clean (≤ 1.5 % lost)
    assert (cleared.type, cleared.kind, cleared.role) == ("cleared", "high_loss", "client")
    assert cleared.at == cleared_wall
    assert runtime.active("s1") == ()
    assert warning_observer.events == [("s1", raised), ("s1", cleared)]
    messages = drain(queue)
    assert events(messages) == [raised, cleared]
    assert all(isinstance(m, WarningEvent | Pulse) for m in messages)
    await registry.close_all()


async def test_media_stopped_at_the_deadline_tick(clock: FakeClock) -> None:
    """A leg silent for exactly 2 s raises media_stopped at the deadline check, not before;
    a deadline check evaluates that rule only and publishes no pulse."""
    wall = FakeClock(WALL_START)
    registry, runtime, source = await setup(clock, wall)
    source.send(HALF)
    runtime.tick()
    queue = runtime.subscribe("s1")
    last = clock()
    # run() sleeps until this deadline (on the event loop's own clock).
    assert runtime._media_deadline(clock()) == last + 2.0 + DEADLINE_SLACK_SECONDS
    clock.advance_to(last + 2.0 - 0.001)
    runtime.tick(kinds=("media_stopped",))
    assert runtime.active("s1") == ()
    clock.advance_to(last + 2.0)
    wall.advance(2.0)
    runtime.tick(kinds=("media_stopped",))
    [event] = runtime.active("s1")
    assert (event.type, event.kind, event.role, event.severity) == (
        "raised",
        "media_stopped",
        "client",
        "critical",
    )
    assert (event.value, event.at) == (2.0, wall())
    assert drain(queue) == [event]
    assert runtime.active_counts() == {"media_stopped": 1}
    await registry.close_all()


async def test_subscribing(clock: FakeClock) -> None:
    """An unknown session is a KeyError; a new subscriber first gets the active warnings,
    then a pulse every 3 s."""
    wall = FakeClock(WALL_START)
    registry, runtime, source = await setup(clock, wall)
    with pytest.raises(KeyError):
        runtime.subscribe("nope")
    source.send(HALF)
    runtime.tick()
    clock.advance(2.0)
    runtime.tick()
    [active] = runtime.active("s1")
    queue = runtime.subscribe("s1")
    assert drain(queue) == [active]
    for _ in range(6):
        clock.advance(0.5)
        registry.tick()
        runtime.tick()
    pulses = [m for m in drain(queue) if isinstance(m, Pulse)]
    assert len(pulses) == 1  # 3 s after the first tick's pulse
    [pulse] = pulses
    assert (pulse.at_seconds, pulse.warnings, pulse.session.id) == (wall(), (active,), "s1")
    assert pulse.session.roles["client"].state == "stalled"
    runtime.unsubscribe("s1", queue)
    clock.advance(3.0)
    runtime.tick()
    assert queue.empty()
    await registry.close_all()


async def test_a_subscriber_that_falls_behind_is_dropped(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A full queue is dropped from the session; the others still get everything."""
    wall = FakeClock(WALL_START)
    registry, runtime, source = await setup(clock, wall)
    slow, fast = runtime.subscribe("s1"), runtime.subscribe("s1")
    while not slow.full():
        slow.put_nowait(Restart(0.0))  # a reader that stopped reading
    assert slow.qsize() == QUEUE_LIMIT
    source.send(HALF)
    runtime.tick()
    assert runtime.by_session["s1"].subscribers == {fast}
    assert "dropped an event-stream subscriber" in caplog.text
    assert [type(m) for m in drain(fast)] == [Pulse]
    clock.advance(3.0)
    runtime.tick()
    assert [type(m) for m in drain(fast)] == [WarningEvent, Pulse]
    assert slow.qsize() == QUEUE_LIMIT
    await registry.close_all()


async def test_retired_sessions_are_forgotten(clock: FakeClock) -> None:
    """Once the registry forgets an ended session, so does the runtime; its streams end."""
    settings = make_settings()
    wall = FakeClock(WALL_START)
    registry, runtime, source = await setup(clock, wall, settings)
    source.send(HALF)
    runtime.tick()
    queue = runtime.subscribe("s1")
    leg = registry.sessions["s1"].slots["client"].leg
    assert leg is not None
    await registry.delete_leg(leg.resource_id)
    runtime.tick()
    assert "s1" in runtime.by_session
    clock.advance(settings.ended_retention_seconds + 0.25)
    registry.tick()
    assert registry.sessions == {} and registry.ended == {}
    runtime.tick()
    assert "s1" not in runtime.by_session
    assert runtime.active("s1") == ()
    assert drain(queue)[-1] is None


async def test_a_compacted_session_keeps_the_warnings_it_ended_with(clock: FakeClock) -> None:
    """A session that ends lossy and is compacted: its engine and streams go, the warnings
    still raised at its end stay readable until the registry forgets the session."""
    settings = make_settings()
    wall = FakeClock(WALL_START)
    registry, runtime, source = await setup(clock, wall, settings)
    for _ in range(4):
        source.send(HALF, lose=every_fifth(source, HALF))
        runtime.tick()
    assert [e.kind for e in runtime.active("s1")] == ["high_loss"]
    queue = runtime.subscribe("s1")
    leg = registry.sessions["s1"].slots["client"].leg
    assert leg is not None
    await registry.delete_leg(leg.resource_id)
    runtime.tick()  # the last look at the ended session
    clock.advance(settings.settle_seconds)
    registry.tick()
    assert "s1" in registry.ended
    runtime.tick()
    assert "s1" not in runtime.by_session
    assert drain(queue)[-1] is None
    assert [e.kind for e in runtime.active("s1")] == ["high_loss"]
    assert runtime.active_counts() == {}  # an ended session is not in the fleet's gauge
    clock.advance(settings.ended_retention_seconds)
    registry.tick()
    runtime.tick()
    assert registry.ended == {} and runtime.active("s1") == ()


@pytest.mark.parametrize("restart", [True, False])
async def test_close_streams(clock: FakeClock, restart: bool) -> None:
    """At shutdown every subscriber gets Restart (when restarting), then the end."""
    wall = FakeClock(WALL_START)
    registry, runtime, _ = await setup(clock, wall)
    queues = [runtime.subscribe("s1"), runtime.subscribe("s1")]
    runtime.close_streams(restart=restart)
    for queue in queues:
        assert drain(queue) == ([Restart(retry_after_seconds=5.0)] if restart else []) + [None]
    await registry.close_all()


async def test_a_failed_leg_raises_connection_lost_once_and_the_session_is_finished(
    clock: FakeClock, warning_observer: RecordingWarningObserver
) -> None:
    """The last look at an ended session sees its failed leg; then it is left alone."""
    wall = FakeClock(WALL_START)
    registry, runtime, source = await setup(clock, wall)
    runtime.add_observer(warning_observer)
    source.send(HALF)
    runtime.tick()
    source.fail()
    registry.tick()
    assert not registry.sessions["s1"].live
    runtime.tick()
    [(session_id, event)] = warning_observer.events
    assert (session_id, event.type, event.kind, event.value) == (
        "s1",
        "raised",
        "connection_lost",
        1.0,
    )
    assert runtime.by_session["s1"].finished
    assert runtime.active_counts() == {}
    assert runtime.active("s1") == (event,)  # still in the ended session's JSON
    clock.advance(5.0)
    runtime.tick()
    assert len(warning_observer.events) == 1


class Broken(WarningObserver):
    def on_warning(self, session_id: str, event: WarningEvent) -> None:
        raise RuntimeError("broken")


async def test_an_observer_that_raises_does_not_stop_the_others(
    clock: FakeClock,
    warning_observer: RecordingWarningObserver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each event still reaches the observers after a broken one, and the subscribers."""
    caplog.set_level(logging.ERROR, logger="qualmon.warnings.runtime")
    wall = FakeClock(WALL_START)
    registry, runtime, source = await setup(clock, wall)
    runtime.add_observer(Broken())
    runtime.add_observer(warning_observer)
    queue = runtime.subscribe("s1")
    source.send(HALF)
    runtime.tick()
    clock.advance(2.0)
    runtime.tick()
    [(_, event)] = warning_observer.events
    assert event.kind == "media_stopped"
    assert events(drain(queue)) == [event]
    assert "warning observer Broken failed" in caplog.text
    await registry.close_all()


def test_rules_without_media_stopped_have_no_deadline(clock: FakeClock) -> None:
    """A rule set that leaves media_stopped out is valid: nothing to wake for."""
    rules = tuple(r for r in DEFAULT_RULES if r.kind != "media_stopped")
    registry = SessionRegistry(make_settings(), clock=clock, wall_clock=clock.wall)
    runtime = WarningsRuntime(registry, rules=rules, clock=clock, wall_clock=clock.wall)
    assert runtime._media_deadline(clock()) is None
