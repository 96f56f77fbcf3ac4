"""The audio paths on real Opus: packets (libopus at 16 kHz) or aiortc frames → VAD → segments."""

from __future__ import annotations

import numpy as np
import pytest
from aiortc.codecs.opus import OpusDecoder
from aiortc.jitterbuffer import JitterFrame

from qualmon.core.speech import SpeechSegmenter
from qualmon.core.voice import VoiceClassifier
from qualmon.media.speech import (
    VAD_FRAME_SAMPLES,
    VAD_RATE,
    OpusPacketSpeech,
    SpeechPipeline,
    low_band_ratio,
    periodicity,
)
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
    """The frame path into `segmenter` through the voice classifier, as a leg wires it."""
    voice = VoiceClassifier(segmenter)
    pipeline = SpeechPipeline(sink=voice, session_time_of=lambda pts: pts / 48000)
    for frame in frames:
        pipeline.process(frame)
    voice.flush()
    return pipeline


def assert_follows_script(
    segmenter: SpeechSegmenter, truth: tuple[tuple[float, float], ...]
) -> None:
    """Every scripted utterance found: its first segment starts within 60 ms of it, its last
    ends within 100 ms; no segment outside an utterance. An utterance may be several segments:
    speech seconds count voiced time, and espeak's comma pauses (≥ 300 ms) are not speech."""
    found = segmenter.all_segments()
    for start, end in truth:
        inside = [s for s in found if s.end > start - 0.1 and s.start < end + 0.1]
        assert inside, f"utterance {start:.2f}–{end:.2f} not found"
        assert inside[0].start == pytest.approx(start, abs=0.06)
        assert inside[-1].end == pytest.approx(end, abs=0.10)
    for seg in found:
        assert any(start - 0.1 < seg.start and seg.end < end + 0.1 for start, end in truth), seg


def test_segments_follow_the_script(fixture) -> None:  # type: ignore[no-untyped-def]
    """Every scripted client utterance is found, starts within 60 ms, ends within 100 ms."""
    segmenter = SpeechSegmenter()
    pipeline = run(decoded_frames(fixture.packets["client"]), segmenter)
    assert_follows_script(segmenter, fixture.speech_segments_seconds["client"])
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
    assert not pipeline._batch and not pipeline._framer.holds_audio
    assert pipeline._resampler is None
    before = pipeline.frames_classified
    pipeline.process(frames[55])
    assert pipeline.frames_classified == before


def test_vad_mode_is_checked() -> None:
    with pytest.raises(ValueError):
        SpeechPipeline(sink=SpeechSegmenter(), session_time_of=lambda pts: 0.0, vad_mode=7)


# -- Opus payloads decoded by libopus at 16 kHz (the path WHIP legs use) ---------------

SSRC = 0x1234


def feed_packets(
    packets: list[bytes],
    segmenter: SpeechSegmenter,
    *,
    order: list[int] | None = None,
    first_seq: int = 65000,
    first_ts: int = 4_294_000_000,
) -> OpusPacketSpeech:
    """RTP numbering that wraps (sequence and timestamp) early on; time = RTP time; through
    the voice classifier into `segmenter`."""
    voice = VoiceClassifier(segmenter)
    speech = OpusPacketSpeech(
        sink=voice,
        session_time_of=lambda ts: ((ts - first_ts) % (1 << 32)) / 48000,
    )
    for i in order if order is not None else range(len(packets)):
        speech.on_packet(
            ssrc=SSRC,
            sequence_number=(first_seq + i) & 0xFFFF,
            rtp_timestamp=(first_ts + i * PTS_PER_PACKET) & 0xFFFFFFFF,
            payload=packets[i],
        )
    voice.flush()
    return speech


def test_packet_path_segments_follow_the_script(fixture) -> None:  # type: ignore[no-untyped-def]
    """Every scripted client utterance is found, starts within 60 ms, ends within 100 ms."""
    segmenter = SpeechSegmenter()
    speech = feed_packets(fixture.packets["client"], segmenter)
    assert_follows_script(segmenter, fixture.speech_segments_seconds["client"])
    assert speech.frames_classified == len(fixture.packets["client"])
    assert speech.decode_errors == 0


def test_packet_path_agrees_with_the_frame_path(fixture) -> None:  # type: ignore[no-untyped-def]
    """libopus at 16 kHz and aiortc's 48 kHz frames + resampler give the same speech (±2 %)."""
    by_packets, by_frames = SpeechSegmenter(), SpeechSegmenter()
    feed_packets(fixture.packets["therapist"], by_packets)
    run(decoded_frames(fixture.packets["therapist"]), by_frames)
    assert by_packets.speech_seconds() == pytest.approx(by_frames.speech_seconds(), rel=0.02)


def test_packet_path_lost_late_and_duplicate_packets(fixture) -> None:  # type: ignore[no-untyped-def]
    """Lost packets leave their time unclassified; late and repeated ones are skipped."""
    packets = fixture.packets["client"]
    whole, gapped = SpeechSegmenter(), SpeechSegmenter()
    feed_packets(packets, whole)
    order = [i for i in range(len(packets)) if not 1000 <= i < 1025]  # 20.0–20.5 s lost
    order[1500:1500] = [order[1497], order[1498]]  # late (their time has passed)
    order[1700:1700] = [order[1699]]  # a duplicate
    speech = feed_packets(packets, gapped, order=order)
    assert speech.frames_classified == len(packets) - 25
    late_whole = [round(s.start, 2) for s in whole.all_segments() if s.start > 25]
    late_gapped = [round(s.start, 2) for s in gapped.all_segments() if s.start > 25]
    assert late_gapped == late_whole


def test_packet_path_new_ssrc_restarts_the_stream(fixture) -> None:  # type: ignore[no-untyped-def]
    """A publisher restart (new SSRC, numbering anywhere) is decoded, not taken as late."""
    packets = fixture.packets["client"][:500]
    segmenter = SpeechSegmenter()
    speech = feed_packets(packets[:250], segmenter)
    for i, payload in enumerate(packets[250:]):
        speech.on_packet(
            ssrc=SSRC + 1,
            sequence_number=10 + i,
            rtp_timestamp=250 * 960 + i * 960,
            payload=payload,
        )
    assert speech.frames_classified == 500


def test_packet_path_close_drops_audio(fixture) -> None:  # type: ignore[no-untyped-def]
    segmenter = SpeechSegmenter()
    speech = feed_packets(fixture.packets["client"][:55], segmenter)
    speech.close()
    assert not speech._framer.holds_audio and speech._decoder is None
    before = speech.frames_classified
    speech.on_packet(ssrc=SSRC, sequence_number=1, rtp_timestamp=0, payload=b"\xfc\xff\xfe")
    assert speech.frames_classified == before


def test_corrupt_payload_is_counted_not_raised() -> None:
    speech = OpusPacketSpeech(sink=SpeechSegmenter(), session_time_of=lambda ts: 0.0)
    speech.on_packet(ssrc=SSRC, sequence_number=1, rtp_timestamp=0, payload=b"\xff\xff\xff")
    assert speech.decode_errors == 1 and speech.frames_classified == 0


def test_packet_path_follows_the_session_clock_as_it_drifts(fixture) -> None:  # type: ignore[no-untyped-def]
    """Contiguous packets are timed by counting but re-anchored about every second, so a
    session clock that drifts from RTP time (skew, here an exaggerated 1 %) is followed."""
    packets = fixture.packets["client"]
    reference, skewed = SpeechSegmenter(), SpeechSegmenter()
    feed_packets(packets, reference)
    first_ts = 4_294_000_000
    voice = VoiceClassifier(skewed)
    speech = OpusPacketSpeech(
        sink=voice,
        session_time_of=lambda ts: ((ts - first_ts) % (1 << 32)) / 48000 * 1.01,
    )
    for i, payload in enumerate(packets):
        speech.on_packet(
            ssrc=SSRC,
            sequence_number=(65000 + i) & 0xFFFF,
            rtp_timestamp=(first_ts + i * PTS_PER_PACKET) & 0xFFFFFFFF,
            payload=payload,
        )
    voice.flush()
    pairs = list(zip(reference.all_segments(), skewed.all_segments(), strict=True))
    assert pairs and pairs[-1][0].start > 30
    for ref, seg in pairs:
        # Counting alone would be 0.3–0.45 s early by the end; re-anchored, within 30 ms.
        assert seg.start == pytest.approx(ref.start * 1.01, abs=0.03), (ref, seg)


def test_voice_features_of_a_tone_and_of_noise() -> None:
    """A 200 Hz tone: all its energy below 1 kHz and periodic; white noise: neither."""
    t = np.arange(VAD_FRAME_SAMPLES) / VAD_RATE
    tone = (8000 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    noise = np.random.default_rng(3).normal(0, 3000, VAD_FRAME_SAMPLES).astype(np.float32)
    assert low_band_ratio(tone) > 0.95 and periodicity(tone) > 0.7
    assert low_band_ratio(noise) < 0.2 and periodicity(noise) < 0.3
    high = (8000 * np.sin(2 * np.pi * 2500 * t)).astype(np.float32)
    assert low_band_ratio(high) < 0.05
