"""The offline baseline issue 13 starts from: qualmon's speech path on the realistic corpus.

Every corpus fixture's 16 kHz legs go through VadFramer (webrtcvad mode 2) and the
SpeechSegmenter with the defaults, no WHIP, no Opus; the table (frame precision/recall/F1
per role, speech-seconds error, talk-share error, overlap, turns, response-gap medians) is
printed, not asserted: it is where the classifier stands today. `pytest -s` shows it, as
does `make corpus`.
"""

from __future__ import annotations

from qualmon.sim.corpus_fixtures import Corpus, fixture_names
from qualmon.sim.dialogue import ROLES
from qualmon.sim.speech_score import score, table


def test_offline_baseline_on_the_corpus(corpus: Corpus) -> None:
    scores = [score(corpus.render(name)) for name in fixture_names()]
    print("\noffline speech path on the realistic corpus (webrtcvad mode 2, default smoothing)")
    print(table(scores))
    for s in scores:
        for role in ROLES:
            assert 0.0 <= s.segments[role].f1 <= 1.0
            assert s.segments[role].true_positive > 0, f"{s.name}: no speech found for {role}"
