"""Unit tests of the session registry with fake leg sources on a fake clock."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import weakref
from typing import Any

import pytest

from qualmon.config import Settings
from qualmon.core.heard import HeardError
from qualmon.core.leg_source import LegFeed
from qualmon.sessions.observer import SessionEnd, SessionObserver
from qualmon.sessions.registry import CapacityError, SessionRegistry

from ..conftest import make_settings
from ..fakes import FakeClock, FakeSource, RecordingObserver, attach, probe_sample


def make_registry(
    clock: FakeClock, *observers: SessionObserver, settings: Settings | None = None
) -> SessionRegistry:
    return SessionRegistry(
        settings or make_settings(), observers=observers, clock=clock, wall_clock=clock.wall
    )


async def test_the_first_leg_creates_the_session(
    clock: FakeClock, observer: RecordingObserver
) -> None:
    """add_leg returns the leg and the source's answer; the session starts on the wall clock."""
    registry = make_registry(clock, observer)
    leg, source = await attach(registry, "s1", "client", clock)
    session = registry.sessions["s1"]
    assert source.started
    assert session.slots["client"].leg is leg
    assert registry.legs_by_resource == {leg.resource_id: leg}
    assert (session.live, session.started_at) == (True, clock.wall())
    assert leg.segmenter is session.slots["client"].segmenter
    assert registry.live_leg_count() == 1
    assert registry.live_sessions() == [session]
    assert observer.calls == []


async def test_a_second_leg_for_a_role_replaces_the_first(
    clock: FakeClock, observer: RecordingObserver
) -> None:
    """Reconnect: counted and told, the old leg closed as replaced, its totals carried over."""
    registry = make_registry(clock, observer)
    old, old_source = await attach(registry, "s1", "client", clock)
    old_source.send(100, lose={1010, 1011})
    new, new_source = await attach(registry, "s1", "client", clock, first_seq=7)
    assert (old.state, old.end_reason) == ("ended", "replaced")
    await old.ended.wait()
    assert old_source.close_calls == 1
    assert not new_source.closed
    slot = registry.sessions["s1"].slots["client"]
    assert (slot.leg, slot.reconnects) == (new, 1)
    assert registry.legs_by_resource == {new.resource_id: new}
    assert observer.of("on_reconnect") == [("client",)]
    assert observer.of("on_packets") == [("client", 98, 2)]
    assert observer.of("on_leg_ended") == [("client", "replaced")]
    new_source.send(50, lose={20})
    role = registry.sessions["s1"].snapshot(clock()).roles["client"]
    assert (role.packets_received, role.packets_lost, role.reconnects) == (98 + 49, 3, 1)
    assert role.loss_ratio == 3 / 150
    assert role.state == "live"


async def test_the_leg_cap_refuses_a_new_leg_and_leaves_nothing(clock: FakeClock) -> None:
    """At max_legs a new leg is refused before a source is made; a reconnect still fits."""
    registry = make_registry(clock, settings=make_settings(max_legs=1))
    first, _ = await attach(registry, "s1", "client", clock)
    made: list[FakeSource] = []

    def make(feed: LegFeed) -> FakeSource:
        made.append(FakeSource(feed, clock=clock))
        return made[-1]

    with pytest.raises(CapacityError):
        await registry.add_leg("s2", "client", make)
    with pytest.raises(CapacityError):
        await registry.add_leg("s1", "therapist", make)
    assert made == []
    assert list(registry.sessions) == ["s1"]
    assert list(registry.sessions["s1"].slots) == ["client"]
    assert registry.legs_by_resource == {first.resource_id: first}
    again, _ = await attach(registry, "s1", "client", clock)
    assert registry.legs_by_resource == {again.resource_id: again}


async def test_a_source_that_fails_to_start_leaves_nothing(clock: FakeClock) -> None:
    """start() raising: no leg, no session, the source closed, the cap slot given back."""
    registry = make_registry(clock, settings=make_settings(max_legs=1))
    made: list[FakeSource] = []

    def make(feed: LegFeed) -> FakeSource:
        made.append(FakeSource(feed, clock=clock, fail_start=ValueError("bad offer")))
        return made[-1]

    with pytest.raises(ValueError, match="bad offer"):
        await registry.add_leg("s1", "client", make)
    [source] = made
    assert source.close_calls == 1
    assert registry.sessions == {}
    assert registry.legs_by_resource == {}
    await attach(registry, "s1", "client", clock)  # the one slot is free again


async def test_deleting_the_last_leg_ends_the_session(
    clock: FakeClock, observer: RecordingObserver
) -> None:
    """delete_leg closes the leg; with no live leg left the session ends with reason ended."""
    registry = make_registry(clock, observer)
    therapist, t_source = await attach(registry, "s1", "therapist", clock)
    client, c_source = await attach(registry, "s1", "client", clock)
    assert await registry.delete_leg(therapist.resource_id)
    assert (therapist.end_reason, t_source.close_calls) == ("closed", 1)
    session = registry.sessions["s1"]
    assert session.live
    assert observer.of("on_session_ended") == []
    clock.advance(3.0)
    assert await registry.delete_leg(client.resource_id)
    assert c_source.close_calls == 1
    assert not await registry.delete_leg(client.resource_id)
    assert (session.live, session.ended_at, session.ended_monotonic) == (
        False,
        clock.wall(),
        clock(),
    )
    assert observer.of("on_leg_ended") == [("therapist", "closed"), ("client", "closed")]
    [(end,)] = observer.of("on_session_ended")
    assert isinstance(end, SessionEnd)
    assert (end.session, end.reason) == (session, "ended")
    assert len(observer.of("on_conversation")) == 1  # the final deltas, before the end
    assert registry.legs_by_resource == {}


async def test_close_all_ends_everything_as_shutdown(
    clock: FakeClock, observer: RecordingObserver
) -> None:
    """Every leg ends as shutdown and every session with reason shutdown."""
    registry = make_registry(clock, observer)
    legs = [
        await attach(registry, session, role, clock)
        for session in ("s1", "s2")
        for role in ("therapist", "client")
    ]
    await registry.close_all("shutdown")
    for leg, source in legs:
        assert (leg.end_reason, leg.ended.is_set(), source.close_calls) == ("shutdown", True, 1)
    assert registry.legs_by_resource == {}
    assert registry.live_sessions() == []
    ended = [(end.session.id, end.reason) for (end,) in observer.of("on_session_ended")]
    assert ended == [("s1", "shutdown"), ("s2", "shutdown")]
    assert [reason for _, reason in observer.of("on_leg_ended")] == ["shutdown"] * 4


async def test_packet_counts_are_told_as_deltas_that_never_go_negative(
    clock: FakeClock, observer: RecordingObserver
) -> None:
    """A late reordered packet lowers the lost count; the counter feed never goes down."""
    registry = make_registry(clock, observer)
    _, source = await attach(registry, "s1", "client", clock, first_seq=0)
    source.send(10, lose={5})
    registry.tick()
    source.deliver(5)  # arrives late: received 10, lost back to 0
    registry.tick()
    source.send(10, start_seq=10, lose={12, 13})  # lost is 2 now: only 1 more than told
    registry.tick()
    registry.tick()  # nothing new: nothing told
    assert observer.of("on_packets") == [("client", 9, 1), ("client", 1, 0), ("client", 8, 1)]


async def test_samples_are_taken_once_a_second(
    clock: FakeClock, observer: RecordingObserver
) -> None:
    """Ticks every 0.25 s: a leg and a session sample at the first tick and every 1 s."""
    registry = make_registry(clock, observer)
    leg, source = await attach(registry, "s1", "client", clock)
    source.send(1)
    registry.tick()
    first = clock()
    for _ in range(8):
        clock.advance(0.25)
        registry.tick()
    expected = [first, first + 1.0, first + 2.0]
    assert [now for _, now in observer.of("on_session_sample")] == expected
    samples = observer.of("on_leg_sample")
    assert [role for role, _ in samples] == ["client"] * 3
    assert [snap.seconds_since_last_packet for _, snap in samples] == [0.0, 1.0, 2.0]
    assert [snap.state for _, snap in samples] == ["live", "live", "stalled"]
    assert len(observer.of("on_conversation")) == 3
    assert observer.of("on_session_sample")[0][0] is registry.sessions["s1"]
    assert leg.state == "stalled"


async def test_leg_timers_run_on_tick_and_end_the_session(
    clock: FakeClock, observer: RecordingObserver
) -> None:
    """A lost leg is retired by the tick; its session ends then; it is compacted once
    settled and forgotten after ended_retention_seconds."""
    settings = make_settings()
    registry = make_registry(clock, observer, settings=settings)
    leg, source = await attach(registry, "s1", "client", clock)
    source.send(10)
    clock.advance(settings.lost_after_seconds)
    registry.tick()
    assert leg.end_reason == "lost"
    await leg.ended.wait()
    assert source.close_calls == 1
    assert observer.of("on_leg_ended") == [("client", "lost")]
    session = registry.sessions["s1"]
    assert not session.live
    ended_at = clock()
    assert session.ended_monotonic == ended_at
    clock.advance_to(ended_at + settings.settle_seconds - 0.001)
    registry.tick()
    assert registry.sessions == {"s1": session}  # whole while outputs take their last look
    clock.advance_to(ended_at + settings.settle_seconds)
    registry.tick()
    assert registry.sessions == {} and list(registry.ended) == ["s1"]
    snapshot = registry.snapshot_of("s1", clock())
    assert snapshot is not None and not snapshot.live
    assert snapshot.roles["client"].end_reason == "lost"
    assert snapshot.roles["client"].packets_received == 10
    clock.advance_to(ended_at + settings.ended_retention_seconds)
    registry.tick()
    assert list(registry.ended) == ["s1"]  # still readable
    clock.advance(0.25)
    registry.tick()
    assert registry.ended == {} and registry.snapshot_of("s1", clock()) is None


async def test_a_leg_that_never_connects_is_reaped(
    clock: FakeClock, observer: RecordingObserver
) -> None:
    """No packet within connect_timeout_seconds: never_connected, and the session ends."""
    settings = make_settings()
    registry = make_registry(clock, observer, settings=settings)
    leg, _ = await attach(registry, "s1", "client", clock)
    clock.advance(settings.connect_timeout_seconds)
    registry.tick()
    assert leg.end_reason == "never_connected"
    assert observer.of("on_leg_ended") == [("client", "never_connected")]
    assert [end.reason for (end,) in observer.of("on_session_ended")] == ["ended"]
    await leg.ended.wait()


class Broken(SessionObserver):
    def __getattribute__(self, name: str) -> Any:
        if name.startswith("on_"):
            raise RuntimeError(f"{name} is broken")
        return super().__getattribute__(name)


async def test_an_observer_that_raises_is_logged_and_skipped(
    clock: FakeClock, observer: RecordingObserver, caplog: pytest.LogCaptureFixture
) -> None:
    """The observers after a broken one are still told everything."""
    caplog.set_level(logging.ERROR, logger="qualmon.sessions.registry")
    registry = make_registry(clock, Broken(), observer)
    leg, source = await attach(registry, "s1", "client", clock)
    source.send(10, lose={1003})
    registry.tick()
    await registry.delete_leg(leg.resource_id)
    names = [name for name, _ in observer.calls]
    assert names == [
        "on_packets",
        "on_leg_sample",
        "on_conversation",
        "on_session_sample",
        "on_leg_ended",
        "on_conversation",
        "on_session_ended",
    ]
    failures = [r for r in caplog.records if "session observer Broken failed" in r.getMessage()]
    assert len(failures) == len(names)


async def test_probe_data_alone_makes_a_probe_only_session(
    clock: FakeClock, observer: RecordingObserver
) -> None:
    """The first sample creates the session; it lives while the probe sends and ends after
    lost_after_seconds without a sample."""
    settings = make_settings()
    registry = make_registry(clock, observer, settings=settings)
    session, interval = registry.add_heard("p1", "client", probe_sample(0))
    assert interval is None
    assert registry.sessions == {"p1": session}
    clock.advance(2.0)
    same, interval = registry.add_heard("p1", "client", probe_sample(1))
    assert same is session
    assert interval is not None
    assert (interval.packets_received, interval.packets_lost) == (100, 1)
    role = session.snapshot(clock()).roles["client"]
    assert role.state == "probe_only"
    assert role.heard is not None and role.heard.samples == 2
    with pytest.raises(HeardError):
        registry.add_heard("p1", "client", probe_sample(1))  # time must move on
    assert session.slots["client"].heard is not None
    assert session.slots["client"].heard.samples == 2
    registry.tick()
    last_sample = clock()
    clock.advance_to(last_sample + settings.lost_after_seconds)
    registry.tick()
    assert session.live  # a probe this recent still vouches for the session
    clock.advance(0.25)
    registry.tick()
    assert not session.live
    assert [end.reason for (end,) in observer.of("on_session_ended")] == ["ended"]


async def test_data_for_an_ended_session_starts_a_new_one(clock: FakeClock) -> None:
    """A session id reused after its end is a new session with a new start."""
    registry = make_registry(clock)
    leg, _ = await attach(registry, "s1", "client", clock)
    await registry.delete_leg(leg.resource_id)
    old = registry.sessions["s1"]
    clock.advance(5.0)
    again, _ = await attach(registry, "s1", "client", clock)
    new = registry.sessions["s1"]
    assert new is not old
    assert new.started_at == old.started_at + 5.0
    assert (new.slots["client"].leg, new.slots["client"].reconnects) == (again, 0)


async def test_an_ended_session_is_compacted_only_once_its_legs_have_closed(
    clock: FakeClock, observer: RecordingObserver
) -> None:
    """Settling waits for the legs' close (a dead peer may take seconds), not only for
    settle_seconds; the compacted snapshot holds no leg."""
    settings = make_settings()
    registry = make_registry(clock, observer, settings=settings)
    leg, source = await attach(registry, "slow", "client", clock)
    source.send(5)
    closing = asyncio.Event()
    source.close_gate = closing  # the fake source's close() waits for this
    registry.tick()
    deleting = asyncio.ensure_future(registry.delete_leg(leg.resource_id))
    await asyncio.sleep(0)
    clock.advance(settings.settle_seconds + 1.0)
    registry.tick()
    assert "slow" in registry.sessions and not leg.ended.is_set()
    closing.set()
    assert await deleting
    registry.tick()
    assert "slow" not in registry.sessions
    ended = registry.ended["slow"]
    assert ended.snapshot.roles["client"].state == "ended"


async def test_a_new_leg_for_a_compacted_session_starts_it_afresh(
    clock: FakeClock, observer: RecordingObserver
) -> None:
    """Ids may be reused: a leg for a compacted id is a new session, the old record goes."""
    settings = make_settings()
    registry = make_registry(clock, observer, settings=settings)
    leg, source = await attach(registry, "again", "client", clock)
    source.send(5)
    assert await registry.delete_leg(leg.resource_id)
    clock.advance(settings.settle_seconds)
    registry.tick()
    assert "again" in registry.ended
    await attach(registry, "again", "client", clock)
    assert "again" in registry.sessions and "again" not in registry.ended
    assert [s.live for s in registry.snapshots(clock())] == [True]


def deep_size_bytes(root: object) -> int:
    """Bytes held by an object graph (each object once), as sys.getsizeof counts them."""
    seen: set[int] = set()
    stack = [root]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif hasattr(obj, "__dict__"):
            stack.append(vars(obj))
        elif hasattr(obj, "__slots__"):
            stack.extend(getattr(obj, s) for s in obj.__slots__ if hasattr(obj, s))
    return total


async def test_ended_sessions_are_small_and_release_every_leg(
    clock: FakeClock, observer: RecordingObserver
) -> None:
    """Fifty two-party sessions with speech and loss, each ended: once settled, no Session,
    Leg or source object survives, and each retained record holds at most 16 KB."""
    settings = make_settings(ended_retention_seconds=3600.0)  # all 50 (1,000 s) retained
    registry = make_registry(clock, observer, settings=settings)
    alive: list[weakref.ref[object]] = []
    for n in range(50):
        for role in ("therapist", "client"):
            leg, source = await attach(registry, f"s{n}", role, clock)
            source.send(500, lose={100, 101, 102, 300})  # 10 s of audio, two gaps
            source.speak(0.0, 8.0, True)
            alive += [weakref.ref(leg), weakref.ref(source)]
        alive.append(weakref.ref(registry.sessions[f"s{n}"]))
        for leg in list(registry.legs_by_resource.values()):
            assert await registry.delete_leg(leg.resource_id)
        del leg, source
    clock.advance(settings.settle_seconds)
    registry.tick()
    assert registry.sessions == {} and len(registry.ended) == 50
    observer.calls.clear()  # the recording observer holds the sessions it was told about
    gc.collect()
    assert [r() for r in alive if r() is not None] == []
    sizes = [deep_size_bytes(e) for e in registry.ended.values()]
    assert max(sizes) <= 16 * 1024, max(sizes)


class _CancelledInside(FakeSource):
    """A source whose close() lets a CancelledError out, as a media stack can."""

    async def close(self) -> None:
        await super().close()
        raise asyncio.CancelledError


class _NeverCloses(FakeSource):
    """A source that breaks its promise: close() never returns."""

    async def close(self) -> None:
        await super().close()
        await asyncio.Event().wait()


async def test_a_source_that_cancels_inside_close_still_ends_its_leg(
    clock: FakeClock, observer: RecordingObserver
) -> None:
    """The leg has ended whatever its source's close() raised: DELETE answers."""
    registry = make_registry(clock, observer)
    leg, answer = await registry.add_leg(
        "c", "client", lambda feed: _CancelledInside(feed, clock=clock)
    )
    assert answer
    assert await asyncio.wait_for(registry.delete_leg(leg.resource_id), 5.0)
    assert leg.ended.is_set() and leg.source is None


async def test_delete_answers_even_if_a_source_never_closes(
    clock: FakeClock, observer: RecordingObserver
) -> None:
    """A broken source cannot hang DELETE: the registry stops waiting after its bound."""
    registry = make_registry(clock, observer, settings=make_settings(close_timeout_seconds=0.05))
    leg, _ = await registry.add_leg("n", "client", lambda feed: _NeverCloses(feed, clock=clock))
    assert await asyncio.wait_for(registry.delete_leg(leg.resource_id), 5.0)
    assert not leg.ended.is_set()  # still closing, but nobody is held up by it
    assert "n" not in registry.legs_by_resource
    leg.request_close("closed").cancel()  # let the test's loop end cleanly
