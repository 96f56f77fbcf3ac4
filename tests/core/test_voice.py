"""The voice classifier on hand-made frames: what counts as voice, what waits, what is echo."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from qualmon.core.voice import NO_LEVEL_DBFS, EchoReference, VoiceClassifier, VoiceParams

F = 0.02
P = VoiceParams()
FLOOR = -70.0
SPEECH = -25.0


class Sink:
    """Records decided frames in the order they arrive."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, float, bool]] = []
        self.levels: list[tuple[float, float]] = []

    def add_frame(self, start: float, seconds: float, is_speech: bool) -> None:
        self.frames.append((start, seconds, is_speech))

    def add_level(self, at: float, rms: float) -> None:
        self.levels.append((at, rms))

    def speech_indexes(self) -> list[int]:
        return [round(start / F) for start, _, speech in self.frames if speech]


def feed(voice: VoiceClassifier, script: str, *, first: int = 0) -> None:
    """One character per 20 ms frame from frame `first`:
    '.' silence at the floor; 'v' voiced speech; 'b' a breath (webrtcvad speech, loud, but
    its energy above 1 kHz); 's' an "s" (webrtcvad speech with sound, not voiced);
    'q' webrtcvad speech on the bare floor (its own hangover); 'e' faint voiced speech."""
    for offset, ch in enumerate(script):
        at = (first + offset) * F
        if ch == ".":
            voice.add_frame(at, F, False, FLOOR, None)
        elif ch == "v":
            voice.add_frame(at, F, True, SPEECH, 0.95)
        elif ch == "b":
            voice.add_frame(at, F, True, SPEECH - 5, 0.2)
        elif ch == "s":
            voice.add_frame(at, F, True, SPEECH - 10, 0.1)
        elif ch == "q":
            voice.add_frame(at, F, True, FLOOR, 0.9)
        elif ch == "e":
            voice.add_frame(at, F, True, SPEECH - 30, 0.95)


def classifier(**params: float) -> tuple[VoiceClassifier, Sink]:
    sink = Sink()
    voice = VoiceClassifier(sink, params=VoiceParams(**params))  # type: ignore[arg-type]
    feed(voice, "." * 200)  # a known floor and, with the speech below, a speech level
    feed(voice, "v" * 60 + "." * 20, first=200)
    sink.frames.clear()
    return voice, sink


def test_frames_without_features_pass_as_decided() -> None:
    sink = Sink()
    voice = VoiceClassifier(sink)
    for i, speech in enumerate([True, True, False, True, False]):
        voice.add_frame(i * F, F, speech)
    voice.flush()
    assert [s for _, _, s in sink.frames] == [True, True, False, True, False]


def test_a_breath_is_not_speech() -> None:
    voice, sink = classifier()
    feed(voice, "bbbbbbbbbb" + "....", first=300)
    voice.flush()
    assert sink.speech_indexes() == []
    assert len(sink.frames) == 14


def test_voice_keeps_sound_around_its_voiced_frames() -> None:
    """Pre frames before the first voiced frame and post frames after the last, while they
    have sound; webrtcvad's hangover over the bare floor is not speech."""
    voice, sink = classifier()
    # 10 's' (only the last pre_frames can belong to the word), 5 voiced, 3 's', 4 'q'.
    feed(voice, "ssssssssss" + "vvvvv" + "sss" + "qqqq" + "....", first=300)
    voice.flush()
    first_voiced = 310
    expected = list(range(first_voiced - P.pre_frames, first_voiced + 5 + 3))
    assert sink.speech_indexes() == expected


def test_post_frames_are_bounded() -> None:
    voice, sink = classifier()
    feed(voice, "vvv" + "s" * 12 + "....", first=300)
    voice.flush()
    assert sink.speech_indexes() == list(range(300, 303 + P.post_frames))


def test_unvoiced_frames_between_voiced_ones_are_speech_up_to_the_bridge() -> None:
    voice, sink = classifier()
    short = "s" * P.bridge_frames
    feed(voice, "vvv" + short + "vvv" + "....", first=300)
    voice.flush()
    assert sink.speech_indexes() == list(range(300, 300 + 6 + P.bridge_frames))


def test_a_front_vowel_counts_by_its_pitch() -> None:
    """Energy split around a 2 kHz formant (60 % below 1 kHz): voice if periodic, else not."""
    voice, sink = classifier()
    for i in range(300, 310):
        voice.add_frame(i * F, F, True, SPEECH, 0.6, 0.7)
    for i in range(310, 320):
        voice.add_frame(i * F, F, False, FLOOR)
    for i in range(320, 330):
        voice.add_frame(i * F, F, True, SPEECH, 0.6, 0.1)
    voice.flush()
    assert sink.speech_indexes() == list(range(300, 310))


def test_faint_frames_far_under_the_speakers_level_are_not_voice() -> None:
    voice, sink = classifier()
    feed(voice, "eeeeeeee" + "....", first=300)
    voice.flush()
    assert sink.speech_indexes() == []


def test_frames_near_the_floor_are_not_voice() -> None:
    sink = Sink()
    voice = VoiceClassifier(sink)
    for i in range(200):
        voice.add_frame(i * F, F, False, -40.0, None)
    for i in range(200, 210):
        voice.add_frame(i * F, F, True, -40.0 + P.floor_margin_db - 1, 0.95)
    voice.flush()
    assert not any(s for _, _, s in sink.frames)


def echo_pair(echo_below_db: float) -> tuple[Sink, Sink]:
    """The therapist speaks; the client's leg carries a copy `echo_below_db` under it,
    100 ms later (as a residual echo or, at 12 dB, a quieter speaker talking over)."""
    reference = EchoReference()
    sinks = {role: Sink() for role in ("therapist", "client")}
    voices = {
        role: VoiceClassifier(sinks[role], role=role, reference=reference)
        for role in ("therapist", "client")
    }
    for i in range(400):
        talking = 200 <= i < 300
        voices["therapist"].add_frame(
            i * F, F, talking, SPEECH if talking else FLOOR, 0.95 if talking else None
        )
        echoing = 205 <= i < 305
        voices["client"].add_frame(
            i * F,
            F,
            echoing,
            SPEECH - echo_below_db if echoing else FLOOR - 10,
            0.95 if echoing else None,
        )
    for voice in voices.values():
        voice.flush()
    return sinks["therapist"], sinks["client"]


def test_residual_echo_is_not_the_clients_speech() -> None:
    therapist, client = echo_pair(echo_below_db=30.0)
    assert len(therapist.speech_indexes()) == 100
    assert client.speech_indexes() == []


def test_a_quieter_speaker_talking_over_is_speech() -> None:
    therapist, client = echo_pair(echo_below_db=12.0)
    assert len(therapist.speech_indexes()) == 100
    assert client.speech_indexes() == list(range(205, 305))


def test_echo_reference_looks_only_at_other_roles_in_the_window() -> None:
    reference = EchoReference()
    assert reference.loudest_other("client", 0.0, 1.0) == NO_LEVEL_DBFS
    reference.record("client", 0.5, -10.0)
    reference.record("therapist", 0.2, -30.0)
    reference.record("therapist", 0.5, -20.0)
    reference.record("therapist", 0.9, -5.0)
    assert reference.loudest_other("client", 0.3, 0.6) == -20.0
    assert reference.loudest_other("therapist", 0.0, 1.0) == -10.0


FRAMES = st.lists(
    st.tuples(
        st.booleans(),
        st.one_of(st.none(), st.floats(-120.0, 0.0)),
        st.one_of(st.none(), st.floats(0.0, 1.0)),
        st.one_of(st.none(), st.floats(0.0, 1.0)),
        st.sampled_from([0, 0, 0, 0, 3]),  # sometimes a gap of missing audio first
    ),
    max_size=400,
)


@given(frames=FRAMES)
def test_every_frame_is_decided_once_in_order_and_only_vad_speech_can_be_voice(
    frames: list[tuple[bool, float | None, float | None, float | None, int]],
) -> None:
    sink = Sink()
    voice = VoiceClassifier(sink)
    index, vad_speech = 0, set()
    held_most = 0
    for fed, (speech, level, low_band, pitch, gap) in enumerate(frames, start=1):
        index += gap
        voice.add_frame(index * F, F, speech, level, low_band, pitch)
        if speech:
            vad_speech.add(index)
        held_most = max(held_most, fed - len(sink.frames))
        index += 1
    voice.flush()
    starts = [round(start / F) for start, _, _ in sink.frames]
    assert starts == sorted(set(starts)) and len(starts) == len(frames)
    assert set(sink.speech_indexes()) <= vad_speech
    # Decisions wait at most bridge_frames behind the audio.
    assert held_most <= max(P.bridge_frames, P.pre_frames)
