"""Two-party dialogues placed from real recorded phrases, with their truth exact by construction.

A dialogue alternates turns. A turn is one role's phrases with pauses of 100–600 ms between
them; the other role may give a backchannel (a single word) inside one of those phrases. The
next turn starts after a response gap, after a long pause, a little early (a latch: the
holder finishes over it), or as an interruption (the holder is cut off mid-word a moment
after the newcomer starts). Nothing is measured from audio: every time below is where a
phrase was put, so the truth is what a careful annotator would write. Speech is marked at
the phrase level: a pause under 200 ms is speech, one of 200 ms or more is not.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from .dialogue import ROLES
from .phrases import PAUSE_SECONDS, RATE, Phrase, Voice

Kind = Literal["turn", "backchannel"]
Start = Literal["first", "response", "latch", "interruption"]
Span = tuple[float, float]

LEAD_SECONDS = 0.5
TAIL_SECONDS = 1.0
PACKET_SECONDS = 0.020
PAUSE_IN_TURN_SECONDS = (0.1, 0.6)
RESPONSE_GAP_SECONDS = (0.2, 1.2)
LONG_PAUSE_SECONDS = (1.5, 3.5)
LATCH_OVERLAP_SECONDS = (0.05, 0.25)
INTERRUPTION_OVERLAP_SECONDS = (0.3, 0.8)
PHRASE_GAIN_DB = (-2.0, 2.0)
"Each turn phrase's level around its role's, as one speaker's phrases vary."
BACKCHANNEL_GAIN_DB = (-5.0, -1.0)
BACKCHANNEL_MARGIN_SECONDS = 0.3
"A backchannel lies this far inside the holder's phrase, at both ends."
BACKCHANNEL_CLEAR_SECONDS = (0.5, 1.2)
"...and this far after its giver's own last speech and before the holder's turn ends."


@dataclass(frozen=True)
class DialogueSpec:
    """What kind of conversation to place; the same spec and voices give the same dialogue."""

    name: str
    voices: Mapping[str, str]
    "Per role, the corpus voice that speaks it."
    seconds: float
    "No turn starts after this; the turn under way finishes."
    turn_seconds: Mapping[str, tuple[float, float]]
    "Per role, the speech per turn (seconds, drawn uniformly)."
    quieter: str
    "The role whose leg is 12 dB below the other's."
    seed: int
    backchannel_chance: float = 0.4
    "Per phrase of the holder: the listener says a word inside it."
    interruption_chance: float = 0.12
    latch_chance: float = 0.12
    long_pause_chance: float = 0.12


SPECS: dict[str, DialogueSpec] = {
    s.name: s
    for s in (
        DialogueSpec(
            name="balanced",
            voices={"therapist": "allison", "client": "reader"},
            seconds=75.0,
            turn_seconds={"therapist": (2.0, 6.0), "client": (2.0, 6.0)},
            quieter="client",
            seed=1301,
        ),
        DialogueSpec(
            name="therapist_heavy",
            voices={"therapist": "allison", "client": "reader"},
            seconds=75.0,
            turn_seconds={"therapist": (4.0, 10.0), "client": (1.0, 3.0)},
            quieter="therapist",
            seed=1302,
        ),
        DialogueSpec(
            name="client_heavy",
            voices={"therapist": "reader", "client": "allison"},
            seconds=75.0,
            turn_seconds={"therapist": (1.0, 3.0), "client": (4.0, 10.0)},
            quieter="client",
            seed=1303,
        ),
    )
}


@dataclass(frozen=True)
class Placement:
    """One phrase put on the shared timeline."""

    role: str
    kind: Kind
    phrase: Phrase
    at: int
    "Timeline sample (16 kHz) where the phrase starts."
    samples: int
    "Placed length: the phrase's own, or less where an interruption cut it off."
    gain_db: float
    "Level relative to the role's (each phrase is first brought to the same RMS)."
    turn: int
    "Index of the turn it belongs to; a backchannel belongs to the holder's turn."

    @property
    def end(self) -> int:
        return self.at + self.samples

    @property
    def cut_off(self) -> bool:
        return self.samples < self.phrase.samples


@dataclass(frozen=True)
class TurnTruth:
    """A turn: from its first phrase's start to its last phrase's end, pauses included."""

    role: str
    start: float
    end: float
    started: Start
    gap_seconds: float | None
    "Start minus the previous turn's end (negative: it started over the holder)."


@dataclass(frozen=True)
class DialogueTruth:
    """Everything a dialogue is, in seconds from the start of the track."""

    name: str
    seconds: float
    "Track length, a multiple of 20 ms."
    voices: Mapping[str, str]
    "Per role, the corpus voice that speaks it."
    placements: tuple[Placement, ...]
    turns: tuple[TurnTruth, ...]
    placed_overlaps: tuple[Span, ...]
    "Each overlap as placed: every backchannel, and the start of each latch or interruption."
    quieter: str

    @property
    def speech(self) -> dict[str, tuple[Span, ...]]:
        """Per role, phrase-level speech: placements joined across pauses under 200 ms."""
        gap = round(PAUSE_SECONDS * RATE)
        out: dict[str, tuple[Span, ...]] = {}
        for role in ROLES:
            merged: list[list[int]] = []
            for p in sorted((p for p in self.placements if p.role == role), key=lambda p: p.at):
                if merged and p.at - merged[-1][1] < gap:
                    merged[-1][1] = max(merged[-1][1], p.end)
                else:
                    merged.append([p.at, p.end])
            out[role] = tuple((a / RATE, b / RATE) for a, b in merged)
        return out

    @property
    def speech_seconds(self) -> dict[str, float]:
        return {role: sum(b - a for a, b in spans) for role, spans in self.speech.items()}

    @property
    def talk_share(self) -> dict[str, float]:
        speech = self.speech_seconds
        total = sum(speech.values())
        return {role: seconds / total for role, seconds in speech.items()}

    @property
    def overlap_seconds(self) -> float:
        """Time both roles speak (phrase level)."""
        speech = self.speech
        return intersection_seconds(speech[ROLES[0]], speech[ROLES[1]])

    @property
    def turn_count(self) -> dict[str, int]:
        return {role: sum(1 for t in self.turns if t.role == role) for role in ROLES}

    @property
    def backchannels(self) -> dict[str, int]:
        return {
            role: sum(1 for p in self.placements if p.role == role and p.kind == "backchannel")
            for role in ROLES
        }

    @property
    def interruptions(self) -> dict[str, int]:
        """Turns started over the holder's speech (latches included), as qualmon counts them."""
        return {
            role: sum(1 for t in self.turns if t.role == role and (t.gap_seconds or 0) < 0)
            for role in ROLES
        }

    @property
    def response_gaps(self) -> dict[str, tuple[float, ...]]:
        return {
            role: tuple(
                t.gap_seconds for t in self.turns if t.role == role and t.gap_seconds is not None
            )
            for role in ROLES
        }

    @property
    def median_gap_seconds(self) -> dict[str, float | None]:
        return {r: statistics.median(g) if g else None for r, g in self.response_gaps.items()}


def intersection_seconds(a: Sequence[Span], b: Sequence[Span]) -> float:
    """Time covered by both lists of sorted, disjoint spans."""
    total, i, j = 0.0, 0, 0
    while i < len(a) and j < len(b):
        total += max(0.0, min(a[i][1], b[j][1]) - max(a[i][0], b[j][0]))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


class _Deck:
    """Draws items in shuffled rounds, so phrases repeat only once all were used."""

    def __init__(self, items: Sequence[Phrase], rng: np.random.Generator) -> None:
        if not items:
            raise ValueError("a voice without phrases or words")
        self._items = items
        self._rng = rng
        self._order: list[int] = []

    def draw(self) -> Phrase:
        if not self._order:
            self._order = [int(i) for i in self._rng.permutation(len(self._items))]
        return self._items[self._order.pop()]


def _samples(rng: np.random.Generator, bounds: tuple[float, float]) -> int:
    return round(float(rng.uniform(*bounds)) * RATE)


def _cut_point(phrase: Phrase, overlap: int, rng: np.random.Generator) -> int | None:
    """Where an interrupted phrase stops (from its start): inside a word, with the newcomer
    starting `overlap` before it and at least 0.2 s into the phrase, and 0.3 s left unsaid."""
    into, settle = round(0.2 * RATE), round(0.05 * RATE)
    spans = [
        (max(a + settle, overlap + into), min(b, phrase.samples - round(0.3 * RATE)))
        for a, b in phrase.runs
    ]
    spans = [(a, b) for a, b in spans if b > a]
    if not spans:
        return None
    lengths = np.array([b - a for a, b in spans], dtype=float)
    a, b = spans[int(rng.choice(len(spans), p=lengths / lengths.sum()))]
    return int(rng.integers(a, b))


@dataclass
class _Placer:
    """The state of a dialogue being placed (samples on the 16 kHz timeline)."""

    spec: DialogueSpec
    voices: Mapping[str, Voice]
    rng: np.random.Generator
    placements: list[Placement]
    overlaps: list[tuple[int, int]]
    spoke_until: dict[str, int]
    phrases: dict[str, _Deck] = field(init=False)
    words: dict[str, _Deck] = field(init=False)

    def __post_init__(self) -> None:
        voice_of = {r: self.voices[self.spec.voices[r]] for r in ROLES}
        self.phrases = {r: _Deck(voice_of[r].phrases, self.rng) for r in ROLES}
        self.words = {r: _Deck(voice_of[r].words, self.rng) for r in ROLES}

    def turn(self, role: str, at: int, index: int) -> list[Placement]:
        """The holder's phrases, with pauses between them, until its speech reaches a target."""
        rng, cursor, spoken = self.rng, at, 0
        held: list[Placement] = []
        target = rng.uniform(*self.spec.turn_seconds[role]) * RATE
        while not held or spoken < target:
            if held:
                cursor += _samples(rng, PAUSE_IN_TURN_SECONDS)
            phrase = self.phrases[role].draw()
            gain = float(rng.uniform(*PHRASE_GAIN_DB))
            held.append(Placement(role, "turn", phrase, cursor, phrase.samples, gain, index))
            cursor += phrase.samples
            spoken += phrase.samples
        return held

    def next_start(self, held: list[Placement]) -> tuple[Start, int]:
        """How and where the other role comes in; may cut the holder's last phrase short."""
        rng, spec, last = self.rng, self.spec, held[-1]
        draw = rng.random()
        if draw < spec.interruption_chance + spec.latch_chance:
            overlap = _samples(rng, INTERRUPTION_OVERLAP_SECONDS)
            cut = _cut_point(last.phrase, overlap, rng) if draw < spec.interruption_chance else None
            started: Start = "interruption"
            if cut is None:
                started, overlap = "latch", _samples(rng, LATCH_OVERLAP_SECONDS)
            else:
                held[-1] = replace(last, samples=cut)
            end = held[-1].end
            self.overlaps.append((end - overlap, end))
            return started, end - overlap
        pause = draw < spec.interruption_chance + spec.latch_chance + spec.long_pause_chance
        return "response", last.end + _samples(
            rng, LONG_PAUSE_SECONDS if pause else RESPONSE_GAP_SECONDS
        )

    def backchannels(self, held: list[Placement], listener: str) -> None:
        """A word of the listener inside some of the holder's phrases, clear of its own speech."""
        rng, margin = self.rng, round(BACKCHANNEL_MARGIN_SECONDS * RATE)
        after, before = (round(s * RATE) for s in BACKCHANNEL_CLEAR_SECONDS)
        for host in held:
            if rng.random() >= self.spec.backchannel_chance:
                continue
            word = self.words[listener].draw()
            lo = max(host.at + margin, self.spoke_until[listener] + after)
            hi = min(host.end - margin, held[-1].end - before) - word.samples
            if hi < lo:
                continue
            at = int(rng.integers(lo, hi + 1))
            gain = float(rng.uniform(*BACKCHANNEL_GAIN_DB))
            self.placements.append(
                Placement(listener, "backchannel", word, at, word.samples, gain, host.turn)
            )
            self.overlaps.append((at, at + word.samples))
            self.spoke_until[listener] = at + word.samples


def place(spec: DialogueSpec, voices: Mapping[str, Voice]) -> DialogueTruth:
    """Place a whole dialogue; deterministic for the spec (its seed) and the voices."""
    placer = _Placer(
        spec, voices, np.random.default_rng(spec.seed), [], [], dict.fromkeys(ROLES, -(10**9))
    )
    turns: list[TurnTruth] = []
    started: Start = "first"
    role, at, gap = ROLES[0], round(LEAD_SECONDS * RATE), None
    while True:
        listener = ROLES[1 - ROLES.index(role)]
        held = placer.turn(role, at, len(turns))
        # The last turn is the one that reaches spec.seconds; it ends as it is.
        follows = placer.next_start(held) if held[-1].end < spec.seconds * RATE else None
        placer.placements += held
        placer.backchannels(held, listener)
        end = held[-1].end
        turns.append(TurnTruth(role, at / RATE, end / RATE, started, gap))
        placer.spoke_until[role] = end
        if follows is None:
            break
        started, at = follows
        role, gap = listener, (at - end) / RATE
    last = max(p.end for p in placer.placements) / RATE + TAIL_SECONDS
    return DialogueTruth(
        name=spec.name,
        seconds=math.ceil(round(last / PACKET_SECONDS, 6)) * PACKET_SECONDS,
        voices=dict(spec.voices),
        placements=tuple(sorted(placer.placements, key=lambda p: p.at)),
        turns=tuple(turns),
        placed_overlaps=tuple((a / RATE, b / RATE) for a, b in sorted(placer.overlaps)),
        quieter=spec.quieter,
    )
