"""Speech segments from per-frame VAD decisions, with missing audio kept apart as unknown."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

# Frames closer than this to where the previous one ended are contiguous.
CONTIGUITY_TOLERANCE_SECONDS = 0.03
RECENT_FRAMES_KEPT = 1500  # 30 s of 20 ms decisions, for dropout-in-speech questions


@dataclass(frozen=True)
class SpeechParams:
    """How frame decisions become segments (mic silence defaults: ObserveRTC's)."""

    onset_seconds: float = 0.06
    "Consecutive speech this long starts a segment (backdated to its first frame)."
    hangover_seconds: float = 0.3
    "Known non-speech this long ends a segment (at its last speech frame)."
    mic_silent_after_seconds: float = 30.0
    "No speech and no sound above silence_rms for this long: mic_silent."
    silence_rms: float = 0.001
    "Level (RMS, full scale 1.0) below which a batch is silence (ObserveRTC uses 0.001)."
    speech_margin_seconds: float = 0.3
    "A dropout is 'in speech' if speech frames lie within this before and after it."
    vad_overhang_seconds: float = 0.0
    "Segment ends are moved back by this: webrtcvad's own hangover (5 frames of 20 ms in"
    " modes 2–3, 7 in modes 0–1) where raw webrtcvad decisions come in. 0 behind the voice"
    " classifier, which already ends a run a few frames after its last voiced frame."


def vad_overhang_seconds(vad_mode: int, frame_seconds: float = 0.020) -> float:
    """webrtcvad's built-in overhang after a long speech burst (kOverHangMax2 in vad_core.c)."""
    frames_by_ms = {10: (14, 9), 20: (7, 5), 30: (5, 3)}  # (modes 0–1, modes 2–3)
    quality, aggressive = frames_by_ms[round(frame_seconds * 1000)]
    return (quality if vad_mode < 2 else aggressive) * frame_seconds


@dataclass(frozen=True)
class Segment:
    """A stretch of one role's speech on the session clock."""

    start: float
    end: float
    unknown_seconds: float = 0.0
    "Missing audio (dropouts) bridged inside the segment: neither speech nor silence."

    @property
    def speech_seconds(self) -> float:
        return max(0.0, self.end - self.start - self.unknown_seconds)


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


class SpeechSegmenter:
    """Smooths VAD frame decisions into segments; times are session seconds passed in."""

    def __init__(self, params: SpeechParams | None = None) -> None:
        self.params = params or SpeechParams()
        self.segments: list[Segment] = []
        self._unknown: deque[tuple[float, float]] = deque(maxlen=256)
        self._recent: deque[tuple[float, float, bool]] = deque(maxlen=RECENT_FRAMES_KEPT)
        self._last_frame_end: float | None = None
        self.first_frame_at: float | None = None
        self._run_start: float | None = None
        self._run_seconds = 0.0
        self._seg_start: float | None = None
        self._last_speech_end = 0.0
        self._silence_seconds = 0.0
        self._seg_unknown = 0.0
        self._pending_unknown = 0.0
        self._last_voice_at: float | None = None
        self.closed_speech_seconds = 0.0
        self.unknown_total_seconds = 0.0

    def seed(self, segments: list[Segment]) -> None:
        """Start from segments measured elsewhere (a session moved here from another
        instance): they count in speech seconds and turns; framing starts afresh with the
        next frame, so the time in between is neither speech nor silence."""
        if self.first_frame_at is not None or self.segments:
            raise ValueError("seed() must come before any frame")
        self.segments = list(segments)
        self.closed_speech_seconds = sum(s.speech_seconds for s in segments)
        if segments:
            self.first_frame_at = segments[0].start

    # -- input ---------------------------------------------------------------

    def add_unknown(self, start: float, end: float) -> None:
        """Audio in [start, end) is missing (a dropout): it is neither speech nor silence."""
        if end > start:
            self._unknown.append((start, end))
            self.unknown_total_seconds += end - start

    def _unknown_within(self, start: float, end: float) -> float:
        return min(end - start, sum(_overlap(start, end, u0, u1) for u0, u1 in self._unknown))

    def add_frame(
        self,
        at: float,
        duration: float,
        is_speech: bool,
        level_dbfs: float | None = None,
        low_band_ratio: float | None = None,
        periodicity: float | None = None,
    ) -> None:
        """One decision for audio [at, at + duration), taken as given (the features a
        VoiceSink may pass are for `core.voice.VoiceClassifier`, which decides before this)."""
        p = self.params
        if self._last_frame_end is None:  # the first frame (after a seed, too)
            if self.first_frame_at is None:
                self.first_frame_at = at
            self._last_voice_at = at
        last_end = self._last_frame_end
        if last_end is not None and at > last_end + CONTIGUITY_TOLERANCE_SECONDS:
            unknown = self._unknown_within(last_end, at)
            known_silence = (at - last_end) - unknown
            if known_silence > CONTIGUITY_TOLERANCE_SECONDS:
                self._run_start, self._run_seconds = None, 0.0
            if self._seg_start is not None:
                self._silence_seconds += known_silence
                self._pending_unknown += unknown
                if self._silence_seconds >= p.hangover_seconds:
                    self._close(self._seg_start)
        self._last_frame_end = max(at + duration, last_end or at)
        self._recent.append((at, at + duration, is_speech))
        if is_speech:
            self._last_voice_at = at + duration
            if self._run_start is None:
                self._run_start, self._run_seconds = at, 0.0
            self._run_seconds += duration
            if self._seg_start is not None:
                self._seg_unknown += self._pending_unknown
                self._pending_unknown = 0.0
                self._silence_seconds = 0.0
                self._last_speech_end = at + duration
            elif self._run_seconds >= p.onset_seconds - 1e-9:
                self._seg_start = self._run_start
                self._seg_unknown = self._unknown_within(self._run_start, at + duration)
                self._pending_unknown = 0.0
                self._silence_seconds = 0.0
                self._last_speech_end = at + duration
        else:
            self._run_start, self._run_seconds = None, 0.0
            if self._seg_start is not None:
                self._silence_seconds += duration
                if self._silence_seconds >= p.hangover_seconds:
                    self._close(self._seg_start)

    def add_level(self, at: float, rms: float) -> None:
        """Signal level of a batch of audio ending at `at` (RMS, full scale 1.0)."""
        if rms >= self.params.silence_rms:
            self._last_voice_at = at

    def _speech_end(self, start: float) -> float:
        """Where the open segment that began at `start` ends so far."""
        end = self._last_speech_end - self.params.vad_overhang_seconds
        return max(start + CONTIGUITY_TOLERANCE_SECONDS, end)

    def _close(self, start: float) -> None:
        """Close the open segment, which began at `start`."""
        segment = Segment(start, self._speech_end(start), self._seg_unknown)
        self.segments.append(segment)
        self.closed_speech_seconds += segment.speech_seconds
        self._seg_start = None
        self._seg_unknown = self._pending_unknown = self._silence_seconds = 0.0

    # -- output --------------------------------------------------------------

    @property
    def last_frame_end(self) -> float | None:
        return self._last_frame_end

    def open_segment(self) -> Segment | None:
        """The segment in progress (ending at its last speech frame so far), if any."""
        if self._seg_start is None:
            return None
        return Segment(self._seg_start, self._speech_end(self._seg_start), self._seg_unknown)

    def all_segments(self) -> list[Segment]:
        current = self.open_segment()
        return [*self.segments, current] if current else list(self.segments)

    def segments_since(self, since: float) -> list[Segment]:
        """Segments ending at or after `since`, oldest first; scans back from the newest,
        so a tick's cost does not grow with the session's length."""
        recent: list[Segment] = []
        current = self.open_segment()
        if current is not None and current.end >= since:
            recent.append(current)
        for segment in reversed(self.segments):
            if segment.end < since:
                break
            recent.append(segment)
        recent.reverse()
        return recent

    def speech_seconds(self) -> float:
        current = self.open_segment()
        return self.closed_speech_seconds + (current.speech_seconds if current else 0.0)

    def mic_silent(self) -> bool:
        """No speech and nothing above silence level for mic_silent_after_seconds of audio."""
        if self._last_frame_end is None or self._last_voice_at is None:
            return False
        return self._last_frame_end - self._last_voice_at >= self.params.mic_silent_after_seconds

    def speech_around(self, start: float, end: float) -> bool | None:
        """Was there speech just before `start` and just after `end`? None: not yet known."""
        margin = self.params.speech_margin_seconds
        if self._last_frame_end is None or self._last_frame_end < end + margin:
            return None
        before = after = False
        for f0, f1, speech in self._recent:
            if not speech:
                continue
            if _overlap(f0, f1, start - margin, start) > 0:
                before = True
            if _overlap(f0, f1, end, end + margin) > 0:
                after = True
        return before and after
