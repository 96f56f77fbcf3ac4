"""Who is who in Janus VideoRooms, from the event handler's VideoRoom events: which handle
publishes for which participant, and which handles are that participant's subscriptions.

Participants join before anyone attaches them to qualmon, so every room's events are
remembered from the start: bounded (least recently seen dropped first) and expiring (an entry
not seen for `ttl_seconds`; media statistics refresh it every `stats_period`). Pure: time is
passed in.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from .janus_events import MediaStats, RoomEvent

Connection = Literal["publisher", "subscriber"]
ParticipantKey = tuple[int, int]
"(room, participant id)."


@dataclass(frozen=True)
class Feed:
    """Whose connection a media statistic is about."""

    room: int
    participant_id: int
    connection: Connection
    "`publisher`: what the participant sends to Janus (loss on the way in); `subscriber`: one"
    " of its receiving connections (Janus' RTT to the participant)."


@dataclass
class _Handle:
    connection: Connection
    room: int
    session_id: int
    opaque_id: str | None
    participant_id: int | None
    "Known for a publisher handle; a subscriber's is found through its session or opaque id."
    seen: float


class RoomDirectory:
    """Handles of VideoRoom participants, keyed by Janus handle id."""

    def __init__(self, *, max_handles: int = 20_000, ttl_seconds: float = 6 * 3600.0) -> None:
        self.max_handles = max_handles
        self.ttl_seconds = ttl_seconds
        self._handles: OrderedDict[int, _Handle] = OrderedDict()
        self._publishers: dict[ParticipantKey, int] = {}
        "(room, participant) → its publisher handle."

    def __len__(self) -> int:
        return len(self._handles)

    def on_room_event(self, event: RoomEvent, now: float) -> None:
        self.expire(now)
        if event.kind == "leaving" and event.participant_id is not None:
            handle = self._publishers.pop((event.room, event.participant_id), None)
            if handle is not None:
                self._handles.pop(handle, None)
            return
        if event.kind == "unpublished" and event.handle_id is None:
            return  # the participant is still in the room; its handle stays known
        if event.session_id is None or event.handle_id is None:
            return  # the parser insists on both for the kinds below
        if event.kind == "subscribing":
            self._remember(
                event.handle_id,
                _Handle("subscriber", event.room, event.session_id, event.opaque_id, None, now),
            )
            return
        if event.participant_id is None:
            return
        key = (event.room, event.participant_id)
        if event.kind == "joined" or event.handle_id in self._handles:
            # `published`/`unpublished` come on the publisher's own handle.
            self._remember(
                event.handle_id,
                _Handle(
                    "publisher",
                    event.room,
                    event.session_id,
                    event.opaque_id,
                    event.participant_id,
                    now,
                ),
            )
            self._publishers[key] = event.handle_id

    def publisher_of(self, handle_id: int) -> ParticipantKey | None:
        handle = self._handles.get(handle_id)
        if handle is None or handle.connection != "publisher" or handle.participant_id is None:
            return None
        return handle.room, handle.participant_id

    def feed_of(self, stats: MediaStats, now: float) -> Feed | None:
        """The participant whose connection `stats` measured, or None if unknown."""
        handle = self._handles.get(stats.handle_id)
        if handle is None:
            return None
        handle.seen = now
        self._handles.move_to_end(stats.handle_id)
        if handle.connection == "publisher" and handle.participant_id is not None:
            return Feed(handle.room, handle.participant_id, "publisher")
        owner = self._owner(handle)
        return None if owner is None else Feed(handle.room, owner, "subscriber")

    def _owner(self, subscriber: _Handle) -> int | None:
        """The participant a subscription belongs to: the publisher in the same room with the
        same Janus session (an app keeps its handles in one), else the same opaque id."""
        by_opaque = None
        for (room, participant), handle_id in self._publishers.items():
            publisher = self._handles.get(handle_id)
            if room != subscriber.room or publisher is None:
                continue
            if publisher.session_id == subscriber.session_id:
                return participant
            if subscriber.opaque_id is not None and publisher.opaque_id == subscriber.opaque_id:
                by_opaque = participant
        return by_opaque

    def _remember(self, handle_id: int, handle: _Handle) -> None:
        self._handles[handle_id] = handle
        self._handles.move_to_end(handle_id)
        while len(self._handles) > self.max_handles:
            dropped_id, dropped = self._handles.popitem(last=False)
            self._forget_publisher(dropped_id, dropped)

    def _forget_publisher(self, handle_id: int, handle: _Handle) -> None:
        if handle.participant_id is not None:
            key = (handle.room, handle.participant_id)
            if self._publishers.get(key) == handle_id:
                del self._publishers[key]

    def expire(self, now: float) -> None:
        """Forget handles not seen for ttl_seconds (oldest first, so this stops early)."""
        while self._handles:
            handle_id, handle = next(iter(self._handles.items()))
            if now - handle.seen < self.ttl_seconds:
                return
            del self._handles[handle_id]
            self._forget_publisher(handle_id, handle)
