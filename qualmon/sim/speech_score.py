"""qualmon's speech path run offline over a corpus dialogue, and scored against its truth.

The legs' 16 kHz audio goes through the same `VadFramer` (webrtcvad), `VoiceClassifier` and
`SpeechSegmenter` a WHIP leg uses, both legs 20 ms at a time on a shared clock, and
`compute_turns` makes the talk-turn measures; no network, no Opus, no real time. Frames are
20 ms: a frame is true speech when at least half of it lies inside the truth's phrase-level
speech, and measured speech when at least half lies inside a segment (or, for the raw
column, when webrtcvad said so).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..core.speech import Segment, SpeechParams, SpeechSegmenter
from ..core.turns import TurnStats, compute_turns
from ..core.voice import EchoReference, VoiceClassifier, VoiceParams
from ..media.speech import VAD_FRAME_SECONDS, VAD_RATE, VadFramer
from .corpus import DialogueTruth, Span
from .dialogue import ROLES
from .rooms import RenderedDialogue

FRAME_SAMPLES = round(VAD_RATE * VAD_FRAME_SECONDS)


@dataclass(frozen=True)
class FrameScore:
    """Speech frames found against speech frames true (20 ms frames)."""

    true_positive: int
    false_positive: int
    false_negative: int

    @property
    def precision(self) -> float:
        found = self.true_positive + self.false_positive
        return self.true_positive / found if found else 1.0

    @property
    def recall(self) -> float:
        true = self.true_positive + self.false_negative
        return self.true_positive / true if true else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class SpeechScore:
    """One rendered dialogue through the offline speech path, against its truth."""

    name: str
    seconds: float
    "The dialogue's length."
    segments: dict[str, FrameScore]
    "Per role: frames inside the segmenter's segments (what talk share is made of)."
    vad: dict[str, FrameScore]
    "Per role: webrtcvad's own 20 ms decisions, before the voice classifier (offline only)."
    measured: TurnStats
    truth_speech_seconds: dict[str, float]
    truth_talk_share: dict[str, float]
    truth_overlap_seconds: float
    truth_turn_count: dict[str, int]
    truth_median_gap_seconds: dict[str, float | None]

    @property
    def talk_share_error_pp(self) -> float:
        """Measured minus true share of the first role, in percentage points."""
        role = ROLES[0]
        return 100 * (self.measured.talk_share.get(role, 0.0) - self.truth_talk_share[role])

    @property
    def overlap_error(self) -> float:
        """(measured − true) / true overlap seconds."""
        return self.measured.overlap_seconds / self.truth_overlap_seconds - 1

    def speech_error(self, role: str) -> float:
        return self.measured.speech_seconds[role] / self.truth_speech_seconds[role] - 1


class _Recorder:
    """A VoiceSink that keeps webrtcvad's decisions and passes frames on to the classifier."""

    def __init__(self, voice: VoiceClassifier) -> None:
        self.voice = voice
        self.decisions: list[bool] = []

    def add_frame(
        self,
        start: float,
        seconds: float,
        is_speech: bool,
        level_dbfs: float | None = None,
        low_band_ratio: float | None = None,
        periodicity: float | None = None,
    ) -> None:
        self.decisions.append(is_speech)
        self.voice.add_frame(start, seconds, is_speech, level_dbfs, low_band_ratio, periodicity)

    def add_level(self, at: float, rms: float) -> None:
        self.voice.add_level(at, rms)


def run_speech_path(
    legs: Mapping[str, npt.NDArray[np.int16]],
    *,
    vad_mode: int = 3,
    params: SpeechParams | None = None,
    voice_params: VoiceParams | None = None,
) -> dict[str, tuple[list[Segment], list[bool]]]:
    """Each leg's segments and raw VAD decisions, the legs fed 20 ms at a time in turn from
    session time 0 (so each leg's echo test sees the other's levels, as in a live session)."""
    reference = EchoReference()
    segmenters = {role: SpeechSegmenter(params) for role in legs}
    recorders = {
        role: _Recorder(
            VoiceClassifier(segmenters[role], role=role, reference=reference, params=voice_params)
        )
        for role in legs
    }
    framers = {role: VadFramer(recorders[role], vad_mode) for role in legs}
    data = {role: pcm.astype("<i2").tobytes() for role, pcm in legs.items()}
    step = FRAME_SAMPLES * 2
    for index in range(max(len(d) for d in data.values()) // step):
        for role, framer in framers.items():
            chunk = data[role][index * step : (index + 1) * step]
            if len(chunk) == step:
                framer.feed(chunk, index * VAD_FRAME_SECONDS)
    results = {}
    for role in legs:
        framers[role].close()
        recorders[role].voice.flush()
        results[role] = (segmenters[role].all_segments(), recorders[role].decisions)
    return results


def frame_mask(spans: Iterable[tuple[float, float]], frames: int) -> npt.NDArray[np.bool_]:
    """Frames at least half inside the spans."""
    covered = np.zeros(frames)
    for start, end in spans:
        a, b = start / VAD_FRAME_SECONDS, end / VAD_FRAME_SECONDS
        first, last = int(np.floor(a)), min(int(np.ceil(b)), frames)
        for i in range(max(0, first), last):
            covered[i] += max(0.0, min(b, i + 1) - max(a, i))
    return covered >= 0.5


def frame_score(found: npt.NDArray[np.bool_], true: npt.NDArray[np.bool_]) -> FrameScore:
    return FrameScore(
        int(np.sum(found & true)), int(np.sum(found & ~true)), int(np.sum(~found & true))
    )


def score(
    rendered: RenderedDialogue,
    *,
    vad_mode: int = 3,
    params: SpeechParams | None = None,
    voice_params: VoiceParams | None = None,
) -> SpeechScore:
    """Run both legs through the speech path and compare with the truth."""
    paths = run_speech_path(
        {role: rendered.legs[role].pcm16() for role in ROLES},
        vad_mode=vad_mode,
        params=params,
        voice_params=voice_params,
    )
    return score_segments(
        rendered.name,
        rendered.truth,
        {role: found for role, (found, _) in paths.items()},
        vad={role: decisions for role, (_, decisions) in paths.items()},
    )


def score_segments(
    name: str,
    truth: DialogueTruth,
    segments: Mapping[str, list[Segment]],
    *,
    vad: Mapping[str, Sequence[bool]] | None = None,
) -> SpeechScore:
    """Segments found (on the truth's timeline, 0 = the dialogue's start) against the truth;
    `vad`, webrtcvad's raw decisions per role where known (offline), scored too."""
    frames = round(truth.seconds / VAD_FRAME_SECONDS)
    seg_scores: dict[str, FrameScore] = {}
    vad_scores: dict[str, FrameScore] = {}
    for role in ROLES:
        true = frame_mask(truth.speech[role], frames)
        seg_scores[role] = frame_score(frame_mask(_spans(segments[role]), frames), true)
        if vad is not None:
            decisions = np.zeros(frames, dtype=bool)
            known = np.array(vad[role][:frames], dtype=bool)
            decisions[: len(known)] = known
            vad_scores[role] = frame_score(decisions, true)
    return SpeechScore(
        name=name,
        seconds=truth.seconds,
        segments=seg_scores,
        vad=vad_scores,
        measured=compute_turns(dict(segments), roles=ROLES, span=(0.0, truth.seconds)),
        truth_speech_seconds=truth.speech_seconds,
        truth_talk_share=truth.talk_share,
        truth_overlap_seconds=truth.overlap_seconds,
        truth_turn_count=truth.turn_count,
        truth_median_gap_seconds=truth.median_gap_seconds,
    )


def _spans(segments: Sequence[Segment]) -> list[Span]:
    return [(s.start, s.end) for s in segments]


def _vad_f1(score: SpeechScore) -> str:
    if not score.vad:
        return "–"
    return "/".join(f"{score.vad[role].f1:4.2f}" for role in ROLES)


def _gap_error_ms(score: SpeechScore, role: str) -> str:
    measured = score.measured.response_gaps[role]
    true = score.truth_median_gap_seconds[role]
    if measured is None or true is None:
        return "–"
    return f"{1000 * (measured.median_seconds - true):+.0f}"


def table(scores: Sequence[SpeechScore]) -> str:
    """One line per fixture: the numbers issue 13 is measured by (each cell: first role /
    second role; share pp: the first role's measured minus true share; turns: measured (true))."""
    lines = [
        "each cell: " + " / ".join(ROLES),
        f"{'fixture':26} {'precision':>9} {'recall':>9} {'F1':>9} {'vad F1':>9}"
        f" {'speech err %':>13} {'share pp':>8} {'overlap s':>11} {'ovl err':>7}"
        f" {'turns':>11} {'gap err ms':>11}",
    ]
    for s in scores:
        t, c = (s.segments[r] for r in ROLES)
        m = s.measured
        turns = "/".join(str(m.turn_count[r]) for r in ROLES)
        true_turns = "/".join(str(s.truth_turn_count[r]) for r in ROLES)
        lines.append(
            f"{s.name:26} {t.precision:4.2f}/{c.precision:4.2f} {t.recall:4.2f}/{c.recall:4.2f}"
            f" {t.f1:4.2f}/{c.f1:4.2f} {_vad_f1(s):>9}"
            f" {100 * s.speech_error(ROLES[0]):+6.1f}/{100 * s.speech_error(ROLES[1]):+6.1f}"
            f" {s.talk_share_error_pp:+8.1f}"
            f" {m.overlap_seconds:5.2f}/{s.truth_overlap_seconds:5.2f}"
            f" {100 * s.overlap_error:+6.0f}%"
            f" {turns + ' (' + true_turns + ')':>11}"
            f" {_gap_error_ms(s, ROLES[0]) + '/' + _gap_error_ms(s, ROLES[1]):>11}"
        )
    return "\n".join(lines)


def echo_overlap_per_minute(scores: Sequence[SpeechScore]) -> dict[str, float]:
    """Per dialogue with both a clean and an echo fixture: the overlap the echo adds, s/min."""
    by_name = {s.name: s for s in scores}
    added = {}
    for name, s in by_name.items():
        dialogue, _, variant = name.partition("/")
        clean = by_name.get(f"{dialogue}/clean")
        if variant == "echo" and clean is not None:
            minutes = s.seconds / 60
            added[dialogue] = (
                s.measured.overlap_seconds - clean.measured.overlap_seconds
            ) / minutes
    return added
