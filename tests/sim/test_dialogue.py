"""Tests of the scripted dialogues, their committed speech fixtures and the turn ground truth."""

from __future__ import annotations

import functools
import itertools

import av
import numpy as np
import pytest

from qualmon.sim.audio import PTIME_SECONDS, SAMPLE_RATE
from qualmon.sim.dialogue import (
    BALANCED,
    ROLES,
    SCRIPTS,
    THERAPIST_HEAVY,
    DialogueFixture,
    Kind,
    Script,
    SpokenUtterance,
    Utterance,
    ground_truth_turns,
    load_fixture,
    pack_packets,
    unpack_packets,
)

SCRIPT_NAMES = sorted(SCRIPTS)


@functools.cache
def fixture_of(name: str) -> DialogueFixture:
    return load_fixture(name)


@functools.cache
def decoded(name: str, role: str) -> np.ndarray:
    """A role's whole track decoded with libopus, as float (full scale 1.0)."""
    codec = av.CodecContext.create("libopus", "r")
    codec.sample_rate = SAMPLE_RATE
    codec.layout = "mono"
    frames = [
        frame.to_ndarray().reshape(-1)
        for packet in fixture_of(name).packets[role]
        for frame in codec.decode(av.Packet(packet))
    ]
    pcm = np.concatenate(frames)
    return pcm.astype(np.float64) / 32768 if pcm.dtype == np.int16 else pcm.astype(np.float64)


def rms_dbfs(pcm: np.ndarray, start_seconds: float, end_seconds: float) -> float:
    part = pcm[round(start_seconds * SAMPLE_RATE) : round(end_seconds * SAMPLE_RATE)]
    return float(20 * np.log10(np.sqrt(np.mean(part**2)) + 1e-12))


def silences_seconds(fixture: DialogueFixture) -> list[tuple[float, float]]:
    """Stretches where no role speaks, between the first and last speech."""
    spans = sorted((s.true_start_seconds, s.true_end_seconds) for s in fixture.spoken)
    quiet: list[tuple[float, float]] = []
    reached = spans[0][1]
    for start, end in spans[1:]:
        if start > reached:
            quiet.append((reached, start))
        reached = max(reached, end)
    return quiet


def said(role: str, start: float, end: float, kind: Kind = "turn") -> SpokenUtterance:
    return SpokenUtterance(Utterance(role, start, "…", kind), start, end)


def hand_made(*spoken: SpokenUtterance) -> DialogueFixture:
    return DialogueFixture(name="hand", seconds=20.0, spoken=spoken)


# --- the committed fixtures ---------------------------------------------------------------


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_fixture_loads_with_equal_length_tracks(name: str) -> None:
    """Both roles carry one 20 ms packet per 20 ms of script, none empty."""
    fixture = fixture_of(name)
    assert fixture.name == name
    assert fixture.seconds == SCRIPTS[name].seconds
    assert fixture.roles == ROLES
    expected = round(fixture.seconds / PTIME_SECONDS)
    for role in ROLES:
        assert len(fixture.packets[role]) == expected
        assert all(fixture.packets[role])


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_fixture_is_rendered_from_the_current_script(name: str) -> None:
    """Editing a script without rerunning scripts/make_speech_fixtures.py fails here."""
    assert tuple(s.utterance for s in fixture_of(name).spoken) == SCRIPTS[name].utterances


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_segments_sorted_disjoint_and_inside_the_track(name: str) -> None:
    fixture = fixture_of(name)
    for role, segments in fixture.speech_segments_seconds.items():
        assert segments, role
        for start, end in segments:
            assert 0 <= start < end <= fixture.seconds
        for (_, end), (start, _) in itertools.pairwise(segments):
            assert end < start, f"{role} overlaps itself"


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_true_speech_starts_at_its_placement(name: str) -> None:
    """Each utterance's measured start lies within 0.3 s after where the script placed it."""
    for s in fixture_of(name).spoken:
        assert 0 <= s.true_start_seconds - s.utterance.start_seconds <= 0.3, s.utterance.text


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_decoded_packets_carry_speech_and_quiet(name: str) -> None:
    """libopus decodes real speech in the first utterance and near-silence in the long pause."""
    fixture = fixture_of(name)
    first = fixture.spoken[0]
    quiet_start, quiet_end = max(silences_seconds(fixture), key=lambda q: q[1] - q[0])
    speaker = decoded(name, first.role)
    other = decoded(name, next(r for r in ROLES if r != first.role))
    assert rms_dbfs(speaker, first.true_start_seconds, first.true_end_seconds) > -35
    assert rms_dbfs(other, first.true_start_seconds, first.true_end_seconds) < -55
    for pcm in (speaker, other):
        assert rms_dbfs(pcm, quiet_start + 0.1, quiet_end - 0.1) < -55


# --- script shape ---------------------------------------------------------------------------


@pytest.mark.parametrize("script", [BALANCED, THERAPIST_HEAVY], ids=lambda s: s.name)
def test_script_shape(script: Script) -> None:
    """40–50 s, a ≥ 3 s pause, ≥ 0.2 s response gaps, backchannels short and inside speech."""
    fixture = fixture_of(script.name)
    assert 40 <= script.seconds <= 50
    assert max(end - start for start, end in silences_seconds(fixture)) >= 3.0
    floor = [s for s in fixture.spoken if s.kind != "backchannel"]
    for previous, current in itertools.pairwise(floor):
        assert previous.role != current.role
        if current.kind == "turn":
            assert current.true_start_seconds - previous.true_end_seconds >= 0.2
    for bc in (s for s in fixture.spoken if s.kind == "backchannel"):
        assert bc.true_end_seconds - bc.true_start_seconds < 1.0
        host = next(
            (
                s
                for s in floor
                if s.role != bc.role
                and s.true_start_seconds <= bc.true_start_seconds
                and bc.true_end_seconds <= s.true_end_seconds
            ),
            None,
        )
        assert host is not None, f"backchannel {bc.utterance.text!r} overlaps no speech"
        assert bc.true_start_seconds - host.true_start_seconds >= 0.5
        assert host.true_end_seconds - bc.true_end_seconds >= 0.5


def test_balanced_interruption_and_long_client_utterance() -> None:
    """The client cuts in ~0.5 s early and keeps going for seconds after the therapist stops."""
    fixture = fixture_of(BALANCED.name)
    spoken = list(fixture.spoken)
    (cut,) = [s for s in spoken if s.kind == "interruption"]
    assert cut.role == "client"
    cut_off = [
        s
        for s in spoken
        if s.role == "therapist"
        and s.kind == "turn"
        and s.true_start_seconds < cut.true_start_seconds
    ][-1]
    assert cut_off.true_end_seconds - cut.true_start_seconds == pytest.approx(0.5, abs=0.1)
    assert cut.true_end_seconds - cut_off.true_end_seconds >= 3.0
    backchannels = [s for s in spoken if s.kind == "backchannel"]
    assert 2 <= len(backchannels) <= 3
    assert {s.role for s in backchannels} == {"therapist"}
    assert any(
        s.role == "client" and s.true_end_seconds - s.true_start_seconds >= 5.0 for s in spoken
    )


def test_therapist_heavy_has_one_client_backchannel() -> None:
    spoken = fixture_of(THERAPIST_HEAVY.name).spoken
    assert [s.role for s in spoken if s.kind == "backchannel"] == ["client"]
    assert not [s for s in spoken if s.kind == "interruption"]


# --- ground truth ------------------------------------------------------------------------------


def test_alternation_counts_turns_and_gaps() -> None:
    summary = ground_truth_turns(
        hand_made(said("t", 0.0, 2.0), said("c", 2.5, 4.0), said("t", 4.3, 6.0))
    )
    assert summary["turns"] == {"t": 2, "c": 1}
    assert summary["speech_seconds"] == pytest.approx({"t": 3.7, "c": 1.5})
    assert summary["talk_share"] == pytest.approx({"t": 3.7 / 5.2, "c": 1.5 / 5.2})
    assert summary["overlap_seconds"] == 0.0
    assert summary["response_gaps_seconds"]["c"] == pytest.approx([0.5])
    assert summary["response_gaps_seconds"]["t"] == pytest.approx([0.3])
    assert summary["longest_turn_seconds"] == pytest.approx({"t": 2.0, "c": 1.5})


def test_backchannel_neither_breaks_nor_starts_a_turn() -> None:
    """A 'mm-hm' inside and between one speaker's utterances leaves a single turn."""
    summary = ground_truth_turns(
        hand_made(
            said("t", 0.0, 5.0),
            said("c", 2.0, 2.5, "backchannel"),
            said("c", 5.2, 5.6, "backchannel"),
            said("t", 6.0, 8.0),
        )
    )
    assert summary["turns"] == {"t": 1, "c": 0}
    assert summary["backchannels"] == {"t": 0, "c": 2}
    assert summary["overlap_seconds"] == pytest.approx(0.5)
    assert summary["speech_seconds"]["c"] == pytest.approx(0.9)
    assert summary["longest_turn_seconds"]["t"] == pytest.approx(8.0)
    assert summary["response_gaps_seconds"] == {"t": [], "c": []}
    assert summary["median_gap_seconds"] == {"t": None, "c": None}


def test_interruption_starts_a_turn_with_a_negative_gap() -> None:
    summary = ground_truth_turns(
        hand_made(said("t", 0.0, 4.0), said("c", 3.5, 8.0, "interruption"), said("t", 8.4, 9.0))
    )
    assert summary["turns"] == {"t": 2, "c": 1}
    assert summary["interruptions"] == {"t": 0, "c": 1}
    assert summary["overlap_seconds"] == pytest.approx(0.5)
    assert summary["response_gaps_seconds"]["c"] == pytest.approx([-0.5])
    assert summary["turn_spans"] == [("t", 0.0, 4.0), ("c", 3.5, 8.0), ("t", 8.4, 9.0)]


def test_same_speaker_after_a_pause_is_one_turn() -> None:
    summary = ground_truth_turns(hand_made(said("t", 0.0, 2.0), said("t", 5.0, 6.0)))
    assert summary["turns"] == {"t": 1}
    assert summary["speech_seconds"] == pytest.approx({"t": 3.0})
    assert summary["talk_share"] == {"t": 1.0}


def test_no_speech() -> None:
    summary = ground_truth_turns(hand_made())
    assert summary["turns"] == {}
    assert summary["overlap_seconds"] == 0.0
    assert summary["turn_spans"] == []


def test_balanced_ground_truth() -> None:
    summary = ground_truth_turns(fixture_of(BALANCED.name))
    for role in ROLES:
        assert 0.40 <= summary["talk_share"][role] <= 0.60
    assert summary["turns"] == {"therapist": 5, "client": 5}
    assert summary["backchannels"] == {"therapist": 3, "client": 0}
    assert summary["interruptions"] == {"therapist": 0, "client": 1}
    assert min(summary["response_gaps_seconds"]["client"]) == pytest.approx(-0.5, abs=0.1)
    # overlap = the interruption plus the three backchannels
    assert 1.5 <= summary["overlap_seconds"] <= 2.5


def test_therapist_heavy_ground_truth() -> None:
    summary = ground_truth_turns(fixture_of(THERAPIST_HEAVY.name))
    assert 0.65 <= summary["talk_share"]["therapist"] <= 0.80
    assert summary["backchannels"] == {"therapist": 0, "client": 1}
    assert summary["turns"]["therapist"] == summary["turns"]["client"] == 5
    assert all(gap > 0 for gaps in summary["response_gaps_seconds"].values() for gap in gaps)


# --- packet file format -----------------------------------------------------------------------


def test_packets_round_trip() -> None:
    packets = [b"\x01", b"", bytes(range(256)) * 3]
    assert unpack_packets(pack_packets(packets)) == packets


def test_truncated_packet_stream_is_refused() -> None:
    data = pack_packets([b"abcdef"])
    with pytest.raises(ValueError, match="truncated"):
        unpack_packets(data[:-1])
    with pytest.raises(ValueError, match="truncated"):
        unpack_packets(data + b"\x00")
