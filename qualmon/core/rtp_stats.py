"""Per-leg RTP statistics from sequence numbers, RTP timestamps and arrival times."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
# RFC 3550 appendix A.1: a jump larger than this is a restart, not loss.
MAX_DROPOUT_PACKETS = 3000
MAX_MISORDER_PACKETS = 100
# Remember this many recent sequence numbers to recognise duplicates.
DUPLICATE_MEMORY_PACKETS = 1024
# A timestamp step above this is DTX silence or a pause, not a packet's worth of audio.
MAX_PTIME_SECONDS = 0.120
DEFAULT_PTIME_SECONDS = 0.020
CHECKPOINT_EVERY_SECONDS = 0.25
# The RTP→session clock mapping uses the lowest transit seen over this many buckets.
TRANSIT_BUCKET_SECONDS = 2.0
TRANSIT_BUCKETS = 5


@dataclass(frozen=True)
class Dropout:
    """A stretch of missing audio on one leg, found when media resumed."""

    started_at: float
    "Arrival time (monotonic seconds) of the last packet before the gap."
    duration_seconds: float
    "Missing audio: lost packets' duration plus how late the resuming packet came."
    missing_packets: int
    "Packets lost inside the gap (0 when packets were only held back)."
    media_start: float = 0.0
    "Where the missing audio begins on the session clock (RTP time mapped to arrival)."
    media_end: float = 0.0
    "Where audio resumes on the session clock."


@dataclass(frozen=True)
class RtpSnapshot:
    """Counters and estimates of one leg at one moment."""

    packets_received: int
    "Unique RTP packets received (duplicates excluded)."
    packets_expected: int
    "Packets the sequence numbers say were sent (RFC 3550 expected)."
    packets_lost: int
    "expected − received, never below 0; a late reordered packet reduces it."
    duplicates: int
    "Packets seen twice."
    reordered: int
    "Packets that arrived after a higher sequence number."
    loss_ratio: float
    "Cumulative lost / expected (0 when nothing was expected)."
    recent_loss_ratio: float
    "Lost / expected over the recent window."
    jitter_seconds: float
    "RFC 3550 interarrival jitter, computed on every arrival."
    dropouts: int
    "Dropouts found so far."
    dropout_seconds: float
    "Summed duration of those dropouts."
    bytes_received: int
    "RTP payload bytes received."
    bitrate_bps: float
    "Payload bitrate over the recent window."
    last_packet_at: float | None
    "Arrival time (monotonic seconds) of the newest packet, None before the first."


@dataclass(slots=True)
class _Stream:
    """Sequence state of one SSRC."""

    clock_rate: int
    base_ext_seq: int
    max_ext_seq: int
    last_ts: int
    last_arrival: float
    ptime_seconds: float = DEFAULT_PTIME_SECONDS
    received: int = 1
    transit_prev: float | None = None
    jitter_seconds: float = 0.0
    # Timestamp of the previous arrival, raw and unwrapped, for jitter across 2^32.
    jitter_ts_raw: int = 0
    jitter_ts_unwrapped: int = 0
    last_ts_unwrapped: int = 0
    "RTP timestamp of the newest in-order packet, unwrapped (same origin as jitter's)."

    @property
    def expected(self) -> int:
        return self.max_ext_seq - self.base_ext_seq + 1


def _signed_delta(new: int, old: int, modulus: int) -> int:
    """Difference new − old on a wrapping counter, in (−modulus/2, modulus/2]."""
    delta = (new - old) % modulus
    return delta - modulus if delta > modulus // 2 else delta


class RtpLegStats:
    """Loss, jitter, dropouts and bitrate of one leg; the caller passes arrival times."""

    def __init__(
        self,
        *,
        dropout_threshold_seconds: float = 0.150,
        recent_window_seconds: float = 5.0,
    ) -> None:
        self._dropout_threshold = dropout_threshold_seconds
        self._window = recent_window_seconds
        self._ssrc: int | None = None
        self._stream: _Stream | None = None
        # Counts of streams that ended (SSRC change, restart), kept in the totals.
        self._retired_expected = 0
        self._retired_received = 0
        self._seen: set[int] = set()
        self._seen_order: deque[int] = deque()
        self.duplicates = 0
        self.reordered = 0
        self.bytes_received = 0
        self.dropouts: list[Dropout] = []
        self.dropout_seconds = 0.0
        self._checkpoints: deque[tuple[float, int, int, int]] = deque()
        self.last_packet_at: float | None = None
        # (bucket start, lowest transit in it): the least-delayed packets anchor RTP time.
        self._transit_buckets: deque[tuple[float, float]] = deque()

    # -- input -------------------------------------------------------------

    def on_packet(
        self,
        *,
        ssrc: int,
        sequence_number: int,
        rtp_timestamp: int,
        clock_rate: int,
        payload_bytes: int,
        arrival_seconds: float,
    ) -> Dropout | None:
        """Account one received packet; returns the dropout it ended, if any."""
        self.last_packet_at = arrival_seconds
        stream = self._stream
        if stream is None or ssrc != self._ssrc or clock_rate != stream.clock_rate:
            self._start_stream(ssrc, sequence_number, rtp_timestamp, clock_rate, arrival_seconds)
            self.bytes_received += payload_bytes
            self._checkpoint(arrival_seconds)
            return None

        delta = _signed_delta(sequence_number, stream.max_ext_seq % SEQ_MOD, SEQ_MOD)
        dropout: Dropout | None = None
        if 0 < delta < MAX_DROPOUT_PACKETS:
            ext = stream.max_ext_seq + delta
            dropout = self._in_order(stream, ext, delta - 1, rtp_timestamp, arrival_seconds)
        elif delta <= 0 and -delta < MAX_MISORDER_PACKETS:
            ext = stream.max_ext_seq + delta
            if ext in self._seen or ext < stream.base_ext_seq:
                self.duplicates += 1
                return None
            self.reordered += 1
            stream.received += 1
            self._remember(ext)
        else:
            # A jump this large is a sender restart: start counting afresh.
            self._start_stream(ssrc, sequence_number, rtp_timestamp, clock_rate, arrival_seconds)
            self.bytes_received += payload_bytes
            self._checkpoint(arrival_seconds)
            return None

        self._update_jitter(stream, rtp_timestamp, arrival_seconds)
        self.bytes_received += payload_bytes
        self._checkpoint(arrival_seconds)
        return dropout

    def _start_stream(self, ssrc: int, seq: int, ts: int, clock_rate: int, arrival: float) -> None:
        if self._stream is not None:
            self._retired_expected += self._stream.expected
            self._retired_received += self._stream.received
        self._ssrc = ssrc
        # Extended numbers start one cycle up so early reordering never goes negative.
        ext = SEQ_MOD + seq
        self._stream = _Stream(
            clock_rate=clock_rate,
            base_ext_seq=ext,
            max_ext_seq=ext,
            last_ts=ts,
            last_arrival=arrival,
            transit_prev=arrival - ts / clock_rate,
            jitter_ts_raw=ts,
            jitter_ts_unwrapped=ts,
            last_ts_unwrapped=ts,
        )
        self._transit_buckets.clear()
        self._note_transit(arrival, arrival - ts / clock_rate)
        self._seen.clear()
        self._seen_order.clear()
        self._remember(ext)

    def _in_order(
        self, stream: _Stream, ext: int, missing: int, ts: int, arrival: float
    ) -> Dropout | None:
        ts_step = _signed_delta(ts, stream.last_ts, TS_MOD)
        ts_step_seconds = ts_step / stream.clock_rate
        if missing == 0 and 0 < ts_step_seconds <= MAX_PTIME_SECONDS:
            stream.ptime_seconds = ts_step_seconds
        missing_seconds = missing * stream.ptime_seconds
        # How much later than its timestamp promised this packet came: packets held
        # back and then released are a gap too, while DTX (timestamp jump) is not.
        late_seconds = (arrival - stream.last_arrival) - ts_step_seconds
        gap_seconds = missing_seconds + max(0.0, late_seconds)
        dropout = None
        if gap_seconds >= self._dropout_threshold:
            floor = self._transit_floor()
            previous_media = stream.last_ts_unwrapped / stream.clock_rate + floor
            dropout = Dropout(
                started_at=stream.last_arrival,
                duration_seconds=gap_seconds,
                missing_packets=missing,
                media_start=previous_media + stream.ptime_seconds,
                media_end=previous_media
                + max(ts_step_seconds, stream.ptime_seconds)
                + max(0.0, late_seconds),
            )
            self.dropouts.append(dropout)
            self.dropout_seconds += gap_seconds
        stream.max_ext_seq = ext
        stream.last_ts_unwrapped += ts_step
        stream.last_ts = ts
        stream.last_arrival = arrival
        stream.received += 1
        self._remember(ext)
        return dropout

    def _update_jitter(self, stream: _Stream, ts: int, arrival: float) -> None:
        # RFC 3550 6.4.1 on every arrival (aiortc only uses in-order packets and
        # reads low under reordering). Timestamps are unwrapped against the previous
        # arrival so a wrap of the 32-bit clock does not produce a huge D.
        unwrapped_ts = stream.jitter_ts_unwrapped + _signed_delta(ts, stream.jitter_ts_raw, TS_MOD)
        stream.jitter_ts_raw = ts
        stream.jitter_ts_unwrapped = unwrapped_ts
        transit = arrival - unwrapped_ts / stream.clock_rate
        if stream.transit_prev is not None:
            d = abs(transit - stream.transit_prev)
            stream.jitter_seconds += (d - stream.jitter_seconds) / 16.0
        stream.transit_prev = transit
        self._note_transit(arrival, transit)

    def _note_transit(self, arrival: float, transit: float) -> None:
        buckets = self._transit_buckets
        if buckets and arrival - buckets[-1][0] < TRANSIT_BUCKET_SECONDS:
            if transit < buckets[-1][1]:
                buckets[-1] = (buckets[-1][0], transit)
            return
        buckets.append((arrival, transit))
        if len(buckets) > TRANSIT_BUCKETS:
            buckets.popleft()

    def _transit_floor(self) -> float:
        return min(t for _, t in self._transit_buckets)

    def session_time_of(self, rtp_timestamp: int) -> float | None:
        """Session-clock time of audio with this RTP timestamp (None before any packet).

        RTP time plus the lowest recent transit: where the sample would have arrived on
        the least-delayed path. Both roles land on one timeline this way, without the
        jitter buffer's playout delay.
        """
        stream = self._stream
        if stream is None or not self._transit_buckets:
            return None
        unwrapped = stream.last_ts_unwrapped + _signed_delta(rtp_timestamp, stream.last_ts, TS_MOD)
        return unwrapped / stream.clock_rate + self._transit_floor()

    def _remember(self, ext: int) -> None:
        self._seen.add(ext)
        self._seen_order.append(ext)
        if len(self._seen_order) > DUPLICATE_MEMORY_PACKETS:
            self._seen.discard(self._seen_order.popleft())

    def _checkpoint(self, now: float) -> None:
        last = self._checkpoints[-1][0] if self._checkpoints else None
        if last is not None and now - last < CHECKPOINT_EVERY_SECONDS:
            return
        self._checkpoints.append(
            (now, self.packets_expected, self.packets_received, self.bytes_received)
        )
        # Keep one checkpoint older than the window so the window is always spanned.
        while len(self._checkpoints) > 2 and self._checkpoints[1][0] <= now - self._window:
            self._checkpoints.popleft()

    # -- output ------------------------------------------------------------

    @property
    def packets_expected(self) -> int:
        current = self._stream.expected if self._stream else 0
        return self._retired_expected + current

    @property
    def packets_received(self) -> int:
        current = self._stream.received if self._stream else 0
        return self._retired_received + current

    @property
    def jitter_seconds(self) -> float:
        return self._stream.jitter_seconds if self._stream else 0.0

    def seconds_since_last_packet(self, now: float) -> float | None:
        return None if self.last_packet_at is None else now - self.last_packet_at

    def snapshot(self, now: float) -> RtpSnapshot:
        """Read the statistics (recent loss and bitrate over the last window_seconds)."""
        expected = self.packets_expected
        received = self.packets_received
        lost = max(0, expected - received)
        recent_loss = 0.0
        bitrate = 0.0
        start = self._window_start(now, self._window)
        if start is not None:
            t0, _, _, bytes0 = start
            recent_loss = self.recent_loss_ratio(now)
            if now > t0:
                bitrate = (self.bytes_received - bytes0) * 8 / (now - t0)
        return RtpSnapshot(
            packets_received=received,
            packets_expected=expected,
            packets_lost=lost,
            duplicates=self.duplicates,
            reordered=self.reordered,
            loss_ratio=lost / expected if expected else 0.0,
            recent_loss_ratio=recent_loss,
            jitter_seconds=self.jitter_seconds,
            dropouts=len(self.dropouts),
            dropout_seconds=self.dropout_seconds,
            bytes_received=self.bytes_received,
            bitrate_bps=bitrate,
            last_packet_at=self.last_packet_at,
        )

    def recent_loss_ratio(self, now: float) -> float:
        """Loss over the recent window (snapshot's recent_loss_ratio, without the rest)."""
        start = self._window_start(now, self._window)
        return 0.0 if start is None else self._loss_since(start, min_expected=1) or 0.0

    def window_loss_ratio(
        self, now: float, seconds: float, *, min_expected: int = 1
    ) -> float | None:
        """Loss over roughly the last `seconds` (checkpoint resolution 0.25 s); None if fewer
        than `min_expected` packets were expected in it (one loss in a handful is no rate)."""
        self._checkpoint(now)
        start = self._window_start(now, seconds)
        return None if start is None else self._loss_since(start, min_expected=min_expected)

    def _window_start(self, now: float, seconds: float) -> tuple[float, int, int, int] | None:
        """The newest checkpoint at least `seconds` old, else the oldest one."""
        start = None
        for checkpoint in reversed(self._checkpoints):
            start = checkpoint
            if checkpoint[0] <= now - seconds:
                break
        return start

    def _loss_since(self, start: tuple[float, int, int, int], *, min_expected: int) -> float | None:
        d_expected = self.packets_expected - start[1]
        if d_expected < max(1, min_expected):
            return None
        d_received = self.packets_received - start[2]
        return min(1.0, max(0.0, (d_expected - d_received) / d_expected))
