"""Janus attach bodies and event handler posts of any shape: a request or a one-line
refusal; events typed or counted, never another exception."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from qualmon.core.janus_events import EventsError, MediaStats, RoomEvent, parse_post
from qualmon.core.janus_rooms import RoomDirectory
from qualmon.service.janus_attach import FIELDS, MAX_JANUS_ID, parse_janus_attach
from qualmon.service.openapi.janus import EXAMPLE_JANUS_ATTACH
from qualmon.service.rtp_routes import AttachError

from ..fuzz_json import json_trees, mutated_json, to_json
from ..fuzzing import examples

pytestmark = pytest.mark.fuzz

MEDIA = {
    "type": 32, "subtype": 3, "session_id": 1, "handle_id": 2, "opaque_id": "o",
    "event": {"mid": "0", "media": "audio", "base": 48000, "rtt": 101, "lost": 3,
              "packets-received": 90, "in-link-quality": 97, "jitter-local": 40},
}  # fmt: skip
JOINED = {
    "type": 64, "session_id": 1, "handle_id": 3, "opaque_id": "o",
    "event": {"plugin": "janus.plugin.videoroom",
              "data": {"event": "joined", "room": 1234, "id": 5551, "display": "a"}},
}  # fmt: skip
SUBSCRIBING = {
    "type": 64, "session_id": 1, "handle_id": 2,
    "event": {"plugin": "janus.plugin.videoroom",
              "data": {"event": "subscribing", "room": 1234, "streams": [{"feed_id": 5552}]}},
}  # fmt: skip
EVENT_KEYS = ("type", "session_id", "handle_id", "event", "data", "media", "rtt", "room", "id")


@examples()
@given(
    body=st.one_of(
        mutated_json((EXAMPLE_JANUS_ATTACH,), (*FIELDS, "srtp_key")),
        json_trees(FIELDS).map(to_json),
        st.text(max_size=40),
    )
)
@example(body='{"room": 1' + "0" * 5000 + "}")
def test_any_json_is_an_attach_or_a_one_line_refusal(body: str) -> None:
    try:
        asked = parse_janus_attach(body.encode())
    except AttachError as exc:
        assert len(str(exc).splitlines()) == 1, str(exc)
        return
    assert 1 <= asked.room <= MAX_JANUS_ID and 1 <= asked.publisher_id <= MAX_JANUS_ID
    assert asked.role in ("therapist", "client") and isinstance(asked.srtp, bool)


@examples()
@given(
    body=st.one_of(
        mutated_json(([MEDIA, JOINED, SUBSCRIBING],), EVENT_KEYS),
        mutated_json((MEDIA, JOINED), EVENT_KEYS, max_changes=1),
        json_trees(EVENT_KEYS).map(to_json),
        st.text(max_size=40),
    )
)
def test_any_post_is_events_counts_or_one_error(body: str) -> None:
    """Every entry is an event, ignored or malformed (counted once); the directory takes
    whatever is typed."""
    try:
        parsed = parse_post(body.encode())
    except EventsError as exc:
        assert len(str(exc).splitlines()) == 1
        return
    doc = json.loads(body)
    entries = len(doc) if isinstance(doc, list) else 1
    assert len(parsed.events) + parsed.ignored + parsed.malformed == entries
    rooms = RoomDirectory(max_handles=4)
    for event in parsed.events:
        if isinstance(event, RoomEvent):
            rooms.on_room_event(event, 0.0)
        else:
            assert isinstance(event, MediaStats)
            assert event.rtt_seconds is None or event.rtt_seconds > 0
            rooms.feed_of(event, 1.0)
    assert len(rooms) <= 4
