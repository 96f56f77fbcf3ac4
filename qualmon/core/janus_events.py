"""Janus event handler posts (the sample event handler's JSON) as typed events.

Only what qualmon uses is read: type 32 media statistics (once per `stats_period` per
connection and stream) and type 64 VideoRoom events (who joined, published, subscribed and
left). Everything else is a valid event qualmon has no use for. Pure: bytes in, events out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

MEDIA_TYPE = 32
PLUGIN_TYPE = 64
VIDEOROOM = "janus.plugin.videoroom"
MAX_EVENTS_PER_POST = 1000
"Janus groups what it collected since its last post; beyond this a post is not Janus'."

RoomEventKind = Literal["joined", "published", "subscribing", "leaving", "unpublished"]
ROOM_EVENT_KINDS: tuple[RoomEventKind, ...] = (
    "joined",
    "published",
    "subscribing",
    "leaving",
    "unpublished",
)


@dataclass(frozen=True)
class MediaStats:
    """One connection's statistics of one stream, as Janus measured them."""

    session_id: int
    "Janus session of the connection (a participant's app has one for all its handles)."
    handle_id: int
    opaque_id: str | None
    media: str
    "`audio` or `video`."
    rtt_seconds: float | None
    "Janus' RTT from the receiver reports to its sender reports, in whole ms; only on"
    " connections Janus sends media on (subscribers); None where Janus reports 0."
    lost: int | None
    "Packets Janus found missing from what the client sent (publisher connections)."
    packets_received: int | None
    in_link_quality: int | None
    "0..100: Janus' score of the incoming link, loss and NACKs."
    in_media_link_quality: int | None
    "0..100: the same from loss alone."
    jitter_seconds: float | None
    "Janus' interarrival jitter of what it received (`jitter-local`, whole ms), if it says."


@dataclass(frozen=True)
class RoomEvent:
    """A VideoRoom event: a handle joined as a publisher, published, subscribed, left."""

    kind: RoomEventKind
    session_id: int | None
    "None for `leaving` and `unpublished`, which Janus sends from no handle."
    handle_id: int | None
    opaque_id: str | None
    room: int
    participant_id: int | None
    "The publisher's id (`id`); for `subscribing`, None."
    feeds: tuple[int, ...] = ()
    "For `subscribing`: the publishers subscribed to."


JanusEvent = MediaStats | RoomEvent


@dataclass(frozen=True)
class ParsedPost:
    events: tuple[JanusEvent, ...]
    "The events qualmon reads, in the order posted."
    ignored: int
    "Well-formed events of kinds qualmon does not use."
    malformed: int
    "Entries that are not a Janus event (or whose fields have the wrong types)."


class EventsError(ValueError):
    """A post that is not Janus events at all; the message is one line."""


def _ident(value: object) -> int | None:
    """A Janus numeric id (an integer, never a bool)."""
    return value if type(value) is int and value >= 0 else None


def _count(value: object) -> int | None:
    return value if type(value) is int and value >= 0 else None


def _text(value: object) -> str | None:
    return value[:200] if isinstance(value, str) and value else None


def _ms(value: object) -> float | None:
    if type(value) is int or (type(value) is float and value == value):
        return float(value) / 1000.0 if 0 < float(value) < 1e7 else None
    return None


def parse_post(body: bytes) -> ParsedPost:
    """The events of one post (a single event or Janus' grouped array); EventsError when
    the body is not JSON or neither an object nor an array of them."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise EventsError("body is not UTF-8") from None
    except (ValueError, RecursionError):
        raise EventsError("body is not JSON") from None
    entries = doc if isinstance(doc, list) else [doc]
    if len(entries) > MAX_EVENTS_PER_POST:
        raise EventsError(f"more than {MAX_EVENTS_PER_POST} events in one post")
    events: list[JanusEvent] = []
    ignored = malformed = 0
    for entry in entries:
        try:
            event = parse_event(entry)
        except EventsError:
            malformed += 1
            continue
        if event is None:
            ignored += 1
        else:
            events.append(event)
    return ParsedPost(tuple(events), ignored, malformed)


def parse_event(entry: object) -> JanusEvent | None:
    """One event: typed, None for a valid one qualmon does not use, EventsError if it is
    not an event."""
    if not isinstance(entry, dict) or type(entry.get("type")) is not int:
        raise EventsError("not a Janus event")
    kind = entry["type"]
    body = entry.get("event")
    if kind not in (MEDIA_TYPE, PLUGIN_TYPE):
        return None
    if not isinstance(body, dict):
        raise EventsError("event without a body")
    # `leaving` and `unpublished` (and the plugin's own `rtp_forward`) come from no handle.
    session_id, handle_id = _ident(entry.get("session_id")), _ident(entry.get("handle_id"))
    opaque_id = _text(entry.get("opaque_id"))
    if kind == PLUGIN_TYPE:
        return _room(body, session_id, handle_id, opaque_id)
    if session_id is None or handle_id is None:
        raise EventsError("media event without session and handle ids")
    return _media(body, session_id, handle_id, opaque_id)


def _media(
    body: dict[str, Any], session_id: int, handle_id: int, opaque_id: str | None
) -> MediaStats | None:
    media = body.get("media")
    if media not in ("audio", "video"):
        return None  # state changes (receiving, slow link) carry no statistics
    if "packets-received" not in body and "rtt" not in body:
        return None
    return MediaStats(
        session_id=session_id,
        handle_id=handle_id,
        opaque_id=opaque_id,
        media=media,
        rtt_seconds=_ms(body.get("rtt")),
        lost=_count(body.get("lost")),
        packets_received=_count(body.get("packets-received")),
        in_link_quality=_quality(body.get("in-link-quality")),
        in_media_link_quality=_quality(body.get("in-media-link-quality")),
        jitter_seconds=_jitter(body.get("jitter-local")),
    )


def _quality(value: object) -> int | None:
    return value if type(value) is int and 0 <= value <= 100 else None


def _jitter(value: object) -> float | None:
    """Janus reports jitter in whole milliseconds (rtcp.c: jitter × 1000 / clock rate)."""
    if type(value) is not int or not 0 <= value < 10_000_000:
        return None
    return value / 1000.0


def _room(
    body: dict[str, Any], session_id: int | None, handle_id: int | None, opaque_id: str | None
) -> RoomEvent | None:
    if body.get("plugin") != VIDEOROOM:
        return None
    data = body.get("data")
    if not isinstance(data, dict):
        raise EventsError("VideoRoom event without data")
    kind = data.get("event")
    if kind not in ROOM_EVENT_KINDS:
        return None
    room = _ident(data.get("room"))
    if room is None:
        raise EventsError("VideoRoom event without a room")
    if kind in ("joined", "published", "subscribing") and (session_id is None or handle_id is None):
        raise EventsError(f"VideoRoom {kind} event without session and handle ids")
    participant = _ident(data.get("id"))
    feeds: tuple[int, ...] = ()
    if kind == "subscribing":
        feeds = _feeds(data)
        participant = None
    elif participant is None:
        raise EventsError("VideoRoom event without a participant id")
    return RoomEvent(kind, session_id, handle_id, opaque_id, room, participant, feeds)


def _feeds(data: dict[str, Any]) -> tuple[int, ...]:
    """Janus 1.x lists subscribed streams with their `feed_id`; older forms say `feed`."""
    found: list[int] = []
    for key in ("feed", "feed_id"):
        ident = _ident(data.get(key))
        if ident is not None:
            found.append(ident)
    streams = data.get("streams")
    if isinstance(streams, list):
        for stream in streams[:100]:
            if isinstance(stream, dict):
                ident = _ident(stream.get("feed_id", stream.get("feed")))
                if ident is not None and ident not in found:
                    found.append(ident)
    return tuple(found)
