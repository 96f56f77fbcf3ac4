"""The corpus dialogues: deterministic, and their truth exactly what was placed."""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import replace

import pytest

from qualmon.sim.corpus import (
    PAUSE_IN_TURN_SECONDS,
    SPECS,
    DialogueTruth,
    Placement,
    intersection_seconds,
    place,
)
from qualmon.sim.corpus_fixtures import Corpus
from qualmon.sim.dialogue import ROLES
from qualmon.sim.phrases import PAUSE_SECONDS, RATE

DIALOGUES = sorted(SPECS)
PAUSE = round(PAUSE_SECONDS * RATE)


def own(truth: DialogueTruth, role: str) -> list[Placement]:
    return sorted((p for p in truth.placements if p.role == role), key=lambda p: p.at)


def test_placing_is_deterministic_for_a_seed(corpus: Corpus) -> None:
    spec = SPECS["balanced"]
    assert place(spec, corpus.voices) == corpus.truth("balanced")
    other = place(replace(spec, seed=spec.seed + 1), corpus.voices)
    assert other.placements != corpus.truth("balanced").placements


@pytest.mark.parametrize("dialogue", DIALOGUES)
def test_speech_seconds_are_the_placed_phrases_and_their_short_pauses(
    corpus: Corpus, dialogue: str
) -> None:
    """Phrase-level speech: every placed sample, plus pauses under 200 ms, nothing else."""
    truth = corpus.truth(dialogue)
    for role in ROLES:
        placed = own(truth, role)
        samples = sum(p.samples for p in placed)
        for a, b in itertools.pairwise(placed):
            assert b.at >= a.end, f"{role} overlaps itself"
            if b.at - a.end < PAUSE:
                samples += b.at - a.end
        assert truth.speech_seconds[role] == pytest.approx(samples / RATE, abs=1e-9)


@pytest.mark.parametrize("dialogue", DIALOGUES)
def test_no_truth_speech_inside_pauses_of_200_ms_or_more(corpus: Corpus, dialogue: str) -> None:
    truth = corpus.truth(dialogue)
    pauses = 0
    for role in ROLES:
        spans = truth.speech[role]
        for p in own(truth, role):
            assert any(a <= p.at / RATE and p.end / RATE <= b for a, b in spans)
        for a, b in itertools.pairwise(own(truth, role)):
            if b.at - a.end >= PAUSE:
                pauses += 1
                gap = ((a.end / RATE, b.at / RATE),)
                assert intersection_seconds(gap, spans) == 0.0
    assert pauses > 10


@pytest.mark.parametrize("dialogue", DIALOGUES)
def test_pauses_inside_turns_are_100_to_600_ms(corpus: Corpus, dialogue: str) -> None:
    truth = corpus.truth(dialogue)
    by_turn: defaultdict[int, list[Placement]] = defaultdict(list)
    for p in truth.placements:
        if p.kind == "turn":
            by_turn[p.turn].append(p)
    pauses = [
        (b.at - a.end) / RATE
        for phrases in by_turn.values()
        for a, b in itertools.pairwise(sorted(phrases, key=lambda p: p.at))
    ]
    low, high = PAUSE_IN_TURN_SECONDS
    assert all(low - 1e-4 <= pause <= high + 1e-4 for pause in pauses)
    assert any(pause < PAUSE_SECONDS for pause in pauses)
    assert any(pause >= PAUSE_SECONDS for pause in pauses)


@pytest.mark.parametrize("dialogue", DIALOGUES)
def test_overlap_is_exactly_the_placed_overlaps(corpus: Corpus, dialogue: str) -> None:
    truth = corpus.truth(dialogue)
    placed = truth.placed_overlaps
    for (_, end), (start, _) in itertools.pairwise(placed):
        assert end <= start
    assert truth.overlap_seconds == pytest.approx(sum(b - a for a, b in placed), abs=1e-9)
    assert truth.overlap_seconds > 1.0


@pytest.mark.parametrize("dialogue", DIALOGUES)
def test_turns_alternate_and_start_as_recorded(corpus: Corpus, dialogue: str) -> None:
    truth = corpus.truth(dialogue)
    turns = truth.turns
    assert turns[0].started == "first" and turns[0].gap_seconds is None
    for index, (previous, turn) in enumerate(itertools.pairwise(turns)):
        assert turn.role != previous.role
        assert turn.gap_seconds == pytest.approx(turn.start - previous.end, abs=1e-9)
        assert (turn.gap_seconds < 0) == (turn.started in ("latch", "interruption"))
        held = [p for p in truth.placements if p.kind == "turn" and p.turn == index]
        last = max(held, key=lambda p: p.end)
        assert last.end / RATE == pytest.approx(previous.end, abs=1e-9)
        assert last.cut_off == (turn.started == "interruption")
    assert sum(truth.turn_count.values()) == len(turns) >= 10
    for role in ROLES:
        assert truth.median_gap_seconds[role] is not None
        assert truth.interruptions[role] == sum(
            1 for t in turns if t.role == role and t.started in ("latch", "interruption")
        )


@pytest.mark.parametrize("dialogue", DIALOGUES)
def test_backchannels_are_short_words_inside_the_holders_phrases(
    corpus: Corpus, dialogue: str
) -> None:
    truth = corpus.truth(dialogue)
    words = [p for p in truth.placements if p.kind == "backchannel"]
    assert sum(truth.backchannels.values()) == len(words) >= 3
    for word in words:
        assert word.samples < RATE
        assert any(
            h.role != word.role and h.kind == "turn" and h.at < word.at and word.end < h.end
            for h in truth.placements
        )


def test_every_kind_of_turn_start_occurs(corpus: Corpus) -> None:
    turns = [t for d in DIALOGUES for t in corpus.truth(d).turns]
    assert {t.started for t in turns} == {"first", "response", "latch", "interruption"}
    assert any((t.gap_seconds or 0) >= 1.5 for t in turns), "a long pause"


def test_talk_shares_follow_the_specs(corpus: Corpus) -> None:
    assert 0.4 <= corpus.truth("balanced").talk_share["therapist"] <= 0.6
    assert corpus.truth("therapist_heavy").talk_share["therapist"] >= 0.65
    assert corpus.truth("client_heavy").talk_share["client"] >= 0.65
