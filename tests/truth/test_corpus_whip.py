"""Speech and talk turns on the realistic corpus through the whole path, in real time.

Seven corpus sessions (real recordings: suppressed floors, room noise, residual echo, 12 dB
between the roles, 5 % loss, outages) are published over WHIP at once to a real service
(`sim/corpus_whip.py`); each session's segments are scored against the phrase-level truth.

Tolerances are issue 13's goals where this classifier holds them on every corpus fixture
(offline and over WHIP, `qualmon bench --speech --whip`): talk share ±2 pp (±3 pp with 5 %
loss), overlap ±25 %, turn counts ±1, residual echo adding < 0.3 s of overlap per minute.
Speech seconds per role (goal ±5 %) and response-gap medians (goal ±100 ms) are not held on
every fixture yet (worst over WHIP on the whole corpus: −7.4 %, +134 ms; the README has the
table); here they are guarded at ±10 % and ±150 ms so that a regression still fails.
"""

from __future__ import annotations

import asyncio

import pytest

from qualmon.sim.corpus_fixtures import Corpus
from qualmon.sim.corpus_whip import WhipRun, run_fixtures
from qualmon.sim.dialogue import ROLES
from qualmon.sim.speech_score import table

pytestmark = pytest.mark.realtime

FIXTURES = (
    "balanced/floor",
    "therapist_heavy/clean",
    "therapist_heavy/echo",
    "client_heavy/room_echo",
    "client_heavy/floor",
    "balanced/room+loss5",
    "client_heavy/clean+outage",
)
PLAIN = [name for name in FIXTURES if "+loss5" not in name]
SHARE_PP = 2.0
SHARE_LOSS_PP = 3.0
OVERLAP = 0.25
TURNS = 1
ECHO_OVERLAP_PER_MINUTE = 0.3
SPEECH_GUARD = 0.10
GAP_GUARD_SECONDS = 0.150


@pytest.fixture(scope="module")
def runs(corpus: Corpus) -> dict[str, WhipRun]:
    fixtures = [corpus.fixture(name) for name in FIXTURES]
    done = asyncio.run(run_fixtures(fixtures))
    print("\n" + table([run.score for run in done]))
    return {run.score.name: run for run in done}


@pytest.mark.parametrize("name", FIXTURES)
def test_talk_share(runs: dict[str, WhipRun], name: str) -> None:
    tolerance = SHARE_LOSS_PP if "+loss5" in name else SHARE_PP
    assert abs(runs[name].score.talk_share_error_pp) <= tolerance, runs[name].score


@pytest.mark.parametrize("name", PLAIN)
def test_overlap(runs: dict[str, WhipRun], name: str) -> None:
    score = runs[name].score
    assert abs(score.overlap_error) <= OVERLAP, (score.measured.overlap_seconds, score)


@pytest.mark.parametrize("name", PLAIN)
def test_turn_counts(runs: dict[str, WhipRun], name: str) -> None:
    score = runs[name].score
    for role in ROLES:
        error = score.measured.turn_count[role] - score.truth_turn_count[role]
        assert abs(error) <= TURNS, (role, score.measured.turn_count, score.truth_turn_count)


def test_residual_echo_adds_little_overlap(runs: dict[str, WhipRun]) -> None:
    """The same dialogue with the other side's echo at −35 to −25 dB in each leg."""
    clean, echo = runs["therapist_heavy/clean"].score, runs["therapist_heavy/echo"].score
    added = (echo.measured.overlap_seconds - clean.measured.overlap_seconds) / (echo.seconds / 60)
    assert added < ECHO_OVERLAP_PER_MINUTE


@pytest.mark.parametrize("name", PLAIN)
def test_speech_seconds_guard(runs: dict[str, WhipRun], name: str) -> None:
    score = runs[name].score
    for role in ROLES:
        assert abs(score.speech_error(role)) <= SPEECH_GUARD, (role, score)


@pytest.mark.parametrize("name", PLAIN)
def test_response_gap_median_guard(runs: dict[str, WhipRun], name: str) -> None:
    score = runs[name].score
    for role in ROLES:
        measured, true = score.measured.response_gaps[role], score.truth_median_gap_seconds[role]
        assert measured is not None and true is not None
        assert abs(measured.median_seconds - true) <= GAP_GUARD_SECONDS, (role, score)


def test_loss_was_applied_and_the_outage_in_speech_counted(runs: dict[str, WhipRun]) -> None:
    lossy = runs["balanced/room+loss5"]
    packets = round(lossy.score.seconds / 0.02)
    assert 0.03 * packets <= lossy.dropped_packets <= 0.07 * packets
    outage = runs["client_heavy/clean+outage"].roles["client"]
    # One outage inside the client's speech, one in a silence: the first is "in speech", the
    # second is a dropout but not in speech (a stall on a slow runner may add a dropout).
    assert outage.dropouts_in_speech >= 1, outage
    assert outage.dropouts >= 2 and outage.dropouts_in_speech < outage.dropouts, outage
