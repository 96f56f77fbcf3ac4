"""A call participant in a Janus VideoRoom, as a platform's app would be: one Janus session
with a publisher handle (its audio) and a subscriber handle (the other participants'),
over Janus' HTTP API with a long-poll for events. aiortc on both connections."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import defaultdict
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from qualmon.media.ice import selected_pair
from qualmon.sim.audio import EncodedAudioTrack
from qualmon.sim.impairment import Impairment, ImpairmentConfig


class JanusFailure(RuntimeError):
    pass


class Participant:
    """Joins `room` as publisher `participant_id`, publishes `track`, can subscribe."""

    def __init__(
        self, http: aiohttp.ClientSession, url: str, *, room: int, participant_id: int
    ) -> None:
        self._http = http
        self._url = url
        self.room = room
        self.id = participant_id
        self.opaque_id = "app-" + secrets.token_hex(4)
        self.session: int | None = None
        self._events: dict[int, asyncio.Queue[dict[str, Any]]] = defaultdict(asyncio.Queue)
        self._poller: asyncio.Task[None] | None = None
        self.publisher_pc: RTCPeerConnection | None = None
        self.subscriber_pc: RTCPeerConnection | None = None
        self.publisher_handle: int | None = None
        self.subscriber_handle: int | None = None
        self.impairment: Impairment | None = None
        "On the publisher connection (client→Janus loss, outages)."
        self.subscriber_impairment: Impairment | None = None
        "On the subscriber connection (delay both ways: the RTT Janus measures)."

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {"transaction": secrets.token_hex(6), **body}
        async with self._http.post(self._url + path, json=body) as r:
            doc: dict[str, Any] = await r.json(content_type=None)
        if doc.get("janus") == "error":
            raise JanusFailure(str(doc.get("error")))
        return doc

    async def _poll(self) -> None:
        while True:
            try:
                async with self._http.get(
                    f"{self._url}/{self.session}?maxev=10",
                    timeout=aiohttp.ClientTimeout(total=40),
                ) as r:
                    got = await r.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.2)
                continue
            for event in got if isinstance(got, list) else [got]:
                if not isinstance(event, dict):
                    continue  # a destroyed session's poll answers null
                sender = event.get("sender")
                if sender is not None:
                    self._events[sender].put_nowait(event)

    async def _event(self, handle: int, transaction: str, timeout: float = 20.0) -> dict[str, Any]:
        """The plugin's answer to our request `transaction` (notifications about other
        participants, media and webrtcup events skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self._events[handle].get()
                if event.get("janus") == "event" and event.get("transaction") == transaction:
                    return event

    async def _message(
        self, handle: int, body: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        transaction = secrets.token_hex(6)
        request: dict[str, Any] = {"janus": "message", "body": body, "transaction": transaction}
        if jsep is not None:
            request["jsep"] = jsep
        await self._post(f"/{self.session}/{handle}", request)
        event = await self._event(handle, transaction)
        data = event["plugindata"]["data"]
        if "error" in data:
            raise JanusFailure(data["error"])
        return event

    async def connect(self) -> None:
        doc = await self._post("", {"janus": "create"})
        self.session = doc["data"]["id"]
        self._poller = asyncio.create_task(self._poll())

    async def _attach(self) -> int:
        doc = await self._post(
            f"/{self.session}",
            {"janus": "attach", "plugin": "janus.plugin.videoroom", "opaque_id": self.opaque_id},
        )
        return int(doc["data"]["id"])

    async def publish(
        self, track: MediaStreamTrack, *, impairment: ImpairmentConfig | None = None
    ) -> None:
        """Join as publisher and publish `track`; the impairment goes on the selected pair
        once connected (hold an EncodedAudioTrack paused to have it see every packet)."""
        if self.session is None:
            await self.connect()
        if self.publisher_handle is None:
            self.publisher_handle = await self._attach()
            join = {"request": "join", "ptype": "publisher", "room": self.room, "id": self.id}
            await self._message(self.publisher_handle, {**join, "display": f"p{self.id}"})
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.publisher_pc = pc
        pc.addTransceiver(track, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        offer = {"type": "offer", "sdp": pc.localDescription.sdp}
        event = await self._message(
            self.publisher_handle, {"request": "publish", "audio": True}, offer
        )
        await pc.setRemoteDescription(RTCSessionDescription(**event["jsep"]))
        await _connected(pc)
        if impairment is not None:
            self.impairment = Impairment(impairment)
            self.impairment.install(_pair(pc).protocol)

    async def unpublish(self) -> None:
        """Stop publishing but stay in the room (a camera/mic switched off, then on)."""
        if self.publisher_handle is not None:
            await self._message(self.publisher_handle, {"request": "unpublish"})
        if self.impairment is not None:
            self.impairment.cancel_pending()
        if self.publisher_pc is not None:
            await self.publisher_pc.close()
            self.publisher_pc = None

    async def subscribe(self, feed: int, *, impairment: ImpairmentConfig | None = None) -> None:
        """Subscribe to `feed`'s audio, as a call participant hears the other."""
        if self.session is None:
            await self.connect()
        self.subscriber_handle = await self._attach()
        join = {"request": "join", "ptype": "subscriber", "room": self.room}
        event = await self._message(self.subscriber_handle, {**join, "streams": [{"feed": feed}]})
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.subscriber_pc = pc
        received: list[MediaStreamTrack] = []
        pc.on("track", received.append)
        await pc.setRemoteDescription(RTCSessionDescription(**event["jsep"]))
        await pc.setLocalDescription(await pc.createAnswer())
        answer = {"type": "answer", "sdp": pc.localDescription.sdp}
        await self._message(self.subscriber_handle, {"request": "start"}, answer)
        await _connected(pc)
        if impairment is not None:
            self.subscriber_impairment = Impairment(impairment)
            self.subscriber_impairment.install(_pair(pc).protocol)
        # Read what arrives, so the receiver's reports (RTT for Janus) keep going.
        self._drains = [asyncio.create_task(_drain(t)) for t in received]

    async def leave(self) -> None:
        """Leave the room and close everything (a participant closing the app)."""
        for impairment in (self.impairment, self.subscriber_impairment):
            if impairment is not None:
                impairment.cancel_pending()
        for task in getattr(self, "_drains", []):
            task.cancel()
        for pc in (self.publisher_pc, self.subscriber_pc):
            if pc is not None:
                await pc.close()
        self.publisher_pc = self.subscriber_pc = None
        if self._poller is not None:  # first: a poll of a destroyed session answers junk
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        if self.session is not None:
            with contextlib.suppress(aiohttp.ClientError, JanusFailure):
                await self._post(f"/{self.session}", {"janus": "destroy"})
        self.session = self.publisher_handle = self.subscriber_handle = None
        self._events.clear()


def _pair(pc: RTCPeerConnection) -> Any:
    pair = selected_pair(pc)
    if pair is None:
        raise JanusFailure("connected without a selected ICE pair")
    return pair


async def _drain(track: MediaStreamTrack) -> None:
    with contextlib.suppress(Exception):
        while True:
            await track.recv()


async def _connected(pc: RTCPeerConnection, timeout: float = 20.0) -> None:
    done = asyncio.Event()

    @pc.on("connectionstatechange")
    def on_state() -> None:
        if pc.connectionState in ("connected", "failed", "closed"):
            done.set()

    on_state()
    await asyncio.wait_for(done.wait(), timeout)
    if pc.connectionState != "connected":
        raise JanusFailure(f"connection {pc.connectionState}")


def held_track(packets: list[bytes], *, loop_forever: bool = True) -> EncodedAudioTrack:
    track = EncodedAudioTrack(packets, loop_forever=loop_forever)
    track.pause()
    return track
