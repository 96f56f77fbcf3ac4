"""The audio path on real decoded Opus: frames → 16 kHz → webrtcvad → segments."""

from __future__ import annotations

import pytest
from aiortc.codecs.opus import OpusDecoder
from aiortc.jitterbuffer import JitterFrame

from qualmon.core.speech import SpeechSegmenter
from qualmon.media.speech import SpeechPipeline
from qualmon.sim.dialogue import load_fixture

PTS_PER_PACKET = 960


def decoded_frames(packets: list[bytes], *, skip: range = range(0)) -> list:
    """Decode as aiortc does (its pts start at 0 and count samples); `skip` loses packets."""
    decoder = OpusDecoder()
    frames = []
    for i, packet in enumerate(packets):
        if i in skip:
            continue
        frames += decoder.decode(JitterFrame(data=packet, timestamp=i * PTS_PER_PACKET))
    return frames


@pytest.fixture(scope="module")
def fixture():  # type: ignore[no-untyped-def]
    return load_fixture("balanced")


def run(frames: list, segmenter: SpeechSegmenter) -> SpeechPipeline:
    pipeline = SpeechPipeline(segmenter=segmenter, session_time_of=lambda pts: pts / 48000)
    for frame in frames:
        pipeline.process(frame)
    return pipeline


def test_segments_follow_the_script(fixture) -> None:  # type: ignore[no-untyped-def]
    """Every scripted client utterance is found, starts within 60 ms, ends within 100 ms."""
    segmenter = SpeechSegmenter()
    pipeline = run(decoded_frames(fixture.packets["client"]), segmenter)
    truth = fixture.speech_segments_seconds["client"]
    found = segmenter.all_segments()
    assert len(found) == len(truth), (found, truth)
    for seg, (start, end) in zip(found, truth, strict=True):
        assert seg.start == pytest.approx(start, abs=0.06)
        assert seg.end == pytest.approx(end, abs=0.10)
    assert pipeline.frames_classified >= int(fixture.seconds / 0.02) - 20


def test_lost_packets_restart_the_framing_on_time(fixture) -> None:  # type: ignore[no-untyped-def]
    """A gap in the frames does not shift later audio: times come from pts, not counts."""
    whole, gapped = SpeechSegmenter(), SpeechSegmenter()
    packets = fixture.packets["client"]
    run(decoded_frames(packets), whole)
    run(decoded_frames(packets, skip=range(1000, 1025)), gapped)  # 20.0–20.5 s
    late_whole = [s for s in whole.all_segments() if s.start > 25]
    late_gapped = [s for s in gapped.all_segments() if s.start > 25]
    assert [round(s.start, 2) for s in late_gapped] == [round(s.start, 2) for s in late_whole]


def test_close_drops_audio_and_native_objects(fixture) -> None:  # type: ignore[no-untyped-def]
    """After close nothing of the audio is held and further frames are ignored."""
    segmenter = SpeechSegmenter()
    frames = decoded_frames(fixture.packets["client"][:60])
    pipeline = run(frames[:55], segmenter)
    pipeline.close()
    assert not pipeline._batch and not pipeline._pcm and not pipeline._level_chunks
    assert pipeline._resampler is None
    before = pipeline.frames_classified
    pipeline.process(frames[55])
    assert pipeline.frames_classified == before


def test_vad_mode_is_checked() -> None:
    with pytest.raises(ValueError):
        SpeechPipeline(segmenter=SpeechSegmenter(), session_time_of=lambda pts: 0.0, vad_mode=7)
