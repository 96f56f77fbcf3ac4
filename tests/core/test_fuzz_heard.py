"""Probe samples from arbitrary JSON: a sample or a one-line HeardError, and whatever is
accepted can be tracked and measured without an exception."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from qualmon.core.heard import HeardError, HeardSample, HeardTracker, sample_from_json
from qualmon.core.heard_sample import (
    MAX_COUNTER,
    MAX_FRAME_SIDE,
    MAX_FRAMES_PER_SECOND,
    MAX_SECONDS,
)

from ..fuzz_json import json_trees, mutated_json, to_json
from ..fuzzing import examples
from .test_heard import T0, chrome_dump, inbound
from .test_heard_video import video_entry

pytestmark = pytest.mark.fuzz

KEYS = (
    "timestamp",
    "stats",
    "type",
    "kind",
    "id",
    "nominated",
    "state",
    "selectedCandidatePairId",
    "packetsReceived",
    "packetsLost",
    "jitter",
    "concealedSamples",
    "silentConcealedSamples",
    "concealmentEvents",
    "totalSamplesReceived",
    "jitterBufferDelay",
    "jitterBufferEmittedCount",
    "audioLevel",
    "roundTripTime",
    "fractionLost",
    "currentRoundTripTime",
    "inbound-rtp",
    "remote-inbound-rtp",
    "candidate-pair",
    "transport",
    "audio",
    "video",
    "freezeCount",
    "totalFreezesDuration",
    "framesPerSecond",
    "frameWidth",
    "frameHeight",
)
"Names the parser reads (as keys and as values), so changes land where they matter."
SAMPLES = (
    {"timestamp": T0, "stats": [inbound()]},
    {"timestamp": T0, "stats": chrome_dump()},
    {
        "timestamp": T0,
        "stats": [
            inbound(),
            {"type": "remote-inbound-rtp", "kind": "audio", "id": "R", "roundTripTime": 0.1},
            {"type": "candidate-pair", "id": "C", "nominated": True, "currentRoundTripTime": 0.2},
            {"type": "transport", "id": "T", "selectedCandidatePairId": "C"},
        ],
    },
    {"timestamp": T0, "stats": [inbound(), video_entry()]},
)


def sample_bodies() -> st.SearchStrategy[str]:
    """Real samples changed anywhere (mostly), or JSON of any shape, or any text."""
    return st.one_of(
        mutated_json(SAMPLES, KEYS),
        mutated_json(SAMPLES, KEYS),
        mutated_json(SAMPLES, KEYS, max_changes=1),
        json_trees(KEYS).map(to_json),
        st.text(max_size=40),
    )


@examples()
@given(body=sample_bodies())
# Found by fuzzing: an integer past 1e308 in a float field raised OverflowError.
@example(
    body='{"timestamp": 1764000000000, "stats": [{"type": "inbound-rtp", "kind": "audio",'
    ' "id": "A", "packetsReceived": 1, "jitter": 1' + "0" * 400 + "}]}"
)
def test_any_json_is_a_sample_or_a_one_line_refusal(body: str) -> None:
    """Deep nesting, huge numbers, NaN/Infinity, "٣" in strings, repeated keys: sample_from_json
    returns a sample or raises HeardError in one line, never another exception; an accepted
    sample holds only finite numbers within the W3C ranges."""
    try:
        sample = sample_from_json(body)
    except HeardError as exc:
        assert len(str(exc).splitlines()) == 1, str(exc)
        return
    assert isinstance(sample, HeardSample)
    assert sample.inbound
    numbers: list[Any] = [sample.timestamp_ms, sample.rtt_seconds, sample.remote_fraction_lost]
    for stream in (*sample.inbound, *sample.video):
        numbers += [value for value in vars(stream).values() if not isinstance(value, str)]
    for value in numbers:
        assert value is None or (math.isfinite(value) and abs(value) <= MAX_COUNTER), value


COUNTER = st.integers(0, MAX_COUNTER)
LOST = st.integers(-MAX_COUNTER, MAX_COUNTER)
SECONDS = st.floats(0, MAX_SECONDS)
DELAY = st.floats(0, MAX_COUNTER)
LEVEL = st.floats(0, 1)
OPTIONAL_FIELDS = st.sets(
    st.sampled_from(
        [
            "packetsLost",
            "jitter",
            "concealmentEvents",
            "jitterBufferDelay",
            "jitterBufferEmittedCount",
            "audioLevel",
            "totalSamplesReceived",
        ]
    )
)
STEP_MS = st.sampled_from([1, 1000, 2000, 20000])
STREAM_IDS = st.sets(st.sampled_from(["A", "B"]), min_size=1)
RTT = st.one_of(st.none(), SECONDS)


@st.composite
def streams(draw: st.DrawFn, stream_id: str) -> dict[str, Any]:
    """An inbound audio entry with any in-range values (silent ≤ concealed ≤ total kept)."""
    silent, concealed, total = sorted(draw(COUNTER) for _ in range(3))
    entry: dict[str, Any] = {
        "type": "inbound-rtp",
        "kind": "audio",
        "id": stream_id,
        "packetsReceived": draw(COUNTER),
        "packetsLost": draw(LOST),
        "jitter": draw(SECONDS),
        "concealedSamples": concealed,
        "silentConcealedSamples": silent,
        "concealmentEvents": draw(COUNTER),
        "totalSamplesReceived": total,
        "jitterBufferDelay": draw(DELAY),
        "jitterBufferEmittedCount": draw(COUNTER),
        "audioLevel": draw(LEVEL),
    }
    left_out = draw(OPTIONAL_FIELDS)
    return {k: v for k, v in entry.items() if k not in left_out}


@st.composite
def videos(draw: st.DrawFn) -> dict[str, Any]:
    """An inbound video entry with any in-range values, some left out."""
    entry: dict[str, Any] = {
        "type": "inbound-rtp",
        "kind": "video",
        "id": "V",
        "freezeCount": draw(COUNTER),
        "totalFreezesDuration": draw(DELAY),
        "framesPerSecond": draw(st.floats(0, MAX_FRAMES_PER_SECOND)),
        "frameWidth": draw(st.integers(0, MAX_FRAME_SIDE)),
        "frameHeight": draw(st.integers(0, MAX_FRAME_SIDE)),
    }
    left_out = draw(st.sets(st.sampled_from(sorted(entry)[:-3])))
    return {k: v for k, v in entry.items() if k not in left_out or k == "id"}


@st.composite
def sample_sequences(draw: st.DrawFn) -> list[tuple[float, dict[str, Any]]]:
    """1..6 in-range samples a few seconds apart, on one or two stream ids."""
    out = []
    at = T0
    for _ in range(draw(st.integers(1, 6))):
        at += draw(STEP_MS)
        entries: list[dict[str, Any]] = [draw(streams(i)) for i in sorted(draw(STREAM_IDS))]
        if draw(st.booleans()):
            entries.append(draw(videos()))
        rtt = draw(RTT)
        if rtt is not None:
            entries.append({"type": "remote-inbound-rtp", "id": "R", "roundTripTime": rtt})
        out.append((at, {"timestamp": at, "stats": entries}))
    return out


@examples()
@given(sequence=sample_sequences())
def test_accepted_samples_always_make_a_snapshot(sequence: list[tuple[float, Any]]) -> None:
    """Counters at 2^53, jitter-buffer delays of years, streams coming and going: each sample
    is kept or refused with HeardError, and the snapshot's ratios stay within 0..1, its MOS
    within 1..4.5, every number finite."""
    tracker = HeardTracker()
    for at, doc in sequence:
        try:
            tracker.add(sample_from_json(to_json(doc)), received_at=(at - T0) / 1000)
        except HeardError as exc:
            assert len(str(exc).splitlines()) == 1
    snapshot = tracker.snapshot((sequence[-1][0] - T0) / 1000 + 1.0)
    for name in ("audible_concealment_ratio", "loss_ratio", "audio_level"):
        value = getattr(snapshot, name)
        assert value is None or 0.0 <= value <= 1.0, (name, value)
    assert snapshot.mos is None or 1.0 <= snapshot.mos <= 4.5, snapshot.mos
    video = vars(snapshot).pop("video", None)
    for name, value in vars(snapshot).items():
        assert name == "video" or value is None or math.isfinite(value), (name, value)
    if video is not None:
        assert video.freezes >= 0 and video.freeze_seconds >= 0
        for name, value in vars(video).items():
            assert value is None or math.isfinite(value), (name, value)
