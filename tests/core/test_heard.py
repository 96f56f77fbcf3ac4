"""What a participant hears: sample validation, deltas, windows, MOS and the warning rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qualmon.core.emodel import mos_from_r, r_factor
from qualmon.core.heard import (
    HeardError,
    HeardTracker,
    InboundAudio,
    heard_mos,
    interval_between,
    parse_sample,
    sample_from_json,
)
from qualmon.core.warnings import DEFAULT_RULES, WarningEngine

T0 = 1_764_000_000_000.0  # ms since the epoch


def inbound(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": "inbound-rtp",
        "kind": "audio",
        "id": "IT01A",
        "packetsReceived": 1000,
        "packetsLost": 10,
        "jitter": 0.004,
        "concealedSamples": 4800,
        "silentConcealedSamples": 960,
        "concealmentEvents": 3,
        "totalSamplesReceived": 960_000,
        "jitterBufferDelay": 4800.0,
        "jitterBufferEmittedCount": 96_000,
        "audioLevel": 0.1,
    }
    entry.update(overrides)
    return entry


def doc(timestamp: float = T0, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": timestamp, "stats": list(entries) or [inbound()]}


def grown(base: dict[str, Any], seconds: float, *, audible: int = 0, silent: int = 0) -> dict:
    """base after `seconds` of 48 kHz audio in 20 ms packets, some of it concealed."""
    samples = int(48000 * seconds)
    return inbound(
        id=base["id"],
        packetsReceived=base["packetsReceived"] + int(50 * seconds),
        packetsLost=base["packetsLost"],
        concealedSamples=base["concealedSamples"] + audible + silent,
        silentConcealedSamples=base["silentConcealedSamples"] + silent,
        concealmentEvents=base["concealmentEvents"] + (1 if audible else 0),
        totalSamplesReceived=base["totalSamplesReceived"] + samples,
        jitterBufferDelay=base["jitterBufferDelay"] + 0.060 * samples,
        jitterBufferEmittedCount=base["jitterBufferEmittedCount"] + samples,
    )


def test_parses_the_w3c_shape() -> None:
    """Inbound counters, the nominated pair's RTT (over remote-inbound's) and remote loss."""
    sample = parse_sample(
        doc(
            T0,
            inbound(),
            {"type": "remote-inbound-rtp", "id": "RI1", "roundTripTime": 0.2, "fractionLost": 0.5},
            {"type": "candidate-pair", "id": "CP1", "nominated": True, "currentRoundTripTime": 0.1},
        )
    )
    assert sample.timestamp_ms == T0
    (stream,) = sample.inbound
    assert stream.packets_received == 1000 and stream.concealed_samples == 4800
    assert stream.jitter_buffer_delay_seconds == 4800.0
    assert sample.rtt_seconds == 0.1
    assert sample.remote_fraction_lost == 0.5
    only_remote = parse_sample(doc(T0, inbound(), {"type": "remote-inbound-rtp", "id": "R"}))
    assert only_remote.rtt_seconds is None
    unnominated = {"type": "candidate-pair", "id": "C", "nominated": False}
    assert (
        parse_sample(doc(T0, inbound(), unnominated | {"currentRoundTripTime": 1.0})).rtt_seconds
        is None
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([], "JSON object"),
        ({"stats": [inbound()]}, "timestamp"),
        ({"timestamp": "now", "stats": [inbound()]}, "timestamp must be a number"),
        ({"timestamp": 12.0, "stats": [inbound()]}, "timestamp out of range"),
        ({"timestamp": T0, "stats": []}, "stats must be a list"),
        ({"timestamp": T0, "stats": [inbound()], "extra": 1}, "unknown top-level field"),
        (doc(T0, inbound(packetsReceived="12")), "packetsReceived must be a number"),
        (doc(T0, inbound(packetsReceived=1.5)), "packetsReceived must be an integer"),
        (doc(T0, inbound(packetsReceived=True)), "packetsReceived must be a number"),
        (doc(T0, inbound(packetsReceived=-1)), "packetsReceived out of range"),
        (doc(T0, inbound(jitter=-0.1)), "jitter out of range"),
        (doc(T0, inbound(audioLevel=1.5)), "audioLevel out of range"),
        (doc(T0, inbound(kind="video")), "no inbound-rtp audio entry"),
        (doc(T0, inbound(kind="screen")), 'inbound-rtp kind must be "audio" or "video"'),
        (doc(T0, inbound(kind=None)), 'inbound-rtp kind must be "audio" or "video"'),
        (doc(T0, inbound(id="")), "needs an id"),
        (doc(T0, inbound(silentConcealedSamples=5000)), "silentConcealedSamples exceeds"),
        (doc(T0, inbound(concealedSamples=10**7)), "concealedSamples exceeds"),
        (doc(T0, inbound(), inbound()), "duplicate inbound-rtp id"),
        (doc(T0, {"type": "codec", "id": "C"}), "no inbound-rtp audio entry"),
        (doc(T0, inbound(), {"type": "remote-inbound-rtp", "kind": 1}), "kind must be"),
        (doc(T0, inbound(), {"type": "candidate-pair", "id": 7}), "candidate-pair needs an id"),
        (
            doc(T0, inbound(), {"type": "transport", "selectedCandidatePairId": 7}),
            "selectedCandidatePairId must be a string",
        ),
        (doc(T0, {"type": "remote-inbound-rtp", "id": "R"}), "no inbound-rtp audio entry"),
        (
            doc(T0, inbound(), {"type": "remote-inbound-rtp", "id": "R", "fractionLost": 2}),
            "fractionLost out of range",
        ),
        (
            doc(T0, inbound(), {"type": "candidate-pair", "id": "C", "nominated": "yes"}),
            "nominated must be true or false",
        ),
    ],
)
def test_rejects_malformed_samples(body: Any, reason: str) -> None:
    """Every schema, type and range error names what is wrong in one line."""
    with pytest.raises(HeardError, match=reason) as caught:
        parse_sample(body)
    assert "\n" not in str(caught.value)


CHROME_STATS = Path(__file__).parent / "fixtures" / "chrome_getstats.json"
"""What Chrome's `Array.from((await pc.getStats()).values())` gives in an audio+video call
with a data channel: every W3C stats type, unfiltered (written from the webrtc-stats field
lists and Chrome's own additions such as googTimingFrameInfo)."""


def chrome_dump() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(CHROME_STATS.read_text())
    return entries


def chrome_entry(entries: list[dict[str, Any]], type_: str, kind: str) -> dict[str, Any]:
    (entry,) = [e for e in entries if e["type"] == type_ and e.get("kind") == kind]
    return entry


def test_a_whole_chrome_getstats_dump_is_read() -> None:
    """An unfiltered browser dump is accepted: unknown fields and types are skipped, video
    entries too, and the sample holds exactly the numbers of its one inbound audio entry."""
    entries = chrome_dump()
    assert {e["type"] for e in entries} == {
        "peer-connection",
        "transport",
        "certificate",
        "codec",
        "candidate-pair",
        "local-candidate",
        "remote-candidate",
        "inbound-rtp",
        "outbound-rtp",
        "remote-inbound-rtp",
        "remote-outbound-rtp",
        "media-source",
        "media-playout",
        "data-channel",
    }
    audio = chrome_entry(entries, "inbound-rtp", "audio")
    assert {"codecId", "totalAudioEnergy", "playoutId", "jitterBufferTargetDelay"} <= set(audio)
    sample = sample_from_json(json.dumps({"timestamp": T0, "stats": entries}))
    assert sample.inbound == (
        InboundAudio(
            stream_id="IT01A2876543210",
            packets_received=4712,
            packets_lost=23,
            jitter_seconds=0.006,
            concealed_samples=15360,
            silent_concealed_samples=3840,
            concealment_events=11,
            total_samples_received=4531200,
            jitter_buffer_delay_seconds=4431.552,
            jitter_buffer_emitted_count=4521600,
            audio_level=0.0732,
        ),
    )
    # The transport's selected pair, not the older pair that is still flagged nominated;
    # remote loss from the audio remote-inbound entry, not the video one.
    assert sample.rtt_seconds == 0.043
    assert sample.remote_fraction_lost == 0.0117


@pytest.mark.parametrize(
    ("type_", "kind", "field", "value", "reason"),
    [
        ("inbound-rtp", "audio", "jitter", "low", "jitter must be a number"),
        ("inbound-rtp", "audio", "packetsLost", 1.5, "packetsLost must be an integer"),
        ("inbound-rtp", "audio", "audioLevel", 1.01, "audioLevel out of range: 1.01"),
        ("inbound-rtp", "audio", "concealedSamples", -1, "concealedSamples out of range"),
        ("inbound-rtp", "audio", "packetsReceived", None, "packetsReceived must be a number"),
        ("inbound-rtp", "audio", "id", "", "inbound-rtp needs an id"),
        ("remote-inbound-rtp", "audio", "roundTripTime", 61, "roundTripTime out of range"),
        ("remote-inbound-rtp", "audio", "fractionLost", True, "fractionLost must be a number"),
    ],
)
def test_known_fields_of_a_whole_dump_are_still_checked(
    type_: str, kind: str, field: str, value: object, reason: str
) -> None:
    """Ignoring unknown fields loosens nothing: a read field of the wrong type or out of
    range refuses the sample, and the reason names the field."""
    entries = chrome_dump()
    chrome_entry(entries, type_, kind)[field] = value
    with pytest.raises(HeardError, match=reason) as caught:
        parse_sample({"timestamp": T0, "stats": entries})
    assert "\n" not in str(caught.value)


def test_a_dump_without_inbound_audio_is_refused() -> None:
    """A sample must say what the participant hears: video alone is not enough."""
    audio = chrome_entry(chrome_dump(), "inbound-rtp", "audio")
    entries = [e for e in chrome_dump() if e != audio]
    with pytest.raises(HeardError, match="no inbound-rtp audio entry"):
        parse_sample({"timestamp": T0, "stats": entries})


def test_the_nominated_pair_counts_without_a_selected_one() -> None:
    """Without a transport naming its selected pair, the nominated pair that succeeded
    gives the RTT (not the failed one from before a network change); without pairs, the
    audio remote-inbound entry does."""
    entries = [e for e in chrome_dump() if e["type"] != "transport"]
    assert parse_sample({"timestamp": T0, "stats": entries}).rtt_seconds == 0.043
    pairs = [e for e in entries if e["type"] != "candidate-pair"]
    assert parse_sample({"timestamp": T0, "stats": pairs}).rtt_seconds == 0.0451


def test_rejects_what_json_does_not_allow() -> None:
    """NaN/Infinity and garbage are not JSON; deep nesting does not crash the parser."""
    with pytest.raises(HeardError, match="not a number JSON allows"):
        sample_from_json('{"timestamp": NaN, "stats": []}')
    with pytest.raises(HeardError, match="not valid JSON"):
        sample_from_json(b"{nope")
    with pytest.raises(HeardError):
        sample_from_json("[" * 100_000)
    assert sample_from_json(json.dumps(doc())).timestamp_ms == T0


@pytest.mark.parametrize(
    "field",
    [
        "packetsReceived",
        "concealedSamples",
        "silentConcealedSamples",
        "concealmentEvents",
        "totalSamplesReceived",
        "jitterBufferDelay",
        "jitterBufferEmittedCount",
    ],
)
def test_a_cumulative_counter_going_down_is_rejected(field: str) -> None:
    """A reset or decrease within one stream id is refused and changes nothing."""
    first = inbound()
    tracker = HeardTracker()
    tracker.add(parse_sample(doc(T0, first)), received_at=0.0)
    before = tracker.snapshot(1.0)
    lower = first | {field: first[field] - 1}
    if field == "concealedSamples":
        lower["silentConcealedSamples"] = 0
    with pytest.raises(HeardError, match="went down"):
        tracker.add(parse_sample(doc(T0 + 2000, lower)), received_at=2.0)
    assert tracker.snapshot(1.0) == before
    assert tracker.last is not None and tracker.last.timestamp_ms == T0


def test_time_must_advance_and_lost_may_shrink() -> None:
    """Timestamps must increase; packetsLost may go down (W3C: late packets)."""
    tracker = HeardTracker()
    tracker.add(parse_sample(doc(T0)), received_at=0.0)
    with pytest.raises(HeardError, match="timestamp must increase"):
        tracker.add(parse_sample(doc(T0)), received_at=1.0)
    later = parse_sample(doc(T0 + 1000, inbound(packetsLost=8)))
    interval = tracker.add(later, received_at=1.0)
    assert interval is not None and interval.packets_lost == -2


def test_a_new_stream_id_is_a_new_baseline() -> None:
    """Counters of a stream seen for the first time are not deltas (may be lower)."""
    previous = parse_sample(doc(T0, inbound(id="A")))
    sample = parse_sample(
        doc(
            T0 + 2000,
            inbound(id="B", packetsReceived=5, concealedSamples=0, silentConcealedSamples=0),
        )
    )
    interval = interval_between(previous, sample)
    assert interval.packets_received == 0 and interval.total_samples == 0
    assert interval.audible_concealment_ratio is None


def test_audible_concealment_ratio_per_interval() -> None:
    """(Δconcealed − Δsilent concealed) / Δtotal; silent concealment is not damage."""
    a = inbound()
    b = grown(a, 2.0, audible=960, silent=4800)  # 96 000 samples, 1 % audible
    interval = interval_between(parse_sample(doc(T0, a)), parse_sample(doc(T0 + 2000, b)))
    assert interval.total_samples == 96_000
    assert interval.concealed_samples == 960 + 4800
    assert interval.audible_concealment_ratio == pytest.approx(0.01)
    assert interval.jitter_buffer_delay_seconds / interval.jitter_buffer_emitted_count == (
        pytest.approx(0.060)
    )


def test_window_covers_the_last_15_seconds() -> None:
    """A concealment burst weighs in the ratio until 15 s of later samples push it out."""
    tracker = HeardTracker()
    entry = inbound()
    tracker.add(parse_sample(doc(T0, entry)), received_at=0.0)
    entry = grown(entry, 2.0, audible=9600)  # 10 % of one 2 s interval
    tracker.add(parse_sample(doc(T0 + 2000, entry)), received_at=2.0)
    assert tracker.audible_concealment_ratio() == pytest.approx(0.10)
    for i in range(2, 10):
        entry = grown(entry, 2.0)
        tracker.add(parse_sample(doc(T0 + 2000 * i, entry)), received_at=2.0 * i)
        expected = 9600 / (96_000 * i) if 2000 * i - 2000 < 15_000 else 0.0
        assert tracker.audible_concealment_ratio() == pytest.approx(expected), i
    snap = tracker.snapshot(18.0)
    assert snap.window_seconds == pytest.approx(16.0)  # whole intervals ending inside 15 s
    assert snap.audible_concealment_ratio == 0.0
    assert snap.samples == 10
    assert snap.total_samples_received == 960_000 + 9 * 96_000
    assert snap.concealed_samples == 4800 + 9600
    assert snap.jitter_buffer_delay_seconds == pytest.approx(0.060)
    assert snap.seconds_since_last_sample == pytest.approx(0.0)
    assert tracker.fresh(18.0 + 10.0) and not tracker.fresh(18.0 + 10.1)


def test_loss_and_mos_use_the_jitter_buffer_delay() -> None:
    """Loss as received over the window; MOS delay = rtt/2 + jitter-buffer delay + 20 ms."""
    tracker = HeardTracker()
    pair = {"type": "candidate-pair", "id": "P", "nominated": True, "currentRoundTripTime": 0.2}
    a = inbound()
    tracker.add(parse_sample(doc(T0, a, pair)), received_at=0.0)
    assert tracker.snapshot(0.0).mos is None  # one sample: no interval yet
    b = grown(a, 2.0) | {"packetsReceived": a["packetsReceived"] + 98, "packetsLost": 12}
    tracker.add(parse_sample(doc(T0 + 2000, b, pair)), received_at=2.0)
    snap = tracker.snapshot(2.0)
    assert snap.loss_ratio == pytest.approx(2 / 100)
    assert snap.rtt_seconds == 0.2
    assert snap.jitter_buffer_delay_seconds == pytest.approx(0.060)
    # Ta = 100 + 60 + 20 = 180 ms
    expected = mos_from_r(r_factor(one_way_delay_seconds=0.180, loss_ratio=0.02))
    assert snap.mos == pytest.approx(expected)
    # REFERENCE.md: Ta 200 ms with 2 % random loss → MOS 4.14
    assert heard_mos(
        rtt_seconds=0.2, jitter_buffer_delay_seconds=0.08, jitter_seconds=None, loss_ratio=0.02
    ) == pytest.approx(4.14, abs=0.005)
    # No jitter-buffer figures: a buffer of twice the jitter is assumed.
    assert heard_mos(
        rtt_seconds=0.2, jitter_buffer_delay_seconds=None, jitter_seconds=0.04, loss_ratio=0.02
    ) == pytest.approx(4.14, abs=0.005)


def test_audible_concealment_warning_has_hysteresis() -> None:
    """On at ≥ 3 %, stays on between 1 % and 3 %, off only at ≤ 1 %."""
    engine = WarningEngine(rules=tuple(r for r in DEFAULT_RULES if r.kind == "audible_concealment"))
    key = ("audible_concealment", "client")
    events = []
    t = 0.0
    for value in [0.02] * 6 + [0.035] * 2:
        events += engine.evaluate(t, {key: value})
        t += 0.5
    assert [e.type for e in events] == ["raised"]
    assert events[0].therapist_text.startswith("The client's connection is losing")
    for _ in range(40):  # 20 s at 2 %: below the raise threshold, above the clear one
        events += engine.evaluate(t, {key: 0.02})
        t += 0.5
    assert [e.type for e in events] == ["raised"]
    for _ in range(6):
        events += engine.evaluate(t, {key: 0.01})
        t += 0.5
    assert [e.type for e in events] == ["raised", "cleared"]
    # Rules without a clear threshold still clear just below the raise threshold.
    assert next(r for r in DEFAULT_RULES if r.kind == "high_jitter").clear_threshold is None


def test_refusals_quote_what_the_sender_wrote() -> None:
    """Found by fuzzing: a key or stream id holding a CR or LF made the 'one line' reason two
    lines; what the sender wrote is quoted (repr) and cut to 40 characters."""
    with pytest.raises(HeardError) as caught:
        parse_sample({"timestamp": T0, "stats": [inbound()], "\r0": 1})
    assert str(caught.value) == "unknown top-level field: '\\r0'"
    tracker = HeardTracker()
    tracker.add(parse_sample(doc(T0, inbound(id="a\nb"))), received_at=0.0)
    with pytest.raises(HeardError) as caught:
        tracker.add(
            parse_sample(doc(T0 + 2000, inbound(id="a\nb", packetsReceived=1))), received_at=2.0
        )
    assert str(caught.value) == "packetsReceived went down on stream 'a\\nb'"
    with pytest.raises(HeardError) as caught:
        parse_sample(doc(T0, inbound(packetsReceived=10**100)))
    assert str(caught.value) == "packetsReceived out of range: " + "1" + "0" * 39


@pytest.mark.parametrize("field", ["jitter", "jitterBufferDelay", "audioLevel", "packetsLost"])
def test_an_integer_too_large_for_a_float_is_out_of_range(field: str) -> None:
    """Found by fuzzing: `"jitter": 1000…0` (401 digits) made math.isfinite() raise
    OverflowError, a 500 at the endpoint; it is out of range like any other number."""
    body = json.dumps(doc(T0, inbound(**{field: 10**400})))
    with pytest.raises(HeardError, match=f"^{field} out of range: 1000"):
        sample_from_json(body)
    with pytest.raises(HeardError, match=r"^timestamp out of range"):
        sample_from_json(json.dumps(doc(10**400)))
