"""Fakes for unit tests of sessions, warnings and reports: a hand-driven clock, a leg source
fed by hand, and observers that record every call. No aiortc, no network, no sleeps."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from qualmon.config import Settings
from qualmon.core.heard import HeardSample, InboundAudio
from qualmon.core.leg_source import LegFeed
from qualmon.core.rtp_stats import Dropout
from qualmon.core.video import VideoSnapshot, VideoStats
from qualmon.core.warnings import WarningEvent
from qualmon.sessions.leg import EndReason, Leg, LegSnapshot
from qualmon.sessions.observer import SessionEnd, SessionObserver
from qualmon.sessions.registry import SessionRegistry
from qualmon.sessions.session import ConversationDeltas, Session
from qualmon.warnings.runtime import WarningObserver

MONOTONIC_START = 5000.0
"""Start of the fake monotonic clock. Every double in [4096, 8192) is a multiple of 2^-40,
so adding 0.25, 1.0 or 2.0 to a reading is exact and `(t + 2.0) - t == 2.0`: timer
boundaries can be tested exactly for the first ~3000 fake seconds."""
WALL_START = 1_764_000_000.0
"Unix seconds of the linked wall clock at MONOTONIC_START."
ANSWER = "v=0 fake-answer"
PROBE_T0_MS = 1_764_000_000_000.0
PTIME = 0.020
CLOCK_RATE = 48000


class FakeClock:
    """A clock that moves only when told: `clock()` reads it, `clock.advance(s)` moves it."""

    def __init__(self, start: float = MONOTONIC_START) -> None:
        self.now = start
        self._start = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self.now += seconds
        return self.now

    def advance_to(self, when: float) -> float:
        """Move to `when` exactly (e.g. `last_packet + 2.0`, to test a timer's boundary)."""
        if when < self.now:
            raise ValueError("a clock does not go back")
        self.now = when
        return self.now

    def wall(self) -> float:
        """Unix seconds that move with this clock (a wall clock linked to it)."""
        return WALL_START + (self.now - self._start)


@dataclass(frozen=True)
class FakePacket:
    """An RTP packet as a source hands it over (satisfies `RtpPacketView`)."""

    ssrc: int
    sequence_number: int
    timestamp: int
    payload_type: int = 111
    payload: bytes = b"\x00" * 80
    marker: int = 0


class FakeSource:
    """A `LegSource[str]` driven by hand: packets, speech frames, RTT and failure.

    Sequence numbers are kept unwrapped here (`next_seq` may pass 65535); packets carry them
    modulo 2^16, timestamps follow them at one `ptime` of audio per packet.
    """

    kind = "fake"

    def __init__(
        self,
        feed: LegFeed,
        *,
        clock: FakeClock,
        answer: str = ANSWER,
        ssrc: int = 0x5EED,
        first_seq: int = 1000,
        ptime_seconds: float = PTIME,
        clock_rate_hz: int = CLOCK_RATE,
        fail_start: Exception | None = None,
    ) -> None:
        self.feed = feed
        self.clock = clock
        self.answer = answer
        self.ssrc = ssrc
        self.first_seq = first_seq
        self.next_seq = first_seq
        self.ptime = ptime_seconds
        self.clock_rate_hz = clock_rate_hz
        self.fail_start = fail_start
        self.started = False
        self.close_calls = 0
        self.close_gate: asyncio.Event | None = None
        "When set, close() waits for it: a peer that takes its time to go."
        self.frames = 0
        self.arrivals: dict[int, float] = {}
        "Unwrapped sequence number → arrival time of every packet delivered."

    # -- LegSource -------------------------------------------------------------

    async def start(self) -> str:
        self.feed.use_clock_rate(self.clock_rate_hz)
        if self.fail_start is not None:
            raise self.fail_start
        self.started = True
        return self.answer

    async def close(self) -> None:
        self.close_calls += 1
        if self.close_gate is not None:
            await self.close_gate.wait()

    @property
    def closed(self) -> bool:
        return self.close_calls > 0

    @property
    def frames_classified(self) -> int:
        return self.frames

    # -- driving the feed --------------------------------------------------------

    def timestamp_of(self, seq: int) -> int:
        return round((seq - self.first_seq) * self.ptime * self.clock_rate_hz) % (1 << 32)

    def media_time(self, seq: int) -> float:
        """Where packet `seq`'s audio lies on the session clock (after the first packet)."""
        found = self.feed.session_time_of(self.timestamp_of(seq))
        if found is None:
            raise AssertionError("no packet yet: the session clock is not anchored")
        return found

    def deliver(self, seq: int, *, speech: bool | None = None) -> None:
        """Packet `seq` arrives now; with `speech`, its 20 ms of audio is classified too."""
        packet = FakePacket(self.ssrc, seq % 65536, self.timestamp_of(seq))
        self.arrivals[seq] = self.clock()
        self.feed.on_rtp(packet, arrival_seconds=self.clock())
        if speech is not None:
            self.feed.add_frame(self.media_time(seq), self.ptime, speech)
            self.frames += 1

    def step(self, *, lost: bool = False, speech: bool | None = None) -> int:
        """The next packet arrives now (or is lost); returns its sequence number."""
        seq = self.next_seq
        self.next_seq += 1
        if not lost:
            self.deliver(seq, speech=speech)
        return seq

    def send(
        self,
        count: int,
        *,
        start_seq: int | None = None,
        interval_seconds: float | None = None,
        lose: Collection[int] = frozenset(),
        speech: bool | None = None,
    ) -> None:
        """`count` packets from `start_seq` (default: the next one), each after advancing the
        clock by `interval_seconds` (default: ptime); sequence numbers in `lose` never arrive."""
        if start_seq is not None:
            self.next_seq = start_seq
        interval = self.ptime if interval_seconds is None else interval_seconds
        for _ in range(count):
            self.clock.advance(interval)
            self.step(lost=self.next_seq in lose, speech=speech)

    def speak(self, start: float, seconds: float, is_speech: bool) -> None:
        """VAD decisions for [start, start + seconds) on the session clock, 20 ms each."""
        for i in range(round(seconds / self.ptime)):
            self.feed.add_frame(start + i * self.ptime, self.ptime, is_speech)
            self.frames += 1

    def rtt(self, seconds: float | None) -> None:
        self.feed.on_rtt(seconds)

    def video_frame(
        self, number: int, *, packets: int = 2, ssrc: int = 0xF1DE0, lose: Collection[int] = ()
    ) -> None:
        """Video frame `number` (30 fps RTP time) arrives now as `packets` VP8 packets, the
        first starting the partition, the last marked; packet indexes in `lose` never arrive.
        The leg must have been told the codec (`feed.use_video_codec("vp8")`)."""
        for index in range(packets):
            if index in lose:
                continue
            # VP8 payload descriptor: S bit (0x10) on the frame's first packet, PID 0.
            descriptor = b"\x10" if index == 0 else b"\x00"
            packet = FakePacket(
                ssrc,
                (number * packets + index) % 65536,
                number * 3000 % (1 << 32),
                payload_type=96,
                payload=descriptor + b"\x01" * 600,  # inter frame (keyframe bit clear)
                marker=int(index == packets - 1),
            )
            self.feed.on_video_rtp(packet, arrival_seconds=self.clock())

    def fail(self) -> None:
        self.feed.on_failed()


def send_together(
    clock: FakeClock,
    sources: Collection[FakeSource],
    count: int,
    *,
    lose: Mapping[FakeSource, Collection[int]] | None = None,
    speech: Mapping[FakeSource, bool | None] | None = None,
) -> None:
    """Several legs sending at once on one clock: each step advances it by one ptime."""
    [ptime] = {source.ptime for source in sources}
    for _ in range(count):
        clock.advance(ptime)
        for source in sources:
            lost = source.next_seq in (lose or {}).get(source, ())
            source.step(lost=lost, speech=(speech or {}).get(source))


async def attach(
    registry: SessionRegistry, session_id: str, role: str, clock: FakeClock, **kwargs: Any
) -> tuple[Leg, FakeSource]:
    """`registry.add_leg` with a FakeSource; returns the leg and its source."""
    made: list[FakeSource] = []

    def make(feed: LegFeed) -> FakeSource:
        made.append(FakeSource(feed, clock=clock, **kwargs))
        return made[-1]

    leg, answer = await registry.add_leg(session_id, role, make)
    assert answer == made[0].answer
    return leg, made[0]


def fake_leg(
    settings: Settings, clock: FakeClock, *, role: str = "client", session_id: str = "s1", **kw: Any
) -> tuple[Leg, FakeSource]:
    """A bare Leg fed by a FakeSource (no registry), as the registry would wire it."""
    leg = Leg(
        resource_id=f"r-{session_id}-{role}",
        session_id=session_id,
        role=role,
        settings=settings,
        clock=clock,
        **kw,
    )
    source = FakeSource(leg, clock=clock)
    leg.source = source
    leg.use_clock_rate(source.clock_rate_hz)
    return leg, source


def join_session(
    session: Session, role: str, settings: Settings, clock: FakeClock
) -> tuple[Leg, FakeSource]:
    """A fake leg in the role's slot of `session`, feeding the role's segmenter (as the
    registry wires it, without the registry)."""
    leg, source = fake_leg(settings, clock, role=role, session_id=session.id)
    slot = session.slot(role)
    leg.use_segmenter(slot.segmenter, slot.voice)
    slot.leg = leg
    return leg, source


def probe_sample(i: int, *, concealed_per_interval: int = 0) -> HeardSample:
    """The i-th sample of a probe hearing 20 ms packets, 2 s apart (cumulative counters)."""
    return HeardSample(
        timestamp_ms=PROBE_T0_MS + 2000 * i,
        inbound=(
            InboundAudio(
                "IT01A",
                packets_received=100 * (i + 1),
                packets_lost=i,
                concealed_samples=concealed_per_interval * i,
                silent_concealed_samples=0,
                total_samples_received=96_000 * (i + 1),
            ),
        ),
        rtt_seconds=0.04,
        remote_fraction_lost=None,
    )


def video_snapshot(**changes: Any) -> VideoSnapshot:
    """A steady 30 fps VP8 picture at 640×480 with nothing wrong, with `changes` applied."""
    values: dict[str, Any] = {
        "codec": "vp8",
        "frames_received": 0,
        "frames_incomplete": 0,
        "frames_per_second": 30.0,
        "freezes": 0,
        "freeze_seconds": 0.0,
        "pauses": 0,
        "pause_seconds": 0.0,
        "keyframes": 1,
        "width": 640,
        "height": 480,
        "packets_received": 0,
        "packets_lost": 0,
        "loss_ratio": 0.0,
        "jitter_seconds": 0.002,
        "bitrate_bps": 1_000_000.0,
        "keyframe_requests": 0,
    }
    values.update(changes)
    return VideoSnapshot(**values)


class FakeVideo(VideoStats):
    """A leg's video whose snapshot is set by hand (`leg.video = FakeVideo()`): the outputs
    read constructed `VideoSnapshot`s, no packet is parsed."""

    def __init__(self, snapshot: VideoSnapshot | None = None) -> None:
        super().__init__("vp8")
        self.current = snapshot or video_snapshot()
        self.asked_at: list[float] = []

    def set(self, **changes: Any) -> None:
        """Change the snapshot's fields (e.g. freezes=2, freeze_seconds=0.4)."""
        self.current = dataclasses.replace(self.current, **changes)

    def freeze(self, seconds: float) -> None:
        """One more W3C freeze of `seconds`."""
        self.set(
            freezes=self.current.freezes + 1,
            freeze_seconds=self.current.freeze_seconds + seconds,
        )

    def snapshot(self, now: float) -> VideoSnapshot:
        self.asked_at.append(now)
        return self.current


def give_video(leg: Leg, video: FakeVideo | None = None) -> FakeVideo:
    """Make `leg` a video leg whose measures are set by hand (the edge sets `Leg.video` from
    `use_video_codec`)."""
    found = video or FakeVideo()
    leg.video = found
    return found


class RecordingObserver(SessionObserver):
    """Records every call the session layer makes, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def of(self, name: str) -> list[tuple[Any, ...]]:
        """The arguments of every call to `name`, in order."""
        return [args for called, args in self.calls if called == name]

    def on_dropout(self, role: str, dropout: Dropout) -> None:
        self.calls.append(("on_dropout", (role, dropout)))

    def on_dropout_in_speech(self, role: str, dropout: Dropout) -> None:
        self.calls.append(("on_dropout_in_speech", (role, dropout)))

    def on_rtt(self, role: str, rtt_seconds: float) -> None:
        self.calls.append(("on_rtt", (role, rtt_seconds)))

    def on_packets(self, role: str, received: int, lost: int) -> None:
        self.calls.append(("on_packets", (role, received, lost)))

    def on_leg_sample(self, role: str, snapshot: LegSnapshot) -> None:
        self.calls.append(("on_leg_sample", (role, snapshot)))

    def on_leg_ended(self, role: str, reason: EndReason) -> None:
        self.calls.append(("on_leg_ended", (role, reason)))

    def on_reconnect(self, role: str) -> None:
        self.calls.append(("on_reconnect", (role,)))

    def on_conversation(self, deltas: ConversationDeltas) -> None:
        self.calls.append(("on_conversation", (deltas,)))

    def on_session_sample(self, session: Session, now: float) -> None:
        self.calls.append(("on_session_sample", (session, now)))

    def on_session_ended(self, ended: SessionEnd) -> None:
        self.calls.append(("on_session_ended", (ended,)))


class RecordingWarningObserver(WarningObserver):
    """Records every warning event, with its session id, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, WarningEvent]] = []

    def on_warning(self, session_id: str, event: WarningEvent) -> None:
        self.events.append((session_id, event))
