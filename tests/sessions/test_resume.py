"""A session continued from another instance's stored report: what it carries over."""

from __future__ import annotations

import pytest

from qualmon.config import Settings
from qualmon.sessions.registry import SessionRegistry
from qualmon.sessions.resume import CarriedDropout, CarriedRole, CarriedTotals, Resumed
from qualmon.sessions.session import Session

from ..conftest import make_settings
from ..fakes import FakeClock, attach, join_session

TOTALS = CarriedTotals(
    packets_received=900,
    packets_lost=100,
    dropouts=2,
    dropout_seconds=0.5,
    dropouts_in_speech=1,
    dropout_in_speech_seconds=0.2,
)


def resumed(started_at: float) -> Resumed:
    return Resumed(
        started_at=started_at,
        roles=(
            CarriedRole(
                "therapist", TOTALS, 2, ((1.0, 3.0), (5.0, 6.5)), (CarriedDropout(2.0, 0.2, True),)
            ),
            CarriedRole("client", TOTALS, 0, ((3.5, 4.5),), ()),
        ),
    )


async def test_a_resumed_session_keeps_its_start_totals_and_speech(
    settings: Settings, clock: FakeClock
) -> None:
    """Counters add to the carried ones, the move is one more reconnect, the stored speech
    counts in speech seconds and turns, and the session keeps the report's start."""
    session = Session("s1", wall_clock=clock.wall)
    start = clock.wall() - 30.0
    session.resume(resumed(start), clock(), clock.wall())
    leg, source = join_session(session, "therapist", settings, clock)
    source.send(50)
    snap = session.snapshot(clock())
    assert snap.started_at == start
    therapist = snap.roles["therapist"]
    assert therapist.packets_received == 900 + 50
    assert therapist.packets_lost == 100
    assert therapist.loss_ratio == pytest.approx(100 / 1050)
    assert (therapist.dropouts, therapist.dropouts_in_speech) == (2, 1)
    assert therapist.reconnects == 3
    assert therapist.speech_seconds == pytest.approx(3.5)
    assert snap.turns.speech_seconds["client"] == pytest.approx(1.0)
    assert snap.turns.turn_count["therapist"] >= 1
    # The client has not reconnected yet: its leg was lost with the other instance, and its
    # totals are still there.
    client = snap.roles["client"]
    assert (client.state, client.end_reason) == ("ended", "lost")
    assert client.packets_received == 900 and client.reconnects == 1
    await leg.close("closed")


async def test_the_registry_resumes_only_a_session_it_starts(clock: FakeClock) -> None:
    """The lookup is asked once, by the leg that starts the session here; the next leg of
    a live session does not ask again."""
    registry = SessionRegistry(make_settings(), clock=clock, wall_clock=clock.wall)
    asked: list[str] = []

    async def lookup(session_id: str) -> Resumed | None:
        asked.append(session_id)
        return resumed(clock.wall() - 60.0)

    registry.resume_from = lookup
    await attach(registry, "s1", "therapist", clock)
    await attach(registry, "s1", "client", clock)
    assert asked == ["s1"]
    session = registry.sessions["s1"]
    assert session.started_at == clock.wall() - 60.0
    assert session.slots["client"].reconnects == 1
    await registry.close_all()


async def test_a_failing_lookup_starts_a_new_session(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A store that cannot answer costs the continuation, never the leg."""
    registry = SessionRegistry(make_settings(), clock=clock, wall_clock=clock.wall)

    async def lookup(session_id: str) -> Resumed | None:
        raise OSError("disk gone")

    registry.resume_from = lookup
    await attach(registry, "s1", "client", clock)
    session = registry.sessions["s1"]
    assert session.resumed is None and session.started_at == clock.wall()
    assert "cannot look up a stored report" in caplog.text
    assert "disk gone" not in caplog.text
    await registry.close_all()


def test_seeding_a_segmenter_that_has_frames_is_refused(settings: Settings) -> None:
    session = Session("s1")
    session.slot("client").segmenter.add_frame(0.0, 0.02, True)
    with pytest.raises(ValueError, match="before any frame"):
        session.resume(resumed(0.0), 0.0, 0.0)
