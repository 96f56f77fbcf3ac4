"""A WHIP publisher (aiortc) sending replayed Opus, and optionally VP8 video, through an
optional impairment."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from urllib.parse import urljoin

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from ..media.ice import selected_pair
from .audio import EncodedAudioTrack, speech_like_packets
from .impairment import Impairment, ImpairmentConfig
from .video import ScriptedVideoTrack

log = logging.getLogger(__name__)


class WhipError(RuntimeError):
    """The WHIP endpoint refused the offer or the connection did not come up."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WhipPublisher:
    """Publishes one audio leg (with `video`, an audio and video leg) to a WHIP endpoint, as
    a participant's app would."""

    def __init__(
        self,
        *,
        url: str,
        token: str,
        packets: Sequence[bytes] | None = None,
        track: MediaStreamTrack | None = None,
        impairment: ImpairmentConfig | None = None,
        http: aiohttp.ClientSession | None = None,
        hold_audio: bool = False,
        video: MediaStreamTrack | None = None,
    ) -> None:
        self.url = url
        self._token = token
        self._track = track or EncodedAudioTrack(packets or speech_like_packets())
        self._video = video
        self._impairment_config = impairment
        self._http = http
        self._own_http = http is None
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.impairment: Impairment | None = None
        self.resource_url: str | None = None
        self.server_timing: str | None = None
        "The 201's Server-Timing header, if it had one."
        self.answer_seconds: float | None = None
        "From sending the POST to having read its 201."
        self.ice_seconds: float | None = None
        "From sending the POST to ICE `completed` (a pair checked and nominated)."
        self.connect_seconds: float | None = None
        "From sending the POST to `connected` (answer, ICE and DTLS), once started."
        # Keep the track paused after connecting, so several publishers can start together.
        self._hold_audio = hold_audio

    @property
    def track(self) -> MediaStreamTrack:
        return self._track

    @property
    def video(self) -> MediaStreamTrack | None:
        return self._video

    async def start(self, *, timeout_seconds: float = 15.0) -> None:
        """POST the offer, apply the answer, wait for ICE, then switch on the impairment."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        # Hold the audio until the impairment is in place, so it sees every RTP packet.
        held = self._track if isinstance(self._track, EncodedAudioTrack) else None
        if held is not None and (self._impairment_config is not None or self._hold_audio):
            held.pause()
        held_video = self._video if isinstance(self._video, ScriptedVideoTrack) else None
        if held_video is not None and self._impairment_config is not None:
            held_video.pause()
        self.pc.addTransceiver(self._track, direction="sendonly")
        if self._video is not None:
            self.pc.addTransceiver(self._video, direction="sendonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {self._token}"}
        posted = time.perf_counter()

        @self.pc.on("iceconnectionstatechange")
        def on_ice() -> None:
            if self.pc.iceConnectionState == "completed" and self.ice_seconds is None:
                self.ice_seconds = time.perf_counter() - posted

        async with self._http.post(
            self.url, data=self.pc.localDescription.sdp, headers=headers
        ) as r:
            body = await r.text()
            if r.status != 201:
                raise WhipError(f"WHIP POST answered {r.status}: {body.strip()}", status=r.status)
            location = r.headers.get("Location")
            if not location:
                raise WhipError("WHIP POST answered 201 without Location", status=r.status)
            self.resource_url = urljoin(self.url, location)
            self.server_timing = r.headers.get("Server-Timing")
            self.answer_seconds = time.perf_counter() - posted
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        await self._wait_connected(timeout_seconds)
        self.connect_seconds = time.perf_counter() - posted
        if self._impairment_config is not None:
            pair = selected_pair(self.pc)
            if pair is None:
                raise WhipError("connected without a selected ICE pair")
            self.impairment = Impairment(self._impairment_config)
            self.impairment.install(pair.protocol)
        if held is not None and not self._hold_audio:
            held.resume()
        if held_video is not None:
            held_video.resume()

    async def _wait_connected(self, timeout_seconds: float) -> None:
        connected = asyncio.Event()

        @self.pc.on("connectionstatechange")
        def on_state() -> None:
            if self.pc.connectionState in ("connected", "failed", "closed"):
                connected.set()

        on_state()
        try:
            await asyncio.wait_for(connected.wait(), timeout_seconds)
        except TimeoutError as exc:
            raise WhipError(f"not connected after {timeout_seconds:g} s") from exc
        if self.pc.connectionState != "connected":
            raise WhipError(f"connection {self.pc.connectionState}")

    async def stop(self, *, delete: bool = True) -> None:
        """End the leg: DELETE the WHIP resource (unless vanishing) and close the peer."""
        if self.impairment is not None:
            self.impairment.cancel_pending()
        if delete and self.resource_url and self._http is not None:
            try:
                async with self._http.delete(
                    self.resource_url, headers={"Authorization": f"Bearer {self._token}"}
                ) as r:
                    await r.read()
            except aiohttp.ClientError as exc:
                log.warning("WHIP DELETE failed: %s", describe_failure(exc))
        await self.pc.close()
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None


def describe_failure(exc: BaseException) -> str:
    """A log-safe account of a failure.

    WhipError texts are the server's reasons; other errors may carry addresses (aiohttp's
    connection errors do), so only their type is told.
    """
    if isinstance(exc, WhipError):
        return str(exc)
    return type(exc).__name__
