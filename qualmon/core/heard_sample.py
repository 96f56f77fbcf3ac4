"""Probe samples: W3C getStats fields, checked for schema, types and ranges; pure.

A sample is the W3C shape a browser gets from `Array.from((await pc.getStats()).values())`,
filtered or not; units as W3C (seconds, audio samples), timestamp in ms since the epoch.
Browsers add fields and entry types every release: fields and types not read here are
ignored (the body limit bounds them), while every field that is read is checked for type and
range.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

MAX_STATS_ENTRIES = 512
"A whole getStats dump of a call with many candidates; the 16 KiB body limit comes first."
MAX_INBOUND_STREAMS = 8
MAX_ID_CHARS = 128
MAX_COUNTER = 2**53 - 1  # JavaScript's largest exact integer
MAX_SECONDS = 60.0
"Upper bound of a jitter or round-trip time; anything above is a broken sample."
MIN_TIMESTAMP_MS = 946_684_800_000.0  # 2000-01-01
MAX_TIMESTAMP_MS = 4_102_444_800_000.0  # 2100-01-01

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
MAX_FRAMES_PER_SECOND = 1000.0
MAX_FRAME_SIDE = 65535
_VIDEO_FIELDS: dict[str, tuple[str, float, float]] = {
    "freezeCount": ("int", 0, MAX_COUNTER),
    "totalFreezesDuration": ("float", 0.0, float(MAX_COUNTER)),
    "framesPerSecond": ("float", 0.0, MAX_FRAMES_PER_SECOND),
    "frameWidth": ("int", 0, MAX_FRAME_SIDE),
    "frameHeight": ("int", 0, MAX_FRAME_SIDE),
}
_REMOTE_FIELDS = {"roundTripTime": ("float", 0.0, MAX_SECONDS), "fractionLost": ("float", 0.0, 1.0)}
_PAIR_FIELDS = {"currentRoundTripTime": ("float", 0.0, MAX_SECONDS)}
_SKIPPED_KINDS = frozenset({"video"})
"Remote-inbound entries of these kinds are skipped (inbound video is read: InboundVideo)."


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
class InboundVideo:
    """One inbound-rtp video stream the participant receives (W3C names in comments)."""

    stream_id: str
    freeze_count: int | None = None
    "freezeCount: cumulative W3C freezes."
    total_freezes_duration_seconds: float | None = None
    "totalFreezesDuration: their summed length, cumulative."
    frames_per_second: float | None = None
    "framesPerSecond: frames decoded in the last second."
    frame_width: int | None = None
    frame_height: int | None = None
    "frameWidth, frameHeight of the last decoded frame."


@dataclass(frozen=True)
class HeardSample:
    """One validated probe sample."""

    timestamp_ms: float
    "When the probe read getStats, ms since the epoch on the probe's clock."
    inbound: tuple[InboundAudio, ...]
    rtt_seconds: float | None
    "currentRoundTripTime of the transport's selected candidate pair, else of a nominated one"
    " that succeeded, else the audio remote-inbound roundTripTime."
    remote_fraction_lost: float | None
    "Loss of this participant's outgoing audio as the far end reported it (RTCP)."
    video: tuple[InboundVideo, ...] = ()
    "The inbound video streams, if the participant receives video."


def _number(entry: Mapping[str, object], key: str, spec: tuple[str, float, float]) -> float | None:
    if key not in entry:
        return None
    kind, low, high = spec
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HeardError(f"{key} must be a number")
    if kind == "int" and not isinstance(value, int):
        raise HeardError(f"{key} must be an integer")
    # Compared as they are: int-with-float comparisons are exact, while math.isfinite() or
    # float() of an int past 1e308 raises OverflowError.
    if (isinstance(value, float) and not math.isfinite(value)) or not low <= value <= high:
        raise HeardError(f"{key} out of range: {repr(value)[:40]}")
    return float(value) if kind == "float" else value


def _check_id(entry: Mapping[str, object], what: str) -> str:
    stream_id = entry.get("id")
    if not isinstance(stream_id, str) or not 0 < len(stream_id) <= MAX_ID_CHARS:
        raise HeardError(f"{what} needs an id of 1–{MAX_ID_CHARS} characters")
    return stream_id


def _audio(entry: Mapping[str, object], what: str, *, default: str | None = None) -> bool:
    """True for an audio entry, False for one of a kind we skip (video); else HeardError."""
    kind = entry.get("kind", default)
    if kind == "audio":
        return True
    if isinstance(kind, str) and kind in _SKIPPED_KINDS:
        return False
    raise HeardError(f'{what} kind must be "audio" or "video"')


def _inbound(entry: Mapping[str, object]) -> InboundAudio:
    stream_id = _check_id(entry, "inbound-rtp")
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
        stream_id=stream_id,
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


def _video(entry: Mapping[str, object]) -> InboundVideo:
    stream_id = _check_id(entry, "inbound-rtp")
    v = {key: _number(entry, key, spec) for key, spec in _VIDEO_FIELDS.items()}

    def as_int(x: float | None) -> int | None:
        return None if x is None else int(x)

    return InboundVideo(
        stream_id=stream_id,
        freeze_count=as_int(v["freezeCount"]),
        total_freezes_duration_seconds=v["totalFreezesDuration"],
        frames_per_second=v["framesPerSecond"],
        frame_width=as_int(v["frameWidth"]),
        frame_height=as_int(v["frameHeight"]),
    )


def parse_sample(doc: object) -> HeardSample:
    """Schema, types and ranges of one sample (no comparison with earlier ones)."""
    if not isinstance(doc, dict):
        raise HeardError("body must be a JSON object")
    extra = sorted(set(doc) - {"timestamp", "stats"})
    if extra:
        raise HeardError(f"unknown top-level field: {extra[0][:40]!r}")
    timestamp = _number(doc, "timestamp", ("float", MIN_TIMESTAMP_MS, MAX_TIMESTAMP_MS))
    if timestamp is None:
        raise HeardError("timestamp (ms since the epoch) is required")
    entries = doc.get("stats")
    if not isinstance(entries, list) or not 0 < len(entries) <= MAX_STATS_ENTRIES:
        raise HeardError(f"stats must be a list of 1–{MAX_STATS_ENTRIES} entries")
    inbound: list[InboundAudio] = []
    video: list[InboundVideo] = []
    pair_rtts: dict[str, float] = {}
    "RTT of every candidate pair that has one, by id."
    nominated_rtt: float | None = None
    selected_pair: str | None = None
    remote_rtt: float | None = None
    fraction_lost: float | None = None
    for entry in entries:
        if not isinstance(entry, dict):
            raise HeardError("every stats entry must be an object")
        kind = entry.get("type")
        if kind == "inbound-rtp":
            if _audio(entry, kind):
                inbound.append(_inbound(entry))
            else:
                video.append(_video(entry))
        elif kind == "remote-inbound-rtp":
            # Remote-inbound is the far end's view of what we send: audio by default.
            if not _audio(entry, kind, default="audio"):
                continue
            _check_id(entry, kind)
            rtt = _number(entry, "roundTripTime", _REMOTE_FIELDS["roundTripTime"])
            lost = _number(entry, "fractionLost", _REMOTE_FIELDS["fractionLost"])
            remote_rtt = remote_rtt if rtt is None else rtt
            fraction_lost = fraction_lost if lost is None else lost
        elif kind == "candidate-pair":
            pair_id = _check_id(entry, kind)
            nominated = entry.get("nominated", False)
            if not isinstance(nominated, bool):
                raise HeardError("candidate-pair nominated must be true or false")
            rtt = _number(entry, "currentRoundTripTime", _PAIR_FIELDS["currentRoundTripTime"])
            if rtt is not None:
                pair_rtts[pair_id] = rtt
                # A pair nominated before a network change stays nominated once it failed.
                if nominated and entry.get("state", "succeeded") == "succeeded":
                    nominated_rtt = rtt
        elif kind == "transport":
            selected = entry.get("selectedCandidatePairId")
            if selected is not None and not isinstance(selected, str):
                raise HeardError("transport selectedCandidatePairId must be a string")
            selected_pair = selected or selected_pair
        # Any other type (codec, outbound-rtp, local-candidate, certificate, …) is not read.
    if not inbound:
        raise HeardError("no inbound-rtp audio entry")
    if len(inbound) > MAX_INBOUND_STREAMS:
        raise HeardError(f"more than {MAX_INBOUND_STREAMS} inbound-rtp entries")
    if len(video) > MAX_INBOUND_STREAMS:
        raise HeardError(f"more than {MAX_INBOUND_STREAMS} inbound-rtp video entries")
    ids = [s.stream_id for s in inbound] + [s.stream_id for s in video]
    if len(set(ids)) != len(ids):
        raise HeardError("duplicate inbound-rtp id")
    return HeardSample(
        timestamp_ms=float(timestamp),
        inbound=tuple(inbound),
        rtt_seconds=_first_known(pair_rtts.get(selected_pair or ""), nominated_rtt, remote_rtt),
        remote_fraction_lost=fraction_lost,
        video=tuple(video),
    )


def _first_known(*values: float | None) -> float | None:
    return next((value for value in values if value is not None), None)


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
