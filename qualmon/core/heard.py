"""What a participant hears: probe samples of W3C getStats fields, validated, into window measures.

Pure: samples and the time come in, snapshots go out. A sample holds cumulative counters; the
tracker checks each against the previous one of the same stream id and keeps the deltas of
the last window. Units are W3C's: seconds and audio samples; timestamps in ms since the epoch.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .emodel import DEFAULT_PARAMS, EModelParams, estimated_mos
from .heard_sample import (
    HeardError,
    HeardSample,
    InboundAudio,
    InboundVideo,
    parse_sample,
    sample_from_json,
)
from .heard_video import HeardVideo, HeardVideoTotals, check_video

__all__ = [
    "HeardError",
    "HeardInterval",
    "HeardSample",
    "HeardSnapshot",
    "HeardTracker",
    "HeardVideo",
    "InboundAudio",
    "InboundVideo",
    "heard_mos",
    "interval_between",
    "parse_sample",
    "sample_from_json",
]

WINDOW_SECONDS = 15.0
"Audible concealment, loss and jitter-buffer delay are measured over this window (ObserveRTC)."
STALE_AFTER_SECONDS = 10.0
"A probe silent this long no longer vouches for what its participant hears."
_INTERVALS_KEPT = 128

# Counters that may only grow within one stream id (packetsLost may shrink, per W3C).
_MONOTONIC = {
    "packets_received": "packetsReceived",
    "concealed_samples": "concealedSamples",
    "silent_concealed_samples": "silentConcealedSamples",
    "concealment_events": "concealmentEvents",
    "total_samples_received": "totalSamplesReceived",
    "jitter_buffer_delay_seconds": "jitterBufferDelay",
    "jitter_buffer_emitted_count": "jitterBufferEmittedCount",
}
_TOTALS = (
    "packets_received",
    "packets_lost",
    "concealed_samples",
    "silent_concealed_samples",
    "concealment_events",
    "total_samples_received",
)


@dataclass(frozen=True)
class HeardInterval:
    """Growth of the counters between two consecutive samples (streams present in both)."""

    start_ms: float
    end_ms: float
    packets_received: int = 0
    packets_lost: int = 0
    "May be negative: W3C's packetsLost shrinks when late packets arrive."
    total_samples: int = 0
    concealed_samples: int = 0
    silent_concealed_samples: int = 0
    concealment_events: int = 0
    jitter_buffer_delay_seconds: float = 0.0
    jitter_buffer_emitted_count: int = 0

    @property
    def audible_concealment_ratio(self) -> float | None:
        """(concealed − silent concealed) / total samples; None when no audio was played."""
        return _audible_ratio(
            self.concealed_samples, self.silent_concealed_samples, self.total_samples
        )


def _audible_ratio(concealed: int, silent: int, total: int) -> float | None:
    if total <= 0:
        return None
    return min(1.0, max(0.0, (concealed - silent) / total))


def _delta(new: float | None, old: float | None) -> float:
    return 0 if new is None or old is None else new - old


def interval_between(previous: HeardSample, sample: HeardSample) -> HeardInterval:
    """Deltas from previous to sample; HeardError if time or a cumulative counter went back."""
    if sample.timestamp_ms <= previous.timestamp_ms:
        raise HeardError(
            f"timestamp must increase: {sample.timestamp_ms:.0f} after {previous.timestamp_ms:.0f}"
        )
    before = {s.stream_id: s for s in previous.inbound}
    sums: dict[str, float] = {}
    for stream in sample.inbound:
        old = before.get(stream.stream_id)
        if old is None:
            continue  # a new stream: its first sample is the baseline
        for name, w3c_name in _MONOTONIC.items():
            new_value, old_value = getattr(stream, name), getattr(old, name)
            if new_value is not None and old_value is not None and new_value < old_value:
                raise HeardError(f"{w3c_name} went down on stream {stream.stream_id[:40]!r}")
        for name in (*_MONOTONIC, "packets_lost"):
            sums[name] = sums.get(name, 0) + _delta(getattr(stream, name), getattr(old, name))
    check_video(previous, sample)
    return HeardInterval(
        start_ms=previous.timestamp_ms,
        end_ms=sample.timestamp_ms,
        packets_received=int(sums.get("packets_received", 0)),
        packets_lost=int(sums.get("packets_lost", 0)),
        total_samples=int(sums.get("total_samples_received", 0)),
        concealed_samples=int(sums.get("concealed_samples", 0)),
        silent_concealed_samples=int(sums.get("silent_concealed_samples", 0)),
        concealment_events=int(sums.get("concealment_events", 0)),
        jitter_buffer_delay_seconds=sums.get("jitter_buffer_delay_seconds", 0.0),
        jitter_buffer_emitted_count=int(sums.get("jitter_buffer_emitted_count", 0)),
    )


def heard_mos(
    *,
    rtt_seconds: float | None,
    jitter_buffer_delay_seconds: float | None,
    jitter_seconds: float | None,
    loss_ratio: float,
    params: EModelParams = DEFAULT_PARAMS,
) -> float:
    """Estimated MOS of what the participant hears (E-model, see core/emodel.py).

    One-way delay Ta = rtt/2 (0 if unknown) + the jitter-buffer delay the browser measured
    (2 × jitter when it reports none) + 20 ms packetisation.
    """
    return estimated_mos(
        rtt_seconds=rtt_seconds,
        jitter_seconds=jitter_seconds or 0.0,
        loss_ratio=loss_ratio,
        params=params,
        buffer_seconds=jitter_buffer_delay_seconds,
    )


@dataclass(frozen=True)
class HeardSnapshot:
    """What one participant hears, as their probe reports it."""

    samples: int
    "Samples accepted so far."
    packets_received: int
    packets_lost: int
    total_samples_received: int
    concealed_samples: int
    silent_concealed_samples: int
    concealment_events: int
    "Cumulative over every stream the probe reported (each from its first sample)."
    window_seconds: float
    "Span the ratios below cover: the sample intervals that end within the last 15 s"
    " (0 before the second sample)."
    audible_concealment_ratio: float | None
    "(concealed − silent concealed) / total samples over the window."
    loss_ratio: float | None
    "Packets lost / expected on the way in over the window."
    jitter_buffer_delay_seconds: float | None
    "Mean time a sample spent in the jitter buffer over the window (Δdelay / Δemitted)."
    jitter_seconds: float | None
    "Newest interarrival jitter (the largest across streams)."
    rtt_seconds: float | None
    "Newest round-trip time as the browser sees it."
    remote_fraction_lost: float | None
    "Loss of this participant's outgoing audio, as the far end reported it."
    audio_level: float | None
    mos: float | None
    "Estimated MOS; one-way delay rtt/2 + jitter-buffer delay + 20 ms (heard_mos)."
    seconds_since_last_sample: float
    video: HeardVideo | None = None
    "The inbound video the participant receives; None when the newest sample had none."


class HeardTracker:
    """One participant's probe samples: validation against the last one, window of deltas."""

    def __init__(
        self, *, window_seconds: float = WINDOW_SECONDS, emodel: EModelParams = DEFAULT_PARAMS
    ) -> None:
        self._window_ms = window_seconds * 1000.0
        self._emodel = emodel
        self.last: HeardSample | None = None
        self.last_received_at: float | None = None
        self.samples = 0
        self._totals: dict[str, int] = {}
        self._intervals: deque[HeardInterval] = deque(maxlen=_INTERVALS_KEPT)
        self._video = HeardVideoTotals()

    def add(self, sample: HeardSample, *, received_at: float) -> HeardInterval | None:
        """Check sample against the previous one, then keep it; nothing changes on HeardError.

        Returns the interval it closes (None for the first sample).
        """
        interval = interval_between(self.last, sample) if self.last is not None else None
        before = {s.stream_id: s for s in self.last.inbound} if self.last else {}
        for stream in sample.inbound:
            old = before.get(stream.stream_id)
            for name in _TOTALS:
                # A new stream (or a field seen for the first time) counts from its start.
                value, earlier = getattr(stream, name), getattr(old, name, None)
                grown = 0 if value is None else value - (earlier or 0)
                self._totals[name] = self._totals.get(name, 0) + int(grown)
        self._video.add(self.last, sample)
        if interval is not None:
            self._intervals.append(interval)
            while self._intervals and self._intervals[0].end_ms <= sample.timestamp_ms - (
                self._window_ms
            ):
                self._intervals.popleft()
        self.last, self.last_received_at = sample, received_at
        self.samples += 1
        return interval

    def fresh(self, now: float, stale_after_seconds: float = STALE_AFTER_SECONDS) -> bool:
        """A sample arrived within stale_after_seconds (now and arrivals on one clock)."""
        return self.last_received_at is not None and now - self.last_received_at <= (
            stale_after_seconds
        )

    def window(self) -> HeardInterval | None:
        """The window's intervals summed into one; None before the second sample."""
        if not self._intervals:
            return None
        parts = self._intervals
        return HeardInterval(
            start_ms=parts[0].start_ms,
            end_ms=parts[-1].end_ms,
            packets_received=sum(p.packets_received for p in parts),
            packets_lost=sum(p.packets_lost for p in parts),
            total_samples=sum(p.total_samples for p in parts),
            concealed_samples=sum(p.concealed_samples for p in parts),
            silent_concealed_samples=sum(p.silent_concealed_samples for p in parts),
            concealment_events=sum(p.concealment_events for p in parts),
            jitter_buffer_delay_seconds=sum(p.jitter_buffer_delay_seconds for p in parts),
            jitter_buffer_emitted_count=sum(p.jitter_buffer_emitted_count for p in parts),
        )

    def audible_concealment_ratio(self) -> float | None:
        window = self.window()
        return window.audible_concealment_ratio if window is not None else None

    def snapshot(self, now: float) -> HeardSnapshot:
        last = self.last
        window = self.window()
        loss = jb_delay = None
        if window is not None:
            lost = max(0, window.packets_lost)
            if window.packets_received + lost > 0:
                loss = lost / (window.packets_received + lost)
            if window.jitter_buffer_emitted_count > 0:
                jb_delay = window.jitter_buffer_delay_seconds / window.jitter_buffer_emitted_count
        streams = last.inbound if last else ()
        jitters = [s.jitter_seconds for s in streams if s.jitter_seconds is not None]
        levels = [s.audio_level for s in streams if s.audio_level is not None]
        jitter = max(jitters) if jitters else None
        rtt = last.rtt_seconds if last else None
        mos = None
        if loss is not None:
            mos = heard_mos(
                rtt_seconds=rtt,
                jitter_buffer_delay_seconds=jb_delay,
                jitter_seconds=jitter,
                loss_ratio=loss,
                params=self._emodel,
            )
        t = self._totals
        return HeardSnapshot(
            samples=self.samples,
            packets_received=t.get("packets_received", 0),
            packets_lost=t.get("packets_lost", 0),
            total_samples_received=t.get("total_samples_received", 0),
            concealed_samples=t.get("concealed_samples", 0),
            silent_concealed_samples=t.get("silent_concealed_samples", 0),
            concealment_events=t.get("concealment_events", 0),
            window_seconds=(window.end_ms - window.start_ms) / 1000.0 if window else 0.0,
            audible_concealment_ratio=window.audible_concealment_ratio if window else None,
            loss_ratio=loss,
            jitter_buffer_delay_seconds=jb_delay,
            jitter_seconds=jitter,
            rtt_seconds=rtt,
            remote_fraction_lost=last.remote_fraction_lost if last else None,
            audio_level=max(levels) if levels else None,
            mos=mos,
            seconds_since_last_sample=(
                now - self.last_received_at if self.last_received_at is not None else 0.0
            ),
            video=self._video.snapshot(last),
        )
