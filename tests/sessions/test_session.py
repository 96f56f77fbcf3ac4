"""Unit tests of a session's snapshot, totals across reconnects and talk turns."""

from __future__ import annotations

import pytest

from qualmon.config import Settings
from qualmon.core.heard import HeardTracker
from qualmon.core.turns import TurnStats
from qualmon.sessions.leg import Leg
from qualmon.sessions.session import Session
from qualmon.sessions.snapshot import ROLES, RoleSnapshot

from ..fakes import FakeClock, FakeSource, join_session, probe_sample


async def test_roles_come_in_roles_order(settings: Settings, clock: FakeClock) -> None:
    """Whatever joined first, the snapshot lists therapist then client; a slot with neither
    leg nor probe is left out."""
    session = Session("s1", wall_clock=clock.wall)
    join_session(session, "client", settings, clock)
    join_session(session, "therapist", settings, clock)
    session.slot("observer")
    snap = session.snapshot(clock())
    assert list(snap.roles) == list(ROLES) == ["therapist", "client"]
    assert (snap.id, snap.live, snap.started_at, snap.ended_at) == ("s1", True, clock.wall(), None)
    assert session.role_snapshot("observer", clock()) is None


async def test_a_role_sums_every_leg_it_had(settings: Settings, clock: FakeClock) -> None:
    """Counters add up over earlier legs; state, jitter and recent loss are the current leg's."""
    session = Session("s1", wall_clock=clock.wall)
    earlier: list[Leg] = []
    for _ in range(2):
        leg, source = join_session(session, "client", settings, clock)
        source.send(50, lose=set(range(1010, 1020)))  # a 200 ms dropout each
        await leg.close("replaced")
        earlier.append(leg)
    slot = session.slot("client")
    slot.earlier = [leg.snapshot(clock()) for leg in earlier]
    slot.reconnects = 2
    leg, source = join_session(session, "client", settings, clock)
    source.send(100, lose={1050})
    role = session.snapshot(clock()).roles["client"]
    current = leg.snapshot(clock())
    assert (role.packets_received, role.packets_lost) == (40 + 40 + 99, 10 + 10 + 1)
    assert role.loss_ratio == 21 / 200
    assert role.dropouts == 2
    assert role.dropout_seconds == pytest.approx(0.4)
    assert role.reconnects == 2
    assert (role.state, role.end_reason) == ("live", None)
    assert role.jitter_seconds == current.jitter_seconds
    assert role.recent_loss_ratio == current.recent_loss_ratio
    assert role.seconds_since_last_packet == 0.0


async def test_a_role_known_from_its_probe_alone(clock: FakeClock) -> None:
    """Probe only: counters 0, measures unknown, what it hears from the probe."""
    session = Session("p1", wall_clock=clock.wall)
    tracker = HeardTracker()
    tracker.add(probe_sample(0), received_at=clock())
    clock.advance(2.0)
    tracker.add(probe_sample(1), received_at=clock())
    session.slot("therapist").heard = tracker
    snap = session.snapshot(clock())
    assert snap.roles == {
        "therapist": RoleSnapshot(
            state="probe_only",
            end_reason=None,
            packets_received=0,
            packets_lost=0,
            loss_ratio=0.0,
            recent_loss_ratio=0.0,
            jitter_seconds=None,
            rtt_seconds=None,
            mos=None,
            dropouts=0,
            dropout_seconds=0.0,
            bitrate_bps=0.0,
            seconds_since_last_packet=None,
            dropouts_in_speech=0,
            dropout_in_speech_seconds=0.0,
            reconnects=0,
            speech_seconds=0.0,
            mic_silent=False,
            heard=tracker.snapshot(clock()),
        )
    }
    assert session.heard_fresh(clock(), 10.0)
    assert not session.heard_fresh(clock() + 10.25, 10.0)


def speak_in_turns(therapist: FakeSource, client: FakeSource) -> None:
    """Therapist 10–13 s, client 13.5–16 s, therapist 17–19 s; silence between, to 20 s."""
    therapist.speak(10.0, 3.0, True)
    therapist.speak(13.0, 4.0, False)
    therapist.speak(17.0, 2.0, True)
    therapist.speak(19.0, 1.0, False)
    client.speak(10.0, 3.5, False)
    client.speak(13.5, 2.5, True)
    client.speak(16.0, 4.0, False)


async def test_turns_from_two_roles_speaking_in_turns(settings: Settings, clock: FakeClock) -> None:
    """Decisions without level features pass the voice classifier as given and segments end
    at their last speech frame: therapist 3 + 2 s, client 2.5 s, three turns, no overlap,
    2.5 s of silence in 10 s."""
    session = Session("s1", wall_clock=clock.wall)
    _, therapist = join_session(session, "therapist", settings, clock)
    _, client = join_session(session, "client", settings, clock)
    speak_in_turns(therapist, client)
    turns = session.snapshot(clock()).turns
    assert turns.speech_seconds == pytest.approx({"therapist": 5.0, "client": 2.5})
    assert turns.talk_share == pytest.approx({"therapist": 2 / 3, "client": 1 / 3})
    assert turns.turn_count == {"therapist": 2, "client": 1}
    assert turns.mean_turn_seconds == pytest.approx({"therapist": 2.5, "client": 2.5})
    assert turns.longest_turn_seconds == pytest.approx({"therapist": 3.0, "client": 2.5})
    assert turns.overlap_seconds == 0.0
    assert turns.interruptions == {"therapist": 0, "client": 0}
    assert turns.backchannels == {"therapist": 0, "client": 0}
    client_gap, therapist_gap = turns.response_gaps["client"], turns.response_gaps["therapist"]
    assert client_gap is not None and therapist_gap is not None
    assert (client_gap.count, client_gap.median_seconds) == (1, pytest.approx(0.5))
    assert (therapist_gap.count, therapist_gap.median_seconds) == (1, pytest.approx(1.0))
    assert turns.silence_ratio == pytest.approx(0.25)
    roles = session.snapshot(clock()).roles
    assert roles["therapist"].speech_seconds == pytest.approx(5.0)
    assert roles["client"].speech_seconds == pytest.approx(2.5)


async def test_turn_stats_are_recomputed_at_most_once_per_max_age(
    settings: Settings, clock: FakeClock
) -> None:
    """Within max_age the cached figures come back; after it, fresh ones."""
    session = Session("s1", wall_clock=clock.wall)
    _, therapist = join_session(session, "therapist", settings, clock)
    therapist.speak(10.0, 1.0, True)
    first = session.turn_stats(clock())
    therapist.speak(11.0, 1.0, True)
    assert session.turn_stats(clock() + 0.75) is first
    fresh = session.turn_stats(clock() + 1.0)
    assert fresh.speech_seconds["therapist"] > first.speech_seconds["therapist"]
    assert session.turn_stats(clock() + 1.0, max_age_seconds=0.0) is not fresh


def turn_stats(speech: float, overlap: float, turns: int, interruptions: int) -> TurnStats:
    return TurnStats(
        speech_seconds={"therapist": speech, "client": speech / 2},
        talk_share={},
        turn_count={"therapist": turns, "client": turns},
        mean_turn_seconds={},
        longest_turn_seconds={},
        overlap_seconds=overlap,
        interruptions={"therapist": interruptions, "client": 0},
        backchannels={},
        response_gaps={},
        silence_ratio=None,
    )


async def test_conversation_deltas_never_go_negative(clock: FakeClock) -> None:
    """Deltas are growth beyond the highest value already reported, never below 0."""
    session = Session("s1", wall_clock=clock.wall)
    first = session.conversation_deltas(turn_stats(10.0, 2.0, 3, 1))
    assert first.speech_seconds == {"therapist": 10.0, "client": 5.0}
    assert (first.overlap_seconds, first.turns, first.interruptions) == (
        2.0,
        {"therapist": 3, "client": 3},
        {"therapist": 1, "client": 0},
    )
    # A recomputation reclassified some speech and an overlap (e.g. as a backchannel).
    lower = session.conversation_deltas(turn_stats(8.0, 0.5, 2, 0))
    assert lower.speech_seconds == {"therapist": 0.0, "client": 0.0}
    assert lower.overlap_seconds == 0.0
    assert lower.turns == {"therapist": 0, "client": 0}
    assert lower.interruptions == {"therapist": 0, "client": 0}
    # Growth counts from the highest value told (10 s), not from the lower one (8 s).
    higher = session.conversation_deltas(turn_stats(12.0, 2.5, 5, 1))
    assert higher.speech_seconds == {"therapist": 2.0, "client": 1.0}
    assert (higher.overlap_seconds, higher.turns["therapist"], higher.interruptions) == (
        0.5,
        2,
        {"therapist": 0, "client": 0},
    )
