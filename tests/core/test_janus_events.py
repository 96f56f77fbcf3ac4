"""Janus event handler posts become typed events; anything else is counted, never raised."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qualmon.core.janus_events import EventsError, MediaStats, RoomEvent, parse_event, parse_post


def media(**event: Any) -> dict[str, Any]:
    body = {"mid": "0", "media": "audio", "base": 48000, "rtt": 0, "lost": 0}
    return {
        "type": 32,
        "subtype": 3,
        "session_id": 11,
        "handle_id": 21,
        "opaque_id": "app-1",
        "event": {**body, "packets-received": 50, **event},
    }


def room(kind: str, **data: Any) -> dict[str, Any]:
    return {
        "type": 64,
        "session_id": 11,
        "handle_id": 21,
        "opaque_id": "app-1",
        "event": {
            "plugin": "janus.plugin.videoroom",
            "data": {"event": kind, "room": 1234, **data},
        },
    }


def test_media_statistics_are_typed() -> None:
    """rtt and jitter in whole ms become seconds; an rtt of 0 (not measured) is None."""
    event = parse_event(media(rtt=100, lost=7, **{"in-link-quality": 93, "jitter-local": 10}))
    assert event == MediaStats(11, 21, "app-1", "audio", 0.1, 7, 50, 93, None, 0.01)
    assert isinstance(parse_event(media()), MediaStats)
    assert parse_event(media()).rtt_seconds is None  # type: ignore[union-attr]


def test_videoroom_events_are_typed() -> None:
    assert parse_event(room("joined", id=5551, display="a")) == RoomEvent(
        "joined", 11, 21, "app-1", 1234, 5551
    )
    subscribing = parse_event(room("subscribing", streams=[{"feed_id": 5552, "mid": "0"}]))
    assert subscribing == RoomEvent("subscribing", 11, 21, "app-1", 1234, None, (5552,))
    # Janus sends these from no handle: room and id only.
    data = {"event": "leaving", "room": 1234, "id": 5551}
    leaving = {"type": 64, "event": {"plugin": "janus.plugin.videoroom", "data": data}}
    assert parse_event(leaving) == RoomEvent("leaving", None, None, None, 1234, 5551)


@pytest.mark.parametrize(
    "entry",
    [
        {"type": 1, "event": {"name": "created"}},
        {"type": 128, "event": {}},
        media(media="data"),
        room("talking", id=1),
        {**room("joined", id=1), "event": {"plugin": "janus.plugin.echotest", "data": {}}},
    ],
)
def test_events_qualmon_does_not_use_are_none(entry: dict[str, Any]) -> None:
    assert parse_event(entry) is None


@pytest.mark.parametrize(
    "entry",
    [
        None,
        [],
        "x",
        {"type": "32"},
        {"type": True},
        {**media(), "session_id": "11"},
        {**media(), "handle_id": -1},
        {k: v for k, v in room("joined", id=1).items() if k != "session_id"},
        {**media(), "event": []},
        room("joined"),
        room("joined", id=True),
        {**room("joined", id=1), "event": {"plugin": "janus.plugin.videoroom", "data": 3}},
    ],
)
def test_malformed_entries_raise_events_error(entry: object) -> None:
    with pytest.raises(EventsError):
        parse_event(entry)


def test_a_grouped_post_counts_what_it_skips() -> None:
    body = json.dumps([media(rtt=50), {"type": 1}, {"type": "x"}, room("joined", id=5)])
    parsed = parse_post(body.encode())
    assert len(parsed.events) == 2 and parsed.ignored == 1 and parsed.malformed == 1
    assert parse_post(json.dumps(media()).encode()).events  # a single event, ungrouped


@pytest.mark.parametrize("body", [b"", b"\xff", b"{", b"[" * 100_000, b"NaN-ish"])
def test_a_post_that_is_not_json_is_one_error(body: bytes) -> None:
    with pytest.raises(EventsError):
        parse_post(body)
