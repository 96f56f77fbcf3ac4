"""The corpus legs: levels 12 dB apart, room noise, suppressed floors and echo as drawn."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from qualmon.sim.corpus import SPECS
from qualmon.sim.corpus_fixtures import Corpus
from qualmon.sim.dialogue import ROLES
from qualmon.sim.phrases import RATE
from qualmon.sim.rooms import (
    LEVEL_DIFFERENCE_DB,
    SUPPRESSED_FLOOR_DBFS,
    VARIANTS,
    RenderedDialogue,
    level_dbfs,
    mask,
)

MARGIN_SECONDS = 0.5  # past any phrase's lead-in, lead-out and echo


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def balanced(request: pytest.FixtureRequest, corpus: Corpus) -> RenderedDialogue:
    """The balanced dialogue in each variant (one at a time: tests are grouped by it)."""
    return corpus.render(f"balanced/{request.param}")


def other(role: str) -> str:
    return ROLES[1 - ROLES.index(role)]


def own_speech_alone(r: RenderedDialogue, role: str) -> np.ndarray:
    samples = len(r.legs[role].mix)
    spans = r.truth.speech
    return mask(spans[role], samples) & ~mask(spans[other(role)], samples)


def far_from_everyone(r: RenderedDialogue) -> np.ndarray:
    """Samples at least MARGIN_SECONDS from every placed phrase of either role."""
    samples = len(r.legs[ROLES[0]].mix)
    near = np.zeros(samples, dtype=bool)
    for p in r.truth.placements:
        margin = round(MARGIN_SECONDS * RATE)
        near[max(0, p.at - margin) : p.end + margin] = True
    return ~near


def test_legs_are_the_sum_of_their_parts_and_do_not_clip(balanced: RenderedDialogue) -> None:
    r = balanced
    for role in ROLES:
        leg = r.legs[role]
        assert len(leg.mix) == round(r.truth.seconds * RATE)
        assert np.allclose(leg.mix, leg.speech + leg.noise + leg.echo, atol=1e-6)
        assert float(np.max(np.abs(leg.mix))) < 0.9
        assert np.allclose(leg.pcm16() / 32768, leg.mix, atol=1 / 32768)


def test_levels_are_12_db_apart(balanced: RenderedDialogue) -> None:
    """Measured on the legs as sent, over each role's own speech (not in overlaps)."""
    r = balanced
    levels = {role: level_dbfs(r.legs[role].mix, own_speech_alone(r, role)) for role in ROLES}
    quiet, loud = r.truth.quieter, other(r.truth.quieter)
    assert levels[loud] - levels[quiet] == pytest.approx(LEVEL_DIFFERENCE_DB, abs=0.5)
    for role in ROLES:
        assert levels[role] == pytest.approx(r.conditions[role].level_dbfs, abs=0.5)


@pytest.mark.parametrize("dialogue", ["therapist_heavy", "client_heavy"])
def test_every_dialogue_has_its_quieter_role(corpus: Corpus, dialogue: str) -> None:
    r = corpus.render(f"{dialogue}/clean")
    levels = {role: level_dbfs(r.legs[role].mix, own_speech_alone(r, role)) for role in ROLES}
    assert r.truth.quieter == SPECS[dialogue].quieter
    assert levels[other(r.truth.quieter)] - levels[r.truth.quieter] == pytest.approx(12, abs=0.5)


def test_noise_is_as_drawn(balanced: RenderedDialogue) -> None:
    """Room noise at its SNR (speech level over the level where nobody speaks, both measured on
    the leg as sent); under suppression only white noise at −63…−57 dBFS, a new level each
    time the suppressor closes; else the −70 dBFS studio floor."""
    r = balanced
    quiet = far_from_everyone(r)
    assert quiet.sum() > 2 * RATE
    for role in ROLES:
        c, leg = r.conditions[role], r.legs[role]
        if r.variant.suppressed:
            _check_suppressed_floor(r, role)
        elif c.snr_db is not None:
            assert 15 <= c.snr_db <= 30
            speech = level_dbfs(leg.mix, own_speech_alone(r, role))
            assert speech - level_dbfs(leg.mix, quiet) == pytest.approx(c.snr_db, abs=1.0), role
        else:
            assert c.floor_dbfs == (-70.0,)
            assert level_dbfs(leg.noise) == pytest.approx(-70.0, abs=0.1)


def _check_suppressed_floor(r: RenderedDialogue, role: str) -> None:
    c = r.conditions[role]
    assert c.hangover_seconds is not None
    samples = len(r.legs[role].mix)
    hangover = c.hangover_seconds + 0.01
    open_ = mask([(a - 0.01, b + hangover) for a, b in r.truth.speech[role]], samples)
    closed = [(a, b) for a, b in _runs(~open_) if b - a > 0.3 * RATE]
    levels = [level_dbfs(r.legs[role].mix[a:b]) for a, b in closed]
    low, high = SUPPRESSED_FLOOR_DBFS
    assert all(low - 0.5 <= level <= high + 0.5 for level in levels), levels
    assert max(abs(b - a) for a, b in itertools.pairwise(levels)) >= 3.0


def test_echo_is_the_other_leg_delayed_at_its_level(balanced: RenderedDialogue) -> None:
    """Echo over the other role's (delayed) speech, relative to that role's level: −35…−25 dB;
    without a studio floor's masking, also measured on the leg as sent. A copy of the other
    leg: the cross-correlation peaks at the drawn delay."""
    r = balanced
    samples = len(r.legs[ROLES[0]].mix)
    for role in ROLES:
        c, leg = r.conditions[role], r.legs[role]
        if r.variant.echo_db is None:
            assert not np.any(leg.echo)
            continue
        assert c.echo_db is not None and c.echo_delay_seconds is not None
        assert -35 <= c.echo_db <= -25
        delay = round(c.echo_delay_seconds * RATE)
        far = mask(r.truth.speech[other(role)], samples, shift=delay)
        far &= ~mask(r.truth.speech[role], samples)
        far_level = r.conditions[other(role)].level_dbfs
        assert level_dbfs(leg.echo, far) - far_level == pytest.approx(c.echo_db, abs=1.0)
        if r.variant.room_snr_db is None:
            heard = np.mean((leg.mix.astype(np.float64) - leg.speech) ** 2 * far) / far.mean()
            floor = 10 ** (level_dbfs(leg.mix, far_from_everyone(r)) / 10)
            measured = 10 * np.log10(heard - floor) - far_level
            assert measured == pytest.approx(c.echo_db, abs=1.0), role
        source = r.legs[other(role)]
        assert _lag(source.speech + source.noise, leg.echo) == pytest.approx(delay, abs=16)


def _lag(x: np.ndarray, y: np.ndarray) -> int:
    """Where y best matches a delayed x (0–0.3 s)."""
    size = 1 << (len(x) + len(y)).bit_length()
    corr = np.fft.irfft(np.fft.rfft(y, size) * np.conj(np.fft.rfft(x, size)), size)
    return int(np.argmax(corr[: round(0.3 * RATE)]))


def test_rendering_is_deterministic(corpus: Corpus) -> None:
    first = corpus.render("client_heavy/floor")
    second = corpus.render("client_heavy/floor")
    for role in ROLES:
        assert np.array_equal(first.legs[role].mix, second.legs[role].mix)
    assert first.conditions == second.conditions


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
