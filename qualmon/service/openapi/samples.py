"""The schema of what probes post: W3C getStats entries, known fields typed, others allowed."""

from __future__ import annotations

from ...core.heard_sample import (
    MAX_COUNTER,
    MAX_FRAME_SIDE,
    MAX_FRAMES_PER_SECOND,
    MAX_ID_CHARS,
    MAX_INBOUND_STREAMS,
    MAX_SECONDS,
    MAX_STATS_ENTRIES,
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
)
from .schemas import Schema, described


def _number(low: float, high: float, *, integer: bool = False) -> Schema:
    return {"type": "integer" if integer else "number", "minimum": low, "maximum": high}


_STREAM_ID: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS}
_KIND: Schema = {
    "enum": ["audio", "video"],
    "description": "inbound video entries are read (InboundVideo), remote-inbound ones skipped.",
}
_INBOUND_AUDIO: Schema = {
    "description": "An inbound-rtp audio stream; cumulative counters.",
    "properties": {
        "id": _STREAM_ID,
        "packetsReceived": _number(0, MAX_COUNTER, integer=True),
        "packetsLost": _number(-MAX_COUNTER, MAX_COUNTER, integer=True),
        "jitter": _number(0, MAX_SECONDS),
        "concealedSamples": _number(0, MAX_COUNTER, integer=True),
        "silentConcealedSamples": _number(0, MAX_COUNTER, integer=True),
        "concealmentEvents": _number(0, MAX_COUNTER, integer=True),
        "totalSamplesReceived": _number(0, MAX_COUNTER, integer=True),
        "jitterBufferDelay": _number(0, MAX_COUNTER),
        "jitterBufferEmittedCount": _number(0, MAX_COUNTER, integer=True),
        "audioLevel": _number(0, 1),
    },
    "required": ["id", "packetsReceived"],
}
_INBOUND_VIDEO: Schema = {
    "description": "An inbound-rtp video stream; freezes as W3C counts them, cumulative.",
    "properties": {
        "id": _STREAM_ID,
        "freezeCount": _number(0, MAX_COUNTER, integer=True),
        "totalFreezesDuration": _number(0, MAX_COUNTER),
        "framesPerSecond": _number(0, MAX_FRAMES_PER_SECOND),
        "frameWidth": _number(0, MAX_FRAME_SIDE, integer=True),
        "frameHeight": _number(0, MAX_FRAME_SIDE, integer=True),
    },
    "required": ["id"],
}
_REMOTE_AUDIO: Schema = {
    "description": "The far end's view of this participant's audio (kind defaults to audio).",
    "properties": {
        "id": _STREAM_ID,
        "roundTripTime": _number(0, MAX_SECONDS),
        "fractionLost": _number(0, 1),
    },
    "required": ["id"],
}
_CANDIDATE_PAIR: Schema = {
    "properties": {
        "id": _STREAM_ID,
        "nominated": {"type": "boolean"},
        "currentRoundTripTime": _number(0, MAX_SECONDS),
        "state": {"type": "string"},
    },
    "required": ["id"],
}
_TRANSPORT: Schema = {
    "description": "Names the pair whose currentRoundTripTime is the RTT.",
    "properties": {"selectedCandidatePairId": {"type": "string"}},
}


def _when(then: Schema, **consts: str) -> Schema:
    """`then` applies to an entry whose `type` (and other fields, where present) match."""
    condition = {
        "properties": {name: {"const": value} for name, value in consts.items()},
        "required": ["type"],
    }
    return {"if": condition, "then": then}


INBOUND_AUDIO_ENTRY: Schema = {
    "properties": {"type": {"const": "inbound-rtp"}, "kind": {"const": "audio"}},
    "required": ["type", "kind"],
}
STATS_SAMPLE: Schema = {
    "type": "object",
    "description": "W3C getStats entries, e.g. `Array.from((await pc.getStats()).values())`, "
    "units as W3C (seconds, audio samples). Every field that is read is checked; other fields "
    "and entry types are ignored.",
    "properties": {
        "timestamp": described(
            _number(MIN_TIMESTAMP_MS, MAX_TIMESTAMP_MS), "When getStats was read, ms since 1970."
        ),
        "stats": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_STATS_ENTRIES,
            "description": "At least one inbound-rtp audio entry, at most "
            f"{MAX_INBOUND_STREAMS}, each of its own id.",
            "contains": INBOUND_AUDIO_ENTRY,
            "maxContains": MAX_INBOUND_STREAMS,
            "items": {
                "type": "object",
                "properties": {"type": {"type": "string"}},
                "allOf": [
                    _when(
                        {"properties": {"kind": _KIND}, "required": ["kind"]}, type="inbound-rtp"
                    ),
                    _when(_INBOUND_AUDIO, type="inbound-rtp", kind="audio"),
                    _when(_INBOUND_VIDEO, type="inbound-rtp", kind="video"),
                    _when({"properties": {"kind": _KIND}}, type="remote-inbound-rtp"),
                    _when(_REMOTE_AUDIO, type="remote-inbound-rtp", kind="audio"),
                    _when(_CANDIDATE_PAIR, type="candidate-pair"),
                    _when(_TRANSPORT, type="transport"),
                ],
            },
        },
    },
    "required": ["timestamp", "stats"],
    "additionalProperties": False,
}
