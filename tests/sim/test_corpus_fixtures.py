"""Corpus fixtures for publishing: Opus packets per leg, cached, and publish-time impairments."""

from __future__ import annotations

from typing import Any

import av
import numpy as np
import pytest

from qualmon.media.opus import OpusDecoder16k
from qualmon.sim import corpus_fixtures
from qualmon.sim.corpus import intersection_seconds
from qualmon.sim.corpus_fixtures import IMPAIRED_ROLE, Corpus, fixture_names
from qualmon.sim.dialogue import ROLES
from qualmon.sim.phrases import RATE
from qualmon.sim.rooms import level_dbfs, mask

OPUS_LAG = 104  # libopus lookahead at 16 kHz: 6.5 ms


def test_names_cover_every_dialogue_variant_and_impairment() -> None:
    names = fixture_names()
    assert len(names) == 15 and "balanced/floor" in names
    with_impairments = fixture_names(with_impairments=True)
    assert len(with_impairments) == 45
    assert {"balanced/room+loss5", "balanced/room+outage"} <= set(with_impairments)


def test_unknown_names_are_refused(corpus: Corpus) -> None:
    with pytest.raises(ValueError):
        corpus.render("balanced/underwater")
    with pytest.raises(ValueError):
        corpus.fixture("balanced/room+earthquake")


NAME = "balanced/floor"  # one fixture encoded for all tests here (about 1 s a leg)


def test_fixture_packets_replay_the_leg(corpus: Corpus) -> None:
    """One 20 ms packet per 20 ms of track per role; libopus gives the 16 kHz leg back."""
    fixture = corpus.fixture(NAME + "+outage")
    assert set(fixture.impairments) == {IMPAIRED_ROLE}
    assert fixture.impairments[IMPAIRED_ROLE].outages
    count = round(fixture.seconds / 0.020)
    for role in ROLES:
        assert len(fixture.packets[role]) == count
        assert all(fixture.packets[role])
    rendered = corpus.render(NAME)
    decoder = OpusDecoder16k()
    try:
        role = rendered.truth.quieter
        pcm = b"".join(decoder.decode(p) for p in fixture.packets[role])
    finally:
        decoder.close()
    decoded = np.frombuffer(pcm, dtype=np.int16)[OPUS_LAG:] / 32768
    leg = rendered.legs[role].mix[: len(decoded)]
    speech = mask(rendered.truth.speech[role], len(decoded))
    assert level_dbfs(decoded, speech) == pytest.approx(level_dbfs(leg, speech), abs=1.0)
    assert np.corrcoef(decoded[speech], leg[speech])[0, 1] > 0.9


def test_packets_are_cached_by_content(corpus: Corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    first = corpus.fixture(NAME)

    def refuse(*args: Any, **kwargs: Any) -> list[bytes]:
        raise AssertionError("encoded again")

    monkeypatch.setattr(corpus_fixtures, "encode_opus", refuse)
    again = Corpus(corpus.root, voices=corpus.voices).fixture(NAME)
    assert again.packets == first.packets


def test_outages_fall_in_the_clients_speech_and_in_a_silence(corpus: Corpus) -> None:
    truth = corpus.truth("therapist_heavy")
    impairment = corpus_fixtures.impairment_for(truth, "outage")
    speech = truth.speech
    (a, da), (b, db) = impairment.outages
    outages = {"speech": (a, a + da), "silence": (b, b + db)}
    if intersection_seconds([outages["speech"]], speech[IMPAIRED_ROLE]) == 0:
        outages = {"speech": (b, b + db), "silence": (a, a + da)}
    start, end = outages["speech"]
    assert intersection_seconds([outages["speech"]], speech[IMPAIRED_ROLE]) == pytest.approx(
        end - start
    )
    for r in ROLES:
        assert intersection_seconds([outages["silence"]], speech[r]) == 0
    loss = corpus_fixtures.impairment_for(truth, "loss5")
    assert loss.loss_ratio == 0.05 and loss.seed is not None


def test_libopus_takes_16_khz() -> None:
    """The corpus encodes its 16 kHz legs directly; 48 kHz stays the default."""
    from qualmon.sim.audio import encode_opus

    pcm = (np.sin(np.arange(RATE) * 2 * np.pi * 440 / RATE) * 8000).astype(np.int16)
    packets = encode_opus(pcm, sample_rate=RATE)
    assert len(packets) in (50, 51)
    codec = av.CodecContext.create("libopus", "r")
    assert codec is not None
    with pytest.raises(ValueError):
        encode_opus(pcm, sample_rate=44100)
