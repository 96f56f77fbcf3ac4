"""What a participant hears: probe samples of W3C getStats fields, validated, into window measures.

Pure: samples and the time come in, snapshots go out. A sample holds cumulative counters; the
tracker checks each against the previous one of the same stream id and keeps the deltas of
the last window. Units are W3C's: seconds and audio samples; timestamps in ms since the epoch.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from .emodel import DEFAULT_PARAMS, EModelParams, mos_from_r, r_factor

WINDOW_SECONDS = 15.0
"Audible concealment, loss and jitter-buffer delay are measured over this window (ObserveRTC)."
STALE_AFTER_SECONDS = 10.0
"A probe silent this long no longer vouches for what its participant hears."
PACKETIZATION_SECONDS = 0.020
MAX_STATS_ENTRIES = 32
MAX_INBOUND_STREAMS = 8
MAX_ID_CHARS = 128
MAX_COUNTER = 2**53 - 1  # JavaScript's largest exact integer
MAX_SECONDS = 60.0
"Upper bound of a jitter or round-trip time; anything above is a broken sample."
MIN_TIMESTAMP_MS = 946_684_800_000.0  # 2000-01-01
MAX_TIMESTAMP_MS = 4_102_444_800_000.0  # 2100-01-01
_INTERVALS_KEPT = 128

# W3C name → (kind, lower bound, upper bound); kind "int" is an exact integer.
_INBOUND_FIELDS: dict[str, tuple[str, float, float]] = {
    "packetsReceived": ("int", 0, MAX_COUNTER),
    "packetsLost": ("int", -MAX_COUNTER, MAX_COUNTER),  # W3C: negative with duplicates
    "jitter": ("float", 0.0, MAX_SECONDS),
    "concealedSamples": ("int", 0, MAX_COUNTER),
    "silentConcealedSamples": ("int", 0, MAX_COUNTER),
    "concealmentEvents": ("int", 0, MAX_COUNTER),
    "totalSamplesReceived": ("int", 0, MAX_COUNTER),
    "jitterBufferDelay": ("float", 0.0, float(MAX_COUNTER)),
    "jitterBufferEmittedCount": ("int", 0, MAX_COUNTER),
    "audioLevel": ("float", 0.0, 1.0),
}
_REMOTE_FIELDS = {"roundTripTime": ("float", 0.0, MAX_SECONDS), "fractionLost": ("float", 0.0, 1.0)}
_PAIR_FIELDS = {"currentRoundTripTime": ("float", 0.0, MAX_SECONDS)}
# Keys a getStats entry carries that we accept and ignore.
_PASSIVE_KEYS = {"type", "id", "kind", "timestamp", "ssrc", "mid", "state", "nominated"}
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


class HeardError(ValueError):
    """A sample that cannot be used; the message is one line, safe to return to the caller."""


@dataclass(frozen=True)
class InboundAudio:
    """One inbound-rtp audio stream of the listening participant, cumulative counters."""

    stream_id: str
    packets_received: int
    packets_lost: int | None = None
    "Expected − received as W3C counts it; may go down (duplicates, late packets)."
    jitter_seconds: float | None = None
    concealed_samples: int | None = None
    "Samples the decoder made up (loss concealment), silent ones included."
    silent_concealed_samples: int | None = None
    "Concealed samples that were silence or comfort noise: not heard as damage."
    concealment_events: int | None = None
    total_samples_received: int | None = None
    "Samples played out, concealed ones included."
    jitter_buffer_delay_seconds: float | None = None
    "Sum over emitted samples of the time each spent in the jitter buffer."
    jitter_buffer_emitted_count: int | None = None
    audio_level: float | None = None
    "Level of the received audio, 0–1 linear."


@dataclass(frozen=True)
class HeardSample:
    """One validated probe sample."""

    timestamp_ms: float
    "When the probe read getStats, ms since the epoch on the probe's clock."
    inbound: tuple[InboundAudio, ...]
    rtt_seconds: float | None
    "Selected (nominated) candidate pair's currentRoundTripTime, else remote-inbound RTT."
    remote_fraction_lost: float | None
    "Loss of this participant's outgoing audio as the far end reported it (RTCP)."


def _number(entry: Mapping[str, object], key: str, spec: tuple[str, float, float]) -> float | None:
    if key not in entry:
        return None
    kind, low, high = spec
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HeardError(f"{key} must be a number")
    if kind == "int" and not isinstance(value, int):
        raise HeardError(f"{key} must be an integer")
    if not math.isfinite(value) or not low <= value <= high:
        raise HeardError(f"{key} out of range: {value!r}")
    return float(value) if kind == "float" else value


def _check_keys(entry: Mapping[str, object], fields: Mapping[str, object], what: str) -> None:
    unknown = sorted(set(entry) - set(fields) - _PASSIVE_KEYS)
    if unknown:
        raise HeardError(f"unknown field in {what}: {unknown[0][:40]}")
    stream_id = entry.get("id")
    if not isinstance(stream_id, str) or not 0 < len(stream_id) <= MAX_ID_CHARS:
        raise HeardError(f"{what} needs an id of 1–{MAX_ID_CHARS} characters")


def _inbound(entry: Mapping[str, object]) -> InboundAudio:
    _check_keys(entry, _INBOUND_FIELDS, "inbound-rtp")
    if entry.get("kind") != "audio":
        raise HeardError('inbound-rtp kind must be "audio"')
    v = {key: _number(entry, key, spec) for key, spec in _INBOUND_FIELDS.items()}
    if v["packetsReceived"] is None:
        raise HeardError("inbound-rtp needs packetsReceived")
    silent, concealed, total = (
        v["silentConcealedSamples"],
        v["concealedSamples"],
        v["totalSamplesReceived"],
    )
    if silent is not None and concealed is not None and silent > concealed:
        raise HeardError("silentConcealedSamples exceeds concealedSamples")
    if concealed is not None and total is not None and concealed > total:
        raise HeardError("concealedSamples exceeds totalSamplesReceived")

    def as_int(x: float | None) -> int | None:
        return None if x is None else int(x)

    return InboundAudio(
        stream_id=str(entry["id"]),
        packets_received=int(v["packetsReceived"]),
        packets_lost=as_int(v["packetsLost"]),
        jitter_seconds=v["jitter"],
        concealed_samples=as_int(concealed),
        silent_concealed_samples=as_int(silent),
        concealment_events=as_int(v["concealmentEvents"]),
        total_samples_received=as_int(total),
        jitter_buffer_delay_seconds=v["jitterBufferDelay"],
        jitter_buffer_emitted_count=as_int(v["jitterBufferEmittedCount"]),
        audio_level=v["audioLevel"],
    )


def parse_sample(doc: object) -> HeardSample:
    """Schema, types and ranges of one sample (no comparison with earlier ones)."""
    if not isinstance(doc, dict):
        raise HeardError("body must be a JSON object")
    extra = sorted(set(doc) - {"timestamp", "stats"})
    if extra:
        raise HeardError(f"unknown top-level field: {extra[0][:40]}")
    timestamp = _number(doc, "timestamp", ("float", MIN_TIMESTAMP_MS, MAX_TIMESTAMP_MS))
    if timestamp is None:
        raise HeardError("timestamp (ms since the epoch) is required")
    entries = doc.get("stats")
    if not isinstance(entries, list) or not 0 < len(entries) <= MAX_STATS_ENTRIES:
        raise HeardError(f"stats must be a list of 1–{MAX_STATS_ENTRIES} entries")
    inbound: list[InboundAudio] = []
    pair_rtt: float | None = None
    remote_rtt: float | None = None
    fraction_lost: float | None = None
    for entry in entries:
        if not isinstance(entry, dict):
            raise HeardError("every stats entry must be an object")
        kind = entry.get("type")
        if kind == "inbound-rtp":
            inbound.append(_inbound(entry))
        elif kind == "remote-inbound-rtp":
            _check_keys(entry, _REMOTE_FIELDS, kind)
            if entry.get("kind", "audio") != "audio":
                raise HeardError('remote-inbound-rtp kind must be "audio"')
            rtt = _number(entry, "roundTripTime", _REMOTE_FIELDS["roundTripTime"])
            lost = _number(entry, "fractionLost", _REMOTE_FIELDS["fractionLost"])
            remote_rtt = remote_rtt if rtt is None else rtt
            fraction_lost = fraction_lost if lost is None else lost
        elif kind == "candidate-pair":
            _check_keys(entry, _PAIR_FIELDS, kind)
            nominated = entry.get("nominated", False)
            if not isinstance(nominated, bool):
                raise HeardError("candidate-pair nominated must be true or false")
            rtt = _number(entry, "currentRoundTripTime", _PAIR_FIELDS["currentRoundTripTime"])
            if nominated and rtt is not None:
                pair_rtt = rtt
        else:
            raise HeardError(
                "stats entry type must be inbound-rtp, remote-inbound-rtp or candidate-pair"
            )
    if not inbound:
        raise HeardError("no inbound-rtp audio entry")
    if len(inbound) > MAX_INBOUND_STREAMS:
        raise HeardError(f"more than {MAX_INBOUND_STREAMS} inbound-rtp entries")
    if len({s.stream_id for s in inbound}) != len(inbound):
        raise HeardError("duplicate inbound-rtp id")
    return HeardSample(
        timestamp_ms=float(timestamp),
        inbound=tuple(inbound),
        rtt_seconds=pair_rtt if pair_rtt is not None else remote_rtt,
        remote_fraction_lost=fraction_lost,
    )


def _reject_constant(name: str) -> object:
    raise HeardError(f"{name} is not a number JSON allows")


def sample_from_json(body: str | bytes) -> HeardSample:
    """Decode and validate one sample; HeardError (one line) for anything malformed."""
    try:
        doc = json.loads(body, parse_constant=_reject_constant)
    except HeardError:
        raise
    except (ValueError, RecursionError):
        raise HeardError("body is not valid JSON") from None
    return parse_sample(doc)


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
                raise HeardError(f"{w3c_name} went down on stream {stream.stream_id[:40]}")
        for name in (*_MONOTONIC, "packets_lost"):
            sums[name] = sums.get(name, 0) + _delta(getattr(stream, name), getattr(old, name))
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
    network = rtt_seconds / 2 if rtt_seconds is not None else 0.0
    if jitter_buffer_delay_seconds is not None:
        buffer = jitter_buffer_delay_seconds
    else:
        buffer = 2 * (jitter_seconds or 0.0)
    r = r_factor(
        one_way_delay_seconds=network + buffer + PACKETIZATION_SECONDS,
        loss_ratio=min(max(loss_ratio, 0.0), 1.0),
        params=params,
    )
    return mos_from_r(r)


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
        )
