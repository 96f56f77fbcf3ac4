"""What a participant's picture looks like to them, from their probe's inbound video stats;
pure. W3C `freezeCount`/`totalFreezesDuration` are the browser's own freeze counters (the
same definition qualmon's RTP measure follows), read as they are: nothing is recomputed."""

from __future__ import annotations

from dataclasses import dataclass

from .heard_sample import HeardError, HeardSample, InboundVideo


@dataclass(frozen=True)
class HeardVideo:
    """The inbound video a participant receives, as their probe reports it."""

    freezes: int
    "W3C freezeCount, summed over the video streams reported (each from its first sample)."
    freeze_seconds: float
    "W3C totalFreezesDuration, summed the same way."
    frames_per_second: float | None
    "Newest framesPerSecond (the lowest, with several streams); None if not reported."
    width: int | None
    height: int | None
    "Newest frameWidth/frameHeight (of the largest picture, with several streams)."


def check_video(previous: HeardSample, sample: HeardSample) -> None:
    """HeardError if a video stream's cumulative freeze counters went down."""
    before = {s.stream_id: s for s in previous.video}
    for stream in sample.video:
        old = before.get(stream.stream_id)
        if old is None:
            continue
        for name, w3c in (
            ("freeze_count", "freezeCount"),
            ("total_freezes_duration_seconds", "totalFreezesDuration"),
        ):
            new_value, old_value = getattr(stream, name), getattr(old, name)
            if new_value is not None and old_value is not None and new_value < old_value:
                raise HeardError(f"{w3c} went down on stream {stream.stream_id[:40]!r}")


class HeardVideoTotals:
    """Cumulative freezes over every video stream a probe reported."""

    def __init__(self) -> None:
        self.freezes = 0
        self.freeze_seconds = 0.0

    def add(self, previous: HeardSample | None, sample: HeardSample) -> None:
        """Count the growth since `previous` (checked by `check_video`); a new stream, or a
        field seen for the first time, counts from its start."""
        before = {s.stream_id: s for s in previous.video} if previous is not None else {}
        for stream in sample.video:
            old = before.get(stream.stream_id)
            self.freezes += int(_grown(stream.freeze_count, old.freeze_count if old else None))
            self.freeze_seconds += _grown(
                stream.total_freezes_duration_seconds,
                old.total_freezes_duration_seconds if old else None,
            )

    def snapshot(self, last: HeardSample | None) -> HeardVideo | None:
        """None unless the newest sample had an inbound video stream."""
        if last is None or not last.video:
            return None
        rates = [s.frames_per_second for s in last.video if s.frames_per_second is not None]
        biggest = max(last.video, key=_area)
        return HeardVideo(
            freezes=self.freezes,
            freeze_seconds=self.freeze_seconds,
            frames_per_second=min(rates) if rates else None,
            width=biggest.frame_width,
            height=biggest.frame_height,
        )


def _grown(new: float | None, old: float | None) -> float:
    return 0.0 if new is None else new - (old or 0)


def _area(stream: InboundVideo) -> int:
    return (stream.frame_width or 0) * (stream.frame_height or 0)
