"""Which of webrtcvad's speech frames are this speaker's voice: not a breath, not the room, not
the other side's echo.

webrtcvad alone (measured on the realistic corpus, `qualmon bench --speech`) calls breaths,
lip noise, a noise suppressor's −60 dBFS floor and the other side's residual echo speech:
up to +86 % speech seconds and +692 % overlap. A human annotator marks speech from the first
sound of the first word to the last of the last; breaths are not speech. So a run of
webrtcvad speech frames counts only around *voiced* frames, those that
- have most of their energy below 1 kHz (voiced speech does; breaths and hiss do not), or at
  least half of it with a pitch (front vowels put much energy in a 2 kHz formant),
- stand `floor_margin_db` over the leg's noise floor (a low quantile of recent levels),
- are within `below_speech_db` of the leg's own speech level (a high quantile of its
  speech frames: a 12 dB quieter speaker is measured against their own voice), and
- are not `echo_margin_db` or more under the other role's level at the same session time
  (residual echo sits 25–35 dB under its source; a quieter speaker talking over the other
  sits about 12 dB under).
A run keeps up to `pre_frames` before its first voiced frame (onsets such as "s", "t") and
`post_frames` after its last, as long as they have sound (`sound_margin_db` over the floor);
frames with no voiced frame within a run are not speech.
Decisions are delayed by at most `bridge_frames` frames; they go to the segmenter in order.

Frames without features (a source that has only decisions) pass as webrtcvad said.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

from .quantiles import percentile

NO_LEVEL_DBFS = -120.0
VOICED_LOW_BAND_RATIO = 0.8
PERIODIC_LOW_BAND_RATIO = 0.5
"Between these shares of energy below 1 kHz a frame is voiced only if it is periodic: a"
" speech path needs to measure periodicity only there."


class FrameSink(Protocol):
    """Where decided 20 ms frames go: `core.speech.SpeechSegmenter`."""

    def add_frame(self, start: float, seconds: float, is_speech: bool) -> None: ...
    def add_level(self, at: float, rms: float) -> None: ...


@dataclass(frozen=True)
class VoiceParams:
    low_band_min_ratio: float = VOICED_LOW_BAND_RATIO
    "Share of a frame's energy (above 100 Hz) below 1 kHz for it to count as voiced…"
    low_band_periodic_ratio: float = PERIODIC_LOW_BAND_RATIO
    min_periodicity: float = 0.4
    "…or at least low_band_periodic_ratio with a pitch (periodicity ≥ this): front vowels"
    " ('yes') carry much of their energy in a 2 kHz formant; breaths have no pitch."
    floor_margin_db: float = 12.0
    sound_margin_db: float = 6.0
    "A frame this far over the floor has sound: only such frames extend a run's voice."
    below_speech_db: float = 20.0
    echo_margin_db: float = 20.0
    echo_window_seconds: tuple[float, float] = (0.20, 0.04)
    "The other role's frames from this long before to this long after a frame are its echo's"
    " possible source (echo paths measured 60–180 ms)."
    floor_quantile: float = 0.10
    floor_frames: int = 150
    "Recent frames the noise floor is taken from (3 s)."
    speech_quantile: float = 0.90
    speech_frames: int = 500
    "Recent webrtcvad speech frames the speech level is taken from (10 s of speech)."
    min_speech_frames: int = 50
    "Until this many speech frames are known, the speech-level test is skipped."
    refresh_frames: int = 25
    "The floor and the speech level are recomputed this often (percentiles are sorts)."
    pre_frames: int = 7
    post_frames: int = 6
    bridge_frames: int = 15
    "Unvoiced frames inside a run held back at most this long; then the run is cut."


class EchoReference:
    """Each role's recent frame levels on the session clock, for the other roles' echo test."""

    def __init__(self, keep_frames: int = 50) -> None:
        self._levels: dict[str, deque[tuple[float, float]]] = {}
        self._keep = keep_frames

    def record(self, role: str, start: float, level_dbfs: float) -> None:
        levels = self._levels.get(role)
        if levels is None:
            levels = self._levels[role] = deque(maxlen=self._keep)
        levels.append((start, level_dbfs))

    def loudest_other(self, role: str, start: float, end: float) -> float:
        """The highest level another role had in [start, end]; NO_LEVEL_DBFS if none known."""
        loudest = NO_LEVEL_DBFS
        for other, levels in self._levels.items():
            if other == role:
                continue
            for at, level in reversed(levels):
                if at < start:
                    break
                if at <= end and level > loudest:
                    loudest = level
        return loudest


class VoiceClassifier:
    """One role's webrtcvad frames → voice decisions for its segmenter (see module docs)."""

    def __init__(
        self,
        sink: FrameSink,
        *,
        role: str = "",
        reference: EchoReference | None = None,
        params: VoiceParams | None = None,
    ) -> None:
        self.sink = sink
        self.role = role
        self.reference = reference
        self.params = p = params or VoiceParams()
        self._levels: deque[float] = deque(maxlen=p.floor_frames)
        self._speech_levels: deque[float] = deque(maxlen=p.speech_frames)
        self._floor_dbfs = NO_LEVEL_DBFS
        self._speech_dbfs: float | None = None
        self._since_refresh = 0
        self._refreshes = 0
        # The current run of webrtcvad speech frames: frames not yet decided (since its start,
        # or since its last voiced frame) and whether a voiced frame was seen.
        self._pending: list[tuple[float, float, bool]] = []  # start, seconds, has sound
        self._voiced_in_run = False
        self._last_end: float | None = None
        self.frames_voiced = 0

    # -- input ---------------------------------------------------------------

    def add_level(self, at: float, rms: float) -> None:
        self.sink.add_level(at, rms)

    def add_frame(
        self,
        start: float,
        seconds: float,
        is_speech: bool,
        level_dbfs: float | None = None,
        low_band_ratio: float | None = None,
        periodicity: float | None = None,
    ) -> None:
        last_end = self._last_end
        if last_end is not None and abs(start - last_end) > 0.03:
            self._end_run()  # audio missing or restarted: a run does not span it
        self._last_end = start + seconds
        if level_dbfs is not None:
            self._track(level_dbfs, is_speech)
            if self.reference is not None:
                self.reference.record(self.role, start, level_dbfs)
        if not is_speech:
            self._end_run()
            self.sink.add_frame(start, seconds, False)
            return
        if level_dbfs is None or self._voiced(start, level_dbfs, low_band_ratio, periodicity):
            self.frames_voiced += 1
            self._voice(start, seconds)
            return
        pending = self._pending
        p = self.params
        pending.append((start, seconds, level_dbfs >= self._floor_dbfs + p.sound_margin_db))
        if not self._voiced_in_run:
            if len(pending) > p.pre_frames:
                # Too early to be the onset of a voiced frame to come.
                early_start, early_seconds, _ = pending.pop(0)
                self.sink.add_frame(early_start, early_seconds, False)
        elif len(pending) > p.bridge_frames:
            self._end_run()

    def flush(self) -> None:
        """Decide every held frame (the leg ended or its audio stopped)."""
        self._end_run()

    # -- deciding ------------------------------------------------------------

    def _voiced(
        self,
        start: float,
        level_dbfs: float,
        low_band_ratio: float | None,
        periodicity: float | None,
    ) -> bool:
        p = self.params
        if low_band_ratio is None or low_band_ratio < p.low_band_periodic_ratio:
            return False
        if low_band_ratio < p.low_band_min_ratio and (
            periodicity is None or periodicity < p.min_periodicity
        ):
            return False
        if level_dbfs < self._floor_dbfs + p.floor_margin_db:
            return False
        speech = self._speech_dbfs
        if speech is not None and level_dbfs < speech - p.below_speech_db:
            return False
        if self.reference is not None:
            before, after = p.echo_window_seconds
            loudest = self.reference.loudest_other(self.role, start - before, start + after)
            if level_dbfs < loudest - p.echo_margin_db:
                return False
        return True

    def _voice(self, start: float, seconds: float) -> None:
        pending = self._pending
        # Before the run's first voiced frame only its last pre_frames are still held.
        for held_start, held_seconds, sound in pending:
            self.sink.add_frame(held_start, held_seconds, sound)
        pending.clear()
        self._voiced_in_run = True
        self.sink.add_frame(start, seconds, True)

    def _end_run(self) -> None:
        pending = self._pending
        if pending:
            # The voice goes on after its last voiced frame while there is sound (an "s"),
            # not over webrtcvad's own hangover on a silent floor.
            keep = self.params.post_frames if self._voiced_in_run else 0
            for index, (held_start, held_seconds, sound) in enumerate(pending):
                self.sink.add_frame(held_start, held_seconds, index < keep and sound)
            pending.clear()
        self._voiced_in_run = False

    def _track(self, level_dbfs: float, is_speech: bool) -> None:
        p = self.params
        self._levels.append(level_dbfs)
        if is_speech:
            self._speech_levels.append(level_dbfs)
        self._since_refresh += 1
        if self._since_refresh >= p.refresh_frames or len(self._levels) <= p.refresh_frames:
            self._since_refresh = 0
            self._refreshes += 1
            self._floor_dbfs = percentile(self._levels, p.floor_quantile)
            speech_known = len(self._speech_levels)
            # The speech level moves slowly (10 s of speech): its sort of up to 500 levels is
            # the classifier's largest cost, so it is redone every tenth refresh once known.
            if speech_known >= p.min_speech_frames and (
                self._speech_dbfs is None or self._refreshes % 10 == 0
            ):
                self._speech_dbfs = percentile(self._speech_levels, p.speech_quantile)
