"""What a participant's picture looks like to them: inbound video stats from their probe,
validated and summed into `heard.video`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qualmon.core.heard import (
    HeardError,
    HeardTracker,
    HeardVideo,
    InboundVideo,
    parse_sample,
    sample_from_json,
)

from .test_heard import T0, chrome_dump, inbound


def video_entry(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": "inbound-rtp",
        "kind": "video",
        "id": "IT01V",
        "freezeCount": 2,
        "totalFreezesDuration": 0.6,
        "framesPerSecond": 29.5,
        "frameWidth": 640,
        "frameHeight": 480,
    }
    entry.update(overrides)
    return {k: v for k, v in entry.items() if v is not None}


def video_doc(i: int, **video: Any) -> dict[str, Any]:
    """The i-th sample, 2 s apart, with one inbound audio and one inbound video entry."""
    audio = inbound(packetsReceived=1000 + 100 * i, totalSamplesReceived=960_000 + 96_000 * i)
    return {"timestamp": T0 + 2000 * i, "stats": [audio, video_entry(**video)]}


def test_chromes_inbound_video_entry_is_read() -> None:
    """The five W3C fields of Chrome's inbound video entry; the rest of it is ignored."""
    sample = sample_from_json(json.dumps({"timestamp": T0, "stats": chrome_dump()}))
    assert sample.video == (
        InboundVideo(
            stream_id="IT01V3012456789",
            freeze_count=1,
            total_freezes_duration_seconds=0.41,
            frames_per_second=30.0,
            frame_width=640,
            frame_height=360,
        ),
    )


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("freezeCount", -1, "freezeCount out of range"),
        ("freezeCount", 1.5, "freezeCount must be an integer"),
        ("totalFreezesDuration", "long", "totalFreezesDuration must be a number"),
        ("framesPerSecond", 1e6, "framesPerSecond out of range"),
        ("frameWidth", 70000, "frameWidth out of range"),
        ("frameHeight", True, "frameHeight must be a number"),
        ("id", "", "inbound-rtp needs an id"),
    ],
)
def test_read_video_fields_are_checked(field: str, value: object, reason: str) -> None:
    """Type and range of every video field that is read; the reason names it."""
    doc = video_doc(0)
    doc["stats"][1][field] = value
    with pytest.raises(HeardError, match=reason) as caught:
        parse_sample(doc)
    assert "\n" not in str(caught.value)


def test_video_and_audio_ids_must_differ() -> None:
    with pytest.raises(HeardError, match="duplicate inbound-rtp id"):
        parse_sample(video_doc(0, id="IT01A"))


def test_heard_video_sums_freezes_across_samples_and_streams() -> None:
    """Freezes grow by what each stream added; a new stream counts from its start; the
    newest frame rate and picture size are shown; None once the video is gone."""
    tracker = HeardTracker()
    assert tracker.snapshot(0.0).video is None
    tracker.add(parse_sample(video_doc(0, freezeCount=2, totalFreezesDuration=0.5)), received_at=0)
    tracker.add(parse_sample(video_doc(1, freezeCount=3, totalFreezesDuration=0.75)), received_at=2)
    assert tracker.snapshot(2.0).video == HeardVideo(3, 0.75, 29.5, 640, 480)
    renegotiated = video_doc(
        2, id="IT02V", freezeCount=1, totalFreezesDuration=0.25, framesPerSecond=12.0
    )
    tracker.add(parse_sample(renegotiated), received_at=4)
    assert tracker.snapshot(4.0).video == HeardVideo(4, 1.0, 12.0, 640, 480)
    audio = video_doc(3)["stats"][0]
    audio_only = {"timestamp": T0 + 6000, "stats": [audio]}
    tracker.add(parse_sample(audio_only), received_at=6)
    assert tracker.snapshot(6.0).video is None


def test_a_freeze_counter_going_down_refuses_the_sample() -> None:
    """Cumulative W3C counters of one stream id only grow; the refused sample changes
    nothing."""
    tracker = HeardTracker()
    tracker.add(parse_sample(video_doc(0, freezeCount=3)), received_at=0)
    for field, changes in (
        ("freezeCount", {"freezeCount": 2}),
        ("totalFreezesDuration", {"freezeCount": 3, "totalFreezesDuration": 0.5}),
    ):
        with pytest.raises(HeardError, match=f"{field} went down on stream 'IT01V'"):
            tracker.add(parse_sample(video_doc(1, **changes)), received_at=2)
    assert tracker.samples == 1
    assert tracker.snapshot(2.0).video == HeardVideo(3, 0.6, 29.5, 640, 480)


def test_fields_a_browser_leaves_out_stay_unknown() -> None:
    """Firefox reports no freezeCount: the freezes stay 0 and the rate is still shown."""
    tracker = HeardTracker()
    doc = video_doc(0, freezeCount=None, totalFreezesDuration=None, frameWidth=None)
    tracker.add(parse_sample(doc), received_at=0)
    assert tracker.snapshot(0.0).video == HeardVideo(0, 0.0, 29.5, None, 480)
