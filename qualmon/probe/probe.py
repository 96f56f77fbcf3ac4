"""A probe inside an aiortc app: what it hears, for a qualmon service, a callback or metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import av
import jwt
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket
from prometheus_client import CollectorRegistry

from ..core.ascii_digits import parse_ascii_int
from ..core.emodel import DEFAULT_PARAMS, EModelParams
from ..core.rtp_stats import RtpLegStats
from ..core.rtt import RttTracker
from ..core.speech import SpeechSegmenter
from ..core.voice import VoiceClassifier
from ..media.negotiated import frame_time_mapper
from ..media.speech import SpeechPipeline
from ..media.stun_probe import measure_rtt
from ..media.tap import install_rtp_tap
from .metrics import ProbeCollector
from .snapshot import (
    PTIME_SECONDS,
    ProbeSnapshot,
    RemoteInbound,
    StreamSample,
    summarize,
    w3c_sample,
)

log = logging.getLogger(__name__)

MIN_INTERVAL_SECONDS = 0.5
"The service takes one sample per 0.5 s per participant."
MAX_BACKOFF_SECONDS = 60.0
POST_TIMEOUT_SECONDS = 5.0


class _TappedStream:
    """RTP statistics of one incoming audio receiver, fed by a tap before the jitter buffer."""

    def __init__(self, stream_id: str, transceiver: RTCRtpTransceiver) -> None:
        self.stream_id = stream_id
        self.receiver: RTCRtpReceiver = transceiver.receiver
        self.stats = RtpLegStats()
        self.first_rtp_timestamp: int | None = None
        self._transceiver = transceiver
        self._clock_rates: dict[int, int] = {}
        self._expected = 0
        self._lost_max = 0
        self.total_samples = 0
        self.concealed_samples = 0
        # The speech path's segmenter, once speech runs on this stream: audio missing in a
        # dropout is marked unknown there (neither speech nor silence), as on a WHIP leg.
        self.segmenter: SpeechSegmenter | None = None
        self.uninstall = install_rtp_tap(self.receiver, self._on_rtp)

    def _clock_rate(self, payload_type: int) -> int:
        rate = self._clock_rates.get(payload_type)
        if rate is None:
            codecs = getattr(self._transceiver, "_codecs", [])
            rate = next((c.clockRate for c in codecs if c.payloadType == payload_type), 48000)
            self._clock_rates[payload_type] = rate
        return rate

    def _on_rtp(self, packet: RtpPacket, arrival_seconds: float) -> None:
        if self.first_rtp_timestamp is None:
            self.first_rtp_timestamp = packet.timestamp
        dropout = self.stats.on_packet(
            ssrc=packet.ssrc,
            sequence_number=packet.sequence_number,
            rtp_timestamp=packet.timestamp,
            clock_rate=self._clock_rate(packet.payload_type),
            payload_bytes=len(packet.payload),
            arrival_seconds=arrival_seconds,
        )
        if dropout is not None and self.segmenter is not None:
            self.segmenter.add_unknown(dropout.media_start, dropout.media_end)

    def sample(self, now: float) -> StreamSample:
        """Snapshot, advancing the sample counters (they only ever grow)."""
        rtp = self.stats.snapshot(now)
        per_packet = round(PTIME_SECONDS * max(self._clock_rates.values(), default=48000))
        self.total_samples += max(0, rtp.packets_expected - self._expected) * per_packet
        self.concealed_samples += max(0, rtp.packets_lost - self._lost_max) * per_packet
        self._expected = max(self._expected, rtp.packets_expected)
        self._lost_max = max(self._lost_max, rtp.packets_lost)
        return StreamSample(self.stream_id, rtp, self.total_samples, self.concealed_samples)


def wait_after_429(retry_after: str) -> float:
    """Seconds to hold posts after a 429: the Retry-After seconds the service sent (it sends
    no HTTP-dates), or 1 s when the header is missing or unusable."""
    seconds = parse_ascii_int(retry_after.strip(), max_digits=6)
    return 1.0 if seconds is None else float(seconds)


def session_from_token(token: str) -> str | None:
    """The `session` claim of a qualmon token, read without verifying (the service does)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    session = claims.get("session")
    return session if isinstance(session, str) else None


class Probe:
    """Measures what an aiortc app hears on one RTCPeerConnection.

    Every `interval_seconds` it reads the RTP taps on the connection's incoming audio
    (loss, jitter, dropouts: before aiortc's jitter buffer), the RTT of the selected ICE
    pair (a STUN transaction) and aiortc's getStats, and then

    - calls `on_sample(snapshot)` with a frozen `ProbeSnapshot`,
    - keeps `qualmon_probe_*` series in `registry` (a prometheus_client registry), and/or
    - POSTs a W3C-shaped sample to `<url>/v1/sessions/<session>/stats` with `token`
      (a publish token: its role says whose ears these are).

    Pass `track` (the remote audio track, or `MediaRelay().subscribe(track)` if the app plays
    it too) to also measure speech activity; the probe then consumes that track.
    `start()` and `stop()` are idempotent; `stop()` leaves the peer connection alone.
    """

    def __init__(
        self,
        pc: RTCPeerConnection,
        *,
        url: str | None = None,
        token: str | None = None,
        session: str | None = None,
        on_sample: Callable[[ProbeSnapshot], None] | None = None,
        registry: CollectorRegistry | None = None,
        track: MediaStreamTrack | None = None,
        interval_seconds: float = 2.0,
        measure_rtt: bool = True,
        vad_mode: int = 3,
        emodel: EModelParams = DEFAULT_PARAMS,
        http: aiohttp.ClientSession | None = None,
    ) -> None:
        if interval_seconds < MIN_INTERVAL_SECONDS:
            raise ValueError(f"interval_seconds must be >= {MIN_INTERVAL_SECONDS}")
        if url is not None:
            if not token:
                raise ValueError("posting to a service needs a publish token")
            session = session or session_from_token(token)
            if not session:
                raise ValueError("no session: pass session= or a token with a session claim")
        self._pc = pc
        self._endpoint = (
            f"{url.rstrip('/')}/v1/sessions/{quote(session or '', safe='')}/stats"
            if url is not None
            else None
        )
        self._token = token
        self._on_sample = on_sample
        self._registry = registry
        self._collector: ProbeCollector | None = None
        self._track = track
        self._interval = interval_seconds
        self._measure_rtt = measure_rtt
        self._vad_mode = vad_mode
        self._emodel = emodel
        self._http = http
        self._own_http = http is None
        self._streams: dict[RTCRtpReceiver, _TappedStream] = {}
        self._rtt = RttTracker()
        self._segmenter: SpeechSegmenter | None = None
        self._speech: SpeechPipeline | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_timestamp_ms = 0.0
        self._post_not_before = 0.0
        self._backoff_seconds = 0.0
        self.latest: ProbeSnapshot | None = None
        "The newest snapshot (None before the first interval)."
        self.posted = 0
        "Samples the service accepted."

    async def start(self) -> None:
        """Tap the incoming audio and begin measuring (and posting)."""
        if self._tasks:
            return
        self._tap_new_receivers()
        if self._registry is not None:
            self._collector = ProbeCollector(lambda: self.latest)
            self._registry.register(self._collector)
        if self._endpoint is not None and self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT_SECONDS)
            )
        if self._track is not None:
            self._start_speech(self._track)
        self._tasks.append(asyncio.create_task(self._run(), name="qualmon-probe"))

    async def stop(self) -> None:
        """Stop measuring; drop taps, audio state, metrics series and our HTTP session."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for stream in self._streams.values():
            stream.uninstall()
        self._streams.clear()
        if self._speech is not None:
            self._speech.close()
            self._speech = None
        if self._collector is not None and self._registry is not None:
            self._registry.unregister(self._collector)
            self._collector = None
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None

    def snapshot(self) -> ProbeSnapshot:
        """Measure now (also what each interval hands to `on_sample`)."""
        now = time.monotonic()
        streams = [s.sample(now) for s in self._streams.values()]
        return self._summarize(streams, now, [])

    # -- internals -----------------------------------------------------------

    def _summarize(
        self, streams: list[StreamSample], now: float, remote: list[RemoteInbound]
    ) -> ProbeSnapshot:
        segmenter = self._segmenter
        return summarize(
            [s for s in streams if s.rtp.packets_received],
            taken_at=time.time(),
            now=now,
            rtt_seconds=self._rtt.snapshot(now).rtt_seconds,
            remote=remote,
            speech_seconds=segmenter.speech_seconds() if segmenter else None,
            mic_silent=segmenter.mic_silent() if segmenter else None,
            emodel=self._emodel,
        )

    def _tap_new_receivers(self) -> None:
        for transceiver in self._pc.getTransceivers():
            receiver = transceiver.receiver
            if transceiver.kind == "audio" and receiver not in self._streams:
                stream_id = f"qualmon-inbound-{len(self._streams)}"
                self._streams[receiver] = _TappedStream(stream_id, transceiver)

    def _start_speech(self, track: MediaStreamTrack) -> None:
        streams = list(self._streams.values())
        stream = next((s for s in streams if s.receiver.track is track), None)
        stream = stream or (streams[0] if streams else None)
        if stream is None:
            log.warning("no audio receiver on the connection: speech activity is off")
            return
        session_time_of = frame_time_mapper(
            stream.receiver, stream.stats.session_time_of, lambda: stream.first_rtp_timestamp
        )
        self._segmenter = stream.segmenter = SpeechSegmenter()
        self._speech = SpeechPipeline(
            sink=VoiceClassifier(self._segmenter),
            session_time_of=session_time_of,
            vad_mode=self._vad_mode,
        )
        self._tasks.append(asyncio.create_task(self._drain(track), name="qualmon-probe-audio"))

    async def _drain(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                # An audio track yields AudioFrames; aiortc types recv() as Frame | Packet.
                if self._speech is not None and isinstance(frame, av.AudioFrame):
                    self._speech.process(frame)
                del frame  # audio is not kept past classification

    async def _run(self) -> None:
        while self._pc.connectionState != "closed":
            await asyncio.sleep(self._interval)
            try:
                await self._once()
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception:
                log.exception("probe interval failed")

    async def _once(self) -> None:
        self._tap_new_receivers()
        stun_rtt = None
        if self._measure_rtt:
            stun_rtt = await measure_rtt(self._pc, timeout_seconds=min(2.0, self._interval))
            if stun_rtt is not None:
                self._rtt.add_sample(stun_rtt, time.monotonic())
        remote = await self._remote_inbound()
        now = time.monotonic()
        streams = [s.sample(now) for s in self._streams.values()]
        self.latest = self._summarize(streams, now, remote)
        if self._on_sample is not None:
            try:
                self._on_sample(self.latest)
            except Exception:
                log.exception("probe on_sample callback failed")
        endpoint, http = self._endpoint, self._http
        if endpoint is not None and http is not None and now >= self._post_not_before:
            timestamp_ms = max(time.time() * 1000.0, self._last_timestamp_ms + 1.0)
            body = w3c_sample(
                streams,
                timestamp_ms=timestamp_ms,
                stun_rtt_seconds=self._rtt.snapshot(now).rtt_seconds,
                remote=remote,
            )
            if body is not None:
                self._last_timestamp_ms = timestamp_ms
                await self._post(http, endpoint, body, now)

    async def _remote_inbound(self) -> list[RemoteInbound]:
        if self._pc.connectionState == "closed":
            return []
        report = await self._pc.getStats()
        found: list[RemoteInbound] = []
        for stats in report.values():
            if stats.type == "remote-inbound-rtp" and getattr(stats, "kind", None) == "audio":
                found.append(
                    RemoteInbound(
                        stream_id=str(stats.id)[:128],
                        round_trip_time_seconds=getattr(stats, "roundTripTime", None),
                        fraction_lost=getattr(stats, "fractionLost", None),
                    )
                )
        return found[:4]

    async def _post(
        self, http: aiohttp.ClientSession, endpoint: str, body: dict[str, Any], now: float
    ) -> None:
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with http.post(endpoint, json=body, headers=headers) as r:
                status = r.status
                retry_after = r.headers.get("Retry-After", "")
                reason = (await r.text()).strip()[:200]
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._backoff_seconds = min(
                MAX_BACKOFF_SECONDS, max(self._interval, 2 * self._backoff_seconds)
            )
            self._post_not_before = now + self._backoff_seconds
            log.warning(
                "probe post failed (%s); retrying in %.0f s",
                type(exc).__name__,
                self._backoff_seconds,
            )
            return
        self._backoff_seconds = 0.0
        if status == 204:
            self.posted += 1
        elif status == 429:
            self._post_not_before = now + wait_after_429(retry_after)
        elif status in (401, 403):
            log.warning("probe token refused (%d: %s); no more posts", status, reason)
            self._endpoint = None
        else:
            log.warning("probe sample refused (%d: %s)", status, reason)
