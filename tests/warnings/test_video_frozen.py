"""The video_frozen warning end to end in the runtime: a registry of fake legs whose video
reports constructed snapshots, ticked on fake clocks."""

from __future__ import annotations

from qualmon.core.warning_texts import texts
from qualmon.core.warnings import DEFAULT_RULES, WarningEvent
from qualmon.sessions.registry import SessionRegistry
from qualmon.warnings.runtime import WarningsRuntime

from ..conftest import make_settings
from ..fakes import WALL_START, FakeClock, RecordingWarningObserver, attach, give_video

RULES = tuple(r for r in DEFAULT_RULES if r.kind in ("video_frozen", "connection_lost"))
HALF = 25
"Audio packets in half a second, the runtime's tick."


async def test_two_freezes_raise_and_15_quiet_seconds_clear(clock: FakeClock) -> None:
    """One freeze is a blip; a second within 30 s raises video_frozen at the next tick; it
    clears once 15 s passed without a freeze (not 30 s, when the first leaves the window)."""
    wall = FakeClock(WALL_START)
    registry = SessionRegistry(make_settings(), clock=clock, wall_clock=wall)
    runtime = WarningsRuntime(registry, rules=RULES, clock=clock, wall_clock=wall)
    told = RecordingWarningObserver()
    runtime.add_observer(told)
    leg, source = await attach(registry, "s1", "client", clock, first_seq=0)
    video = give_video(leg)
    freezes_at = {4: 0.25, 24: 0.30}  # tick numbers (0.5 s each): 2 s and 12 s in
    seen: list[tuple[int, WarningEvent]] = []
    for tick in range(80):
        source.send(HALF)
        wall.advance(0.5)
        if tick in freezes_at:
            video.freeze(freezes_at[tick])
        registry.tick()
        runtime.tick()
        seen.extend((tick, event) for _, event in told.events[len(seen) :])
    assert [(tick, e.type, e.kind, e.role) for tick, e in seen] == [
        (24, "raised", "video_frozen", "client"),
        # 15 s after the second freeze the recovery window is empty: clear after 0.5 s.
        (24 + 30 + 1, "cleared", "video_frozen", "client"),
    ]
    raised = seen[0][1]
    assert raised.value == 1.0 and raised.threshold == 1.0 and raised.severity == "warning"
    assert raised.therapist_text.startswith("The client's picture keeps freezing")


async def test_one_long_freeze_raises_and_an_audio_only_leg_never(clock: FakeClock) -> None:
    """A single freeze of 1.2 s is enough; the audio-only therapist leg has no such warning."""
    wall = FakeClock(WALL_START)
    registry = SessionRegistry(make_settings(), clock=clock, wall_clock=wall)
    runtime = WarningsRuntime(registry, rules=RULES, clock=clock, wall_clock=wall)
    leg, client = await attach(registry, "s1", "client", clock, first_seq=0)
    _, therapist = await attach(registry, "s1", "therapist", clock, first_seq=0)
    video = give_video(leg)
    for tick in range(6):
        client.send(HALF)
        therapist.send(HALF, interval_seconds=0.0)
        wall.advance(0.5)
        if tick == 3:
            video.freeze(1.2)
        registry.tick()
        runtime.tick()
    active = runtime.active("s1")
    assert [(e.kind, e.role, e.value) for e in active] == [("video_frozen", "client", 1.2)]


async def test_freezes_across_a_reconnect_add_up(clock: FakeClock) -> None:
    """The viewer saw both: a freeze on the replaced leg and one on its successor (whose
    counters start from zero, so its 1 is new, not the old 1 again) raise the warning."""
    wall = FakeClock(WALL_START)
    registry = SessionRegistry(make_settings(), clock=clock, wall_clock=wall)
    runtime = WarningsRuntime(registry, rules=RULES, clock=clock, wall_clock=wall)
    leg, source = await attach(registry, "s1", "client", clock, first_seq=0)
    video = give_video(leg)
    video.freeze(0.2)
    for _ in range(4):
        source.send(HALF)
        registry.tick()
        runtime.tick()
    leg2, source2 = await attach(registry, "s1", "client", clock, first_seq=0, ssrc=7)
    video2 = give_video(leg2)
    for _ in range(4):
        source2.send(HALF)
        registry.tick()
        runtime.tick()
    assert runtime.active("s1") == ()
    video2.freeze(0.2)
    source2.send(HALF)
    registry.tick()
    runtime.tick()
    assert [(e.kind, e.value) for e in runtime.active("s1")] == [("video_frozen", 1.0)]


def test_therapist_text_depends_on_whose_picture() -> None:
    """The client's frozen picture: ask before assuming; the therapist's own: reassure."""
    client, sre = texts("video_frozen", "client", 1.5, 1.0, cleared=False)
    assert client == (
        "The client's picture keeps freezing; their voice may still be fine — ask before "
        "assuming they are not responding."
    )
    assert sre.startswith("client inbound video frozen: score 1.5 over 30 s")
    own, _ = texts("video_frozen", "therapist", 1.5, 1.0, cleared=False)
    assert own.startswith("Your picture keeps freezing for the client")
    settled, _ = texts("video_frozen", "client", 0.0, 1.0, cleared=True)
    assert settled == "This has settled: the picture is moving smoothly again."
