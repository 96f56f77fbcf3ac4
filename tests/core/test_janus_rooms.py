"""Handles map to VideoRoom participants: publisher connections by `joined`, subscriber
connections through the publisher's Janus session or opaque id; bounded and expiring."""

from __future__ import annotations

from qualmon.core.janus_events import MediaStats, RoomEvent
from qualmon.core.janus_rooms import Feed, RoomDirectory


def joined(session: int, handle: int, participant: int, opaque: str | None = None) -> RoomEvent:
    return RoomEvent("joined", session, handle, opaque, 1234, participant)


def subscribing(session: int, handle: int, opaque: str | None = None) -> RoomEvent:
    return RoomEvent("subscribing", session, handle, opaque, 1234, None, (9,))


def stats(session: int, handle: int, opaque: str | None = None) -> MediaStats:
    return MediaStats(session, handle, opaque, "audio", 0.1, 0, 10, 100, 100, None)


def test_publisher_and_subscriber_connections_map_to_their_participant() -> None:
    rooms = RoomDirectory()
    rooms.on_room_event(joined(1, 10, 5551), 0.0)
    rooms.on_room_event(subscribing(1, 11), 0.0)
    rooms.on_room_event(joined(2, 20, 5552, "app-b"), 0.0)
    rooms.on_room_event(subscribing(3, 30, "app-b"), 0.0)  # another Janus session, same app
    assert rooms.feed_of(stats(1, 10), 1.0) == Feed(1234, 5551, "publisher")
    assert rooms.feed_of(stats(1, 11), 1.0) == Feed(1234, 5551, "subscriber")
    assert rooms.feed_of(stats(3, 30, "app-b"), 1.0) == Feed(1234, 5552, "subscriber")
    assert rooms.feed_of(stats(9, 99), 1.0) is None


def test_leaving_forgets_the_participant() -> None:
    rooms = RoomDirectory()
    rooms.on_room_event(joined(1, 10, 5551), 0.0)
    rooms.on_room_event(RoomEvent("unpublished", None, None, None, 1234, 5551), 1.0)
    assert rooms.feed_of(stats(1, 10), 1.0) is not None  # still in the room
    rooms.on_room_event(RoomEvent("leaving", None, None, None, 1234, 5551), 1.0)
    assert rooms.feed_of(stats(1, 10), 1.0) is None


def test_bounded_and_expiring() -> None:
    rooms = RoomDirectory(max_handles=3, ttl_seconds=60.0)
    for i in range(5):
        rooms.on_room_event(joined(i, 100 + i, 1 + i), float(i))
    assert len(rooms) == 3
    assert rooms.feed_of(stats(0, 100), 5.0) is None  # the least recently seen went first
    assert rooms.feed_of(stats(4, 104), 30.0) is not None  # seen: refreshed
    rooms.expire(64.0)
    assert len(rooms) == 1  # 102 and 103 were last seen at 2 and 3 s
    rooms.expire(91.0)
    assert len(rooms) == 0
