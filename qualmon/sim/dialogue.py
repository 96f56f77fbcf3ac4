"""Scripted therapy dialogues, their pre-encoded speech fixtures and ground-truth turn counts."""

from __future__ import annotations

import itertools
import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal, TypedDict

Kind = Literal["turn", "backchannel", "interruption"]
KINDS: tuple[Kind, ...] = ("turn", "backchannel", "interruption")
ROLES: tuple[str, ...] = ("therapist", "client")
FIXTURE_PACKAGE = "qualmon.sim"
FIXTURE_DIR = "fixtures"


@dataclass(frozen=True)
class Utterance:
    """One line of a script, placed on the shared timeline."""

    role: str
    "Who speaks: 'therapist' or 'client'."
    start_seconds: float
    "Placement time from the start of the track; the speech itself starts within a few ms."
    text: str
    "What is said (fed to espeak-ng)."
    kind: Kind = "turn"
    "'turn' takes the floor, a short 'backchannel' does not, an 'interruption' starts early."


@dataclass(frozen=True)
class Script:
    """A timed dialogue between roles."""

    name: str
    "Fixture base name, e.g. 'balanced'."
    utterances: tuple[Utterance, ...]
    seconds: float
    "Total track length, a little after the last utterance ends."


@dataclass(frozen=True)
class SpokenUtterance:
    """An utterance with its speech extents measured from the synthesized audio."""

    utterance: Utterance
    true_start_seconds: float
    "First sample above the speech threshold, from the start of the track."
    true_end_seconds: float
    "Just after the last sample above the speech threshold."
    pauses: tuple[tuple[float, float], ...] = ()
    "Pauses of 200 ms or more inside it (espeak's comma and sentence pauses): not speech."

    @property
    def voiced_seconds(self) -> tuple[tuple[float, float], ...]:
        """Its speech as an annotator marks it: the extents with the pauses taken out."""
        spans, start = [], self.true_start_seconds
        for pause_start, pause_end in self.pauses:
            spans.append((start, pause_start))
            start = pause_end
        spans.append((start, self.true_end_seconds))
        return tuple(spans)

    @property
    def role(self) -> str:
        return self.utterance.role

    @property
    def kind(self) -> Kind:
        return self.utterance.kind


@dataclass(frozen=True)
class DialogueFixture:
    """A rendered script: per role 20 ms Opus packets (equal length) plus the true speech times."""

    name: str
    seconds: float
    spoken: tuple[SpokenUtterance, ...]
    "Every utterance in script order, with its measured extents."
    packets: dict[str, list[bytes]] = field(default_factory=dict)
    "Per role, Opus packets covering the whole track (silence where the role is quiet)."

    @property
    def roles(self) -> tuple[str, ...]:
        """Roles in order of first appearance (packets first, then utterances)."""
        seen = dict.fromkeys(self.packets)
        seen.update(dict.fromkeys(s.role for s in self.spoken))
        return tuple(seen)

    @property
    def voiced_segments_seconds(self) -> dict[str, tuple[tuple[float, float], ...]]:
        """Per role its voiced time: each utterance without its pauses of 200 ms or more."""
        return {
            role: tuple(sorted(v for s in self.spoken if s.role == role for v in s.voiced_seconds))
            for role in self.roles
        }

    @property
    def speech_segments_seconds(self) -> dict[str, tuple[tuple[float, float], ...]]:
        """Per role the (start, end) seconds of each utterance's true speech, sorted."""
        return {
            role: tuple(
                sorted(
                    (s.true_start_seconds, s.true_end_seconds)
                    for s in self.spoken
                    if s.role == role
                )
            )
            for role in self.roles
        }


BALANCED = Script(
    name="balanced",
    seconds=47.8,
    utterances=(
        Utterance("therapist", 0.50, "Hi, it's good to see you again. How has your week been?"),
        Utterance(
            "client",
            4.40,
            "Honestly, it's been a hard week. Work was busy, and I didn't sleep well.",
        ),
        Utterance("therapist", 6.20, "mm-hm", "backchannel"),
        Utterance("therapist", 9.60, "That sounds exhausting. What kept you awake?"),
        Utterance("client", 13.20, "Mostly worrying about the deadline."),
        Utterance(
            "therapist",
            15.25,
            "And when that worry comes at night, what do you usually do with it? Do you get up, or",
        ),
        Utterance(
            "client",
            19.82,
            "I just lie there and go over everything again and again,"
            " and it never really stops until morning.",
            "interruption",
        ),
        Utterance("therapist", 22.30, "yeah", "backchannel"),
        Utterance("therapist", 28.90, "Could you describe the last time it happened?"),
        Utterance(
            "client",
            31.70,
            "It was Sunday. I kept thinking my manager would be disappointed,"
            " and that everyone would see I can't cope.",
        ),
        Utterance("therapist", 34.40, "right", "backchannel"),
        Utterance(
            "therapist",
            38.50,
            "That's a heavy thought to carry."
            " How true does it feel right now, sitting here with me?",
        ),
        Utterance("client", 44.20, "Less true, I think. Maybe half."),
    ),
)
"Both roles speak about equally; one interruption, three therapist backchannels, a 3 s pause."

THERAPIST_HEAVY = Script(
    name="therapist_heavy",
    seconds=46.5,
    utterances=(
        Utterance(
            "therapist",
            0.50,
            "Today I'd like to explain how anxiety works in the body,"
            " because it may help with what you've been feeling.",
        ),
        Utterance("client", 6.60, "Okay, sure. I'd like that."),
        Utterance(
            "therapist",
            9.20,
            "When the brain senses a threat, it prepares the body to act. Your heart beats faster,"
            " your breathing gets quicker, and your muscles tighten.",
        ),
        Utterance("client", 12.60, "mm-hm", "backchannel"),
        Utterance("client", 17.90, "That makes sense."),
        Utterance(
            "therapist",
            19.30,
            "Yes, worry can switch on the same alarm, even when you're safe."
            " Does that sound familiar?",
        ),
        Utterance("client", 25.20, "Yes, a lot. Especially at night."),
        Utterance(
            "therapist",
            31.00,
            "Let's try a slow breathing exercise. Breathe in for four counts,"
            " and then breathe out slowly for six.",
        ),
        Utterance("client", 37.50, "Okay, I'll try it."),
        Utterance(
            "therapist",
            39.20,
            "Good. You can also use this at home, whenever you notice the alarm.",
        ),
        Utterance("client", 43.80, "Okay. Thank you."),
    ),
)
"The therapist explains (about three quarters of the speech); the client answers briefly."

SCRIPTS: dict[str, Script] = {s.name: s for s in (BALANCED, THERAPIST_HEAVY)}


def pack_packets(packets: Iterable[bytes]) -> bytes:
    """Concatenate packets, each prefixed by its 2-byte big-endian length."""
    out = bytearray()
    for p in packets:
        if len(p) > 0xFFFF:
            raise ValueError(f"packet of {len(p)} bytes does not fit a 2-byte length")
        out += len(p).to_bytes(2, "big") + p
    return bytes(out)


def unpack_packets(data: bytes) -> list[bytes]:
    """Inverse of pack_packets; raises ValueError on a truncated stream."""
    packets: list[bytes] = []
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise ValueError("truncated packet length")
        size = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
        if offset + size > len(data):
            raise ValueError("truncated packet payload")
        packets.append(data[offset : offset + size])
        offset += size
    return packets


def fixture_files(script_name: str) -> tuple[str, dict[str, str]]:
    """File names of a script's manifest and of each role's packets."""
    return f"{script_name}.json", {role: f"{script_name}.{role}.opus.bin" for role in ROLES}


def load_fixture(script_name: str) -> DialogueFixture:
    """Read the committed fixture of a script from qualmon/sim/fixtures/."""
    folder = resources.files(FIXTURE_PACKAGE).joinpath(FIXTURE_DIR)
    manifest_name, packet_names = fixture_files(script_name)
    manifest = json.loads(folder.joinpath(manifest_name).read_text(encoding="utf-8"))
    spoken = tuple(
        SpokenUtterance(
            Utterance(u["role"], u["start_seconds"], u["text"], u["kind"]),
            u["true_start_seconds"],
            u["true_end_seconds"],
            tuple((a, b) for a, b in u.get("pauses", ())),
        )
        for u in manifest["utterances"]
    )
    packets = {
        role: unpack_packets(folder.joinpath(name).read_bytes())
        for role, name in packet_names.items()
    }
    return DialogueFixture(
        name=manifest["script"], seconds=manifest["seconds"], spoken=spoken, packets=packets
    )


class TurnSummary(TypedDict):
    """Ground truth for the talk-turn measures (per role unless stated)."""

    speech_seconds: dict[str, float]
    talk_share: dict[str, float]
    "Speech seconds / the sum over roles of speech seconds (silence excluded)."
    turns: dict[str, int]
    longest_turn_seconds: dict[str, float]
    backchannels: dict[str, int]
    interruptions: dict[str, int]
    overlap_seconds: float
    "Time during which two or more roles speak (backchannels included)."
    response_gaps_seconds: dict[str, list[float]]
    "Per responding role: its turn's start − the previous turn's end (negative = overlap)."
    median_gap_seconds: dict[str, float | None]
    turn_spans: list[tuple[str, float, float]]
    "Every turn as (role, start, end) seconds, in order."


def _union_seconds(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _overlap_seconds(per_role: Iterable[Sequence[tuple[float, float]]]) -> float:
    events: list[tuple[float, int]] = []
    for spans in per_role:
        for start, end in _union_seconds(spans):
            events += [(start, 1), (end, -1)]
    events.sort()  # at equal times the -1 comes first: touching spans do not overlap
    active, overlap, previous = 0, 0.0, 0.0
    for time, step in events:
        if active >= 2:
            overlap += time - previous
        active += step
        previous = time
    return overlap


def ground_truth_turns(fixture: DialogueFixture) -> TurnSummary:
    """Talk shares, turns, overlap and response gaps from the fixture's true speech times.

    Speech seconds, talk share and overlap count voiced time (utterances without their pauses
    of 200 ms or more); turns bridge pauses. A turn is a maximal run of one role's utterances
    not broken by another role's floor-taking speech ('turn' or 'interruption'); backchannels
    never break or start a turn. Consecutive turns therefore alternate, and an interruption
    starts a new turn for the interrupter.
    """
    roles = fixture.roles
    voiced = fixture.voiced_segments_seconds
    speech = {r: sum(e - s for s, e in _union_seconds(voiced[r])) for r in roles}
    total = sum(speech.values())
    turn_spans: list[tuple[str, float, float]] = []
    floor = sorted(
        (s for s in fixture.spoken if s.kind != "backchannel"),
        key=lambda s: (s.true_start_seconds, s.true_end_seconds),
    )
    for s in floor:
        if turn_spans and turn_spans[-1][0] == s.role:
            role, start, end = turn_spans[-1]
            turn_spans[-1] = (role, start, max(end, s.true_end_seconds))
        else:
            turn_spans.append((s.role, s.true_start_seconds, s.true_end_seconds))
    gaps: dict[str, list[float]] = {r: [] for r in roles}
    for previous, current in itertools.pairwise(turn_spans):
        gaps[current[0]].append(current[1] - previous[2])
    return TurnSummary(
        speech_seconds=speech,
        talk_share={r: speech[r] / total if total else 0.0 for r in roles},
        turns={r: sum(1 for t in turn_spans if t[0] == r) for r in roles},
        longest_turn_seconds={
            r: max((e - s for role, s, e in turn_spans if role == r), default=0.0) for r in roles
        },
        backchannels={r: _count(fixture, r, "backchannel") for r in roles},
        interruptions={r: _count(fixture, r, "interruption") for r in roles},
        overlap_seconds=_overlap_seconds(voiced.values()),
        response_gaps_seconds=gaps,
        median_gap_seconds={r: statistics.median(g) if g else None for r, g in gaps.items()},
        turn_spans=turn_spans,
    )


def _count(fixture: DialogueFixture, role: str, kind: Kind) -> int:
    return sum(1 for s in fixture.spoken if s.role == role and s.kind == kind)
