"""Janus attachments: a participant's audio forwarded by a Janus VideoRoom (`rtp_forward`,
SRTP) to a plain-RTP leg, kept forwarding while the leg lives.

The forwarder is asked for before a leg exists (to a port already bound, with a key made
here), so a refusal by Janus leaves nothing behind: no session, no leg, no replaced role.
Janus drops forwarders when their publisher leaves or unpublishes; when it publishes again
(an event, or the periodic check) a new forwarder goes to a new leg of the same role, which
the registry counts as a reconnect. The forwarder is stopped when the leg ends (DELETE,
replaced by another ingest, session end, lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..media.rtp_ports import PortLease, PortPool
from ..media.rtp_source import SRTP_KEY_BYTES, RtpAttachment, RtpParams, RtpSource
from ..sessions.leg import Leg
from ..sessions.snapshot import Role
from .janus_client import REQUEST_TIMEOUT_SECONDS, JanusClient, JanusError

log = logging.getLogger(__name__)

FORWARD_PAYLOAD_TYPE = 111
"Janus rewrites the forwarded audio to this payload type (`pt`), whatever the publisher used."
SRTP_SUITE_80 = 80
"Janus' `srtp_suite` for AES_CM_128_HMAC_SHA1_80."
CHECK_SECONDS = 10.0
"Keepalive and forwarder check period: well inside Janus' 60 s session timeout."

AttachLeg = Callable[[str, Role, RtpParams, PortLease], Awaitable[tuple[Leg, RtpAttachment]]]
"Makes the plain-RTP leg on an already leased port (rtp_routes.attach_rtp)."


@dataclass
class JanusAttachment:
    """One (session, role) taken from one VideoRoom publisher."""

    id: str
    session_id: str
    role: Role
    room: int
    publisher_id: int
    room_secret: str | None = field(repr=False)
    srtp: bool
    leg: Leg
    attachment: RtpAttachment
    stream_ids: tuple[int, ...] = ()
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def source(self) -> RtpSource | None:
        source = self.leg.source
        return source if isinstance(source, RtpSource) else None


def _stream_ids(data: dict[str, Any]) -> tuple[int, ...]:
    forwarders = data.get("forwarders")
    if not isinstance(forwarders, list):
        raise JanusError("rtp_forward answered without forwarders")
    ids = tuple(
        f["stream_id"]
        for f in forwarders
        if isinstance(f, dict) and type(f.get("stream_id")) is int
    )
    if not ids:
        raise JanusError("Janus made no forwarder (the publisher has no audio stream)")
    return ids


class JanusBridge:
    """Every Janus attachment of the service, and the one Janus session they use."""

    def __init__(
        self,
        client: JanusClient,
        *,
        ports: PortPool,
        attach_leg: AttachLeg,
        admin_key: str | None,
    ) -> None:
        self.client = client
        self._ports = ports
        self._attach_leg = attach_leg
        self._admin_key = admin_key
        self.attachments: dict[str, JanusAttachment] = {}
        self.by_feed: dict[tuple[int, int], JanusAttachment] = {}
        self._lock = asyncio.Lock()
        "One Janus conversation at a time: attaches, republishes and stops do not interleave."
        self._tasks: set[asyncio.Task[None]] = set()

    # -- forwarders ------------------------------------------------------------------

    async def _forward(
        self, room: int, publisher_id: int, secret: str | None, lease: PortLease, key: bytes | None
    ) -> tuple[int, ...]:
        body: dict[str, Any] = {
            "request": "rtp_forward",
            "room": room,
            "publisher_id": publisher_id,
            "host": lease.host,
            "host_family": "ipv6" if ":" in lease.host else "ipv4",
            "streams": [{"mid": "0", "port": lease.port, "pt": FORWARD_PAYLOAD_TYPE}],
        }
        if secret is not None:
            body["secret"] = secret
        if self._admin_key is not None:
            body["admin_key"] = self._admin_key
        if key is not None:
            body["srtp_suite"] = SRTP_SUITE_80
            body["srtp_crypto"] = RtpAttachment("", 0, key).srtp_key_base64
        return _stream_ids(await self.client.request(body))

    async def _stop(
        self, room: int, publisher_id: int, secret: str | None, stream_ids: tuple[int, ...]
    ) -> None:
        for stream_id in stream_ids:
            body: dict[str, Any] = {
                "request": "stop_rtp_forward",
                "room": room,
                "publisher_id": publisher_id,
                "stream_id": stream_id,
            }
            if secret is not None:
                body["secret"] = secret
            if self._admin_key is not None:
                body["admin_key"] = self._admin_key
            try:
                await self.client.request(body)
            except JanusError as exc:  # gone with its publisher, most often
                log.info("stop_rtp_forward: %s", exc)

    async def _new_leg(
        self,
        session_id: str,
        role: Role,
        room: int,
        publisher_id: int,
        secret: str | None,
        srtp: bool,
    ) -> tuple[Leg, RtpAttachment, tuple[int, ...]]:
        """A forwarder to a fresh port, then the leg on it; JanusError, PortsExhausted or
        CapacityError with nothing left (port freed, forwarder stopped)."""
        key = secrets.token_bytes(SRTP_KEY_BYTES) if srtp else None
        lease = self._ports.acquire()
        try:
            stream_ids = await self._forward(room, publisher_id, secret, lease, key)
        except BaseException:
            lease.release()
            raise
        params = RtpParams(payload_type=FORWARD_PAYLOAD_TYPE, srtp=srtp, srtp_key=key)
        try:
            leg, attachment = await self._attach_leg(session_id, role, params, lease)
        except BaseException:
            await self._stop(room, publisher_id, secret, stream_ids)
            raise
        return leg, attachment, stream_ids

    # -- attach / detach -------------------------------------------------------------

    async def attach(
        self,
        session_id: str,
        role: Role,
        *,
        room: int,
        publisher_id: int,
        room_secret: str | None,
        srtp: bool,
    ) -> JanusAttachment:
        async with self._lock:
            if (room, publisher_id) in self.by_feed:
                raise FeedAttached(f"publisher {publisher_id} of room {room} is attached already")
            leg, attachment, stream_ids = await self._new_leg(
                session_id, role, room, publisher_id, room_secret, srtp
            )
            attached = JanusAttachment(
                secrets.token_urlsafe(24),
                session_id,
                role,
                room,
                publisher_id,
                room_secret,
                srtp,
                leg,
                attachment,
                stream_ids,
            )
            self.attachments[attached.id] = attached
            self.by_feed[(room, publisher_id)] = attached
            self._watch(attached)
            return attached

    def _watch(self, attached: JanusAttachment) -> None:
        leg = attached.leg

        async def until_ended() -> None:
            await leg.ended.wait()
            if attached.leg is leg:  # not replaced by our own republish
                await self.detach(attached, end_leg=False)

        attached.watcher = asyncio.create_task(until_ended(), name="qualmon-janus-watch")
        self._tasks.add(attached.watcher)
        attached.watcher.add_done_callback(self._tasks.discard)

    async def detach(self, attached: JanusAttachment, *, end_leg: bool = True) -> None:
        """Stop forwarding and forget the attachment; end its leg unless it ended."""
        if self.attachments.pop(attached.id, None) is None:
            return
        self.by_feed.pop((attached.room, attached.publisher_id), None)
        watcher = attached.watcher
        if watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()
        async with self._lock:
            await self._stop(
                attached.room, attached.publisher_id, attached.room_secret, attached.stream_ids
            )
        if end_leg and attached.leg.state != "ended":
            await attached.leg.close("closed")

    async def republish(self, room: int, publisher_id: int) -> None:
        """The publisher published again: forward it to a new leg of the same role."""
        async with self._lock:
            attached = self.by_feed.get((room, publisher_id))
            if attached is None or attached.id not in self.attachments:
                return
            # Events arrive late and in batches: a `published` may be the publication our
            # forwarder already serves.
            if await self._forwarding(attached):
                return
            old_ids = attached.stream_ids
            # Our own replacement ends the old leg: its watcher must not take that for the
            # end of the attachment.
            if attached.watcher is not None:
                attached.watcher.cancel()
            try:
                leg, attachment, stream_ids = await self._new_leg(
                    attached.session_id,
                    attached.role,
                    room,
                    publisher_id,
                    attached.room_secret,
                    attached.srtp,
                )
            except Exception as exc:  # a publisher gone again, Janus down: the next try
                log.info("re-forwarding a Janus publisher failed: %s", exc)
                self._watch(attached)
                return
            attached.leg, attached.attachment, attached.stream_ids = leg, attachment, stream_ids
            self._watch(attached)
            # Normally gone with the old publication already.
            await self._stop(room, publisher_id, attached.room_secret, old_ids)

    def republish_soon(self, room: int, publisher_id: int) -> None:
        """From an event handler post: do not make Janus wait for our answer."""
        if (room, publisher_id) not in self.by_feed:
            return
        task = asyncio.create_task(
            self.republish(room, publisher_id), name="qualmon-janus-republish"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- upkeep ----------------------------------------------------------------------

    async def check(self) -> None:
        """Keep our Janus session alive; re-forward publishers whose forwarder is gone
        (for a Janus whose events do not reach us)."""
        try:
            await self.client.keepalive()
        except JanusError as exc:
            log.warning("Janus keepalive failed: %s", exc)
            return
        for attached in list(self.attachments.values()):
            if attached.leg.state == "stalled" and not await self._forwarding(attached):
                await self.republish(attached.room, attached.publisher_id)

    async def _forwarding(self, attached: JanusAttachment) -> bool:
        body: dict[str, Any] = {"request": "listforwarders", "room": attached.room}
        if attached.room_secret is not None:
            body["secret"] = attached.room_secret
        try:
            data = await self.client.request(body)
        except JanusError:
            return True  # cannot tell: leave it
        for publisher in data.get("publishers") or []:
            if (
                isinstance(publisher, dict)
                and publisher.get("publisher_id") == attached.publisher_id
            ):
                ids = {
                    f.get("stream_id")
                    for f in publisher.get("forwarders") or []
                    if isinstance(f, dict)
                }
                return bool(ids & set(attached.stream_ids))
        return False

    async def run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            try:
                await self.check()
            except Exception:
                log.exception("Janus check failed")

    async def close(self) -> None:
        """Stop every forwarder, let stops under way finish, then end our Janus session."""
        for attached in list(self.attachments.values()):
            with contextlib.suppress(Exception):
                await self.detach(attached, end_leg=False)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=2 * REQUEST_TIMEOUT_SECONDS)
            for task in pending:
                task.cancel()
        await self.client.close()


class FeedAttached(RuntimeError):
    """That publisher is attached already (to this or another session)."""
