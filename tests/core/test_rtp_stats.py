"""Unit tests of the RTP leg statistics (pure numbers, time passed in)."""

from __future__ import annotations

import itertools
import random

import pytest

from qualmon.core.rtp_stats import RtpLegStats

CLOCK = 48000
PTIME = 0.020
STEP = 960


def feed(stats: RtpLegStats, seq: int, ts: int, at: float, ssrc: int = 1, size: int = 80):
    return stats.on_packet(
        ssrc=ssrc,
        sequence_number=seq % 65536,
        rtp_timestamp=ts % (1 << 32),
        clock_rate=CLOCK,
        payload_bytes=size,
        arrival_seconds=at,
    )


def run(stats: RtpLegStats, seqs: list[int], start_seq: int = 0, start_ts: int = 0) -> None:
    """Feed packets with the given offsets, arriving in list order every 20 ms."""
    for i, offset in enumerate(seqs):
        feed(stats, start_seq + offset, start_ts + offset * STEP, i * PTIME)


def test_clean_stream_counts_everything() -> None:
    """A gapless stream has no loss, no jitter and no dropouts."""
    stats = RtpLegStats()
    run(stats, list(range(500)))
    snap = stats.snapshot(10.0)
    assert snap.packets_received == 500
    assert snap.packets_expected == 500
    assert snap.packets_lost == 0
    assert snap.jitter_seconds == pytest.approx(0.0, abs=1e-9)
    assert snap.dropouts == 0


def test_sequence_wrap_is_not_loss() -> None:
    """Crossing 65535 → 0 keeps counting without a phantom gap."""
    stats = RtpLegStats()
    run(stats, list(range(200)), start_seq=65500)
    snap = stats.snapshot(5.0)
    assert snap.packets_expected == 200
    assert snap.packets_lost == 0


def test_loss_counted_from_gaps_across_wrap() -> None:
    """Gaps on both sides of the wrap are all counted."""
    stats = RtpLegStats()
    offsets = [i for i in range(200) if i not in (10, 50, 51, 120)]
    run(stats, offsets, start_seq=65450)
    snap = stats.snapshot(5.0)
    assert snap.packets_lost == 4
    assert snap.loss_ratio == pytest.approx(4 / 200)


def test_reordered_packet_is_not_lost() -> None:
    """A late packet fills its gap and is counted as reordered."""
    stats = RtpLegStats()
    run(stats, [0, 1, 2, 4, 3, 5, 6])
    snap = stats.snapshot(1.0)
    assert snap.packets_lost == 0
    assert snap.reordered == 1
    assert snap.packets_received == 7


def test_reordering_before_first_packet_base() -> None:
    """A packet older than the first one seen is a duplicate-of-nothing, not negative loss."""
    stats = RtpLegStats()
    run(stats, [5, 6, 4, 7])
    snap = stats.snapshot(1.0)
    assert snap.packets_lost == 0
    assert snap.packets_expected == 3


def test_duplicates_are_not_received_twice() -> None:
    """Duplicates neither hide loss nor inflate received."""
    stats = RtpLegStats()
    run(stats, [0, 1, 1, 2, 2, 2, 4, 5])
    snap = stats.snapshot(1.0)
    assert snap.duplicates == 3
    assert snap.packets_received == 5
    assert snap.packets_lost == 1


def test_random_loss_matches_ground_truth() -> None:
    """Loss counted from sequence numbers equals the packets removed."""
    rng = random.Random(7)
    kept = [i for i in range(20000) if rng.random() >= 0.05]
    stats = RtpLegStats()
    run(stats, kept)
    snap = stats.snapshot(500.0)
    # The last packet sent might be dropped and so is invisible: compare with the
    # range the receiver can know about.
    assert snap.packets_lost == (kept[-1] + 1) - len(kept)


def test_huge_jump_is_a_restart() -> None:
    """A sequence jump beyond RFC 3550's MAX_DROPOUT restarts counting without loss."""
    stats = RtpLegStats()
    run(stats, list(range(10)))
    run(stats, list(range(10)), start_seq=30000)
    assert stats.snapshot(1.0).packets_lost == 0
    assert stats.snapshot(1.0).packets_received == 20


def test_new_ssrc_keeps_totals() -> None:
    """A new SSRC (publisher restarted) keeps earlier counts in the totals."""
    stats = RtpLegStats()
    for i in range(10):
        feed(stats, i, i * STEP, i * PTIME, ssrc=1)
    for i in range(10):
        feed(stats, 1000 + i, 777 + i * STEP, 1 + i * PTIME, ssrc=2)
    snap = stats.snapshot(2.0)
    assert snap.packets_received == 20
    assert snap.packets_lost == 0


def test_jitter_matches_hand_computation() -> None:
    """RFC 3550 J = J + (|D| − J)/16 over arrival order, in seconds."""
    delays = [0.0, 0.010, 0.002, 0.030, 0.005, 0.0, 0.020]
    stats = RtpLegStats()
    for i, delay in enumerate(delays):
        feed(stats, i, i * STEP, i * PTIME + delay)
    expected = 0.0
    for prev, cur in itertools.pairwise(delays):
        expected += (abs(cur - prev) - expected) / 16
    assert stats.snapshot(1.0).jitter_seconds == pytest.approx(expected, abs=1e-9)


def test_jitter_uses_reordered_packets() -> None:
    """A reordered arrival contributes its transit difference too."""
    stats = RtpLegStats()
    arrivals = [(0, 0.0), (2, 0.040), (1, 0.045), (3, 0.060)]
    for seq, at in arrivals:
        feed(stats, seq, seq * STEP, at)
    transits = [at - seq * PTIME for seq, at in arrivals]
    expected = 0.0
    for prev, cur in itertools.pairwise(transits):
        expected += (abs(cur - prev) - expected) / 16
    assert stats.snapshot(1.0).jitter_seconds == pytest.approx(expected, abs=1e-9)


def test_timestamp_wrap_does_not_spike_jitter() -> None:
    """Crossing 2^32 in the RTP clock keeps jitter at zero for a regular stream."""
    stats = RtpLegStats()
    run(stats, list(range(100)), start_ts=(1 << 32) - 50 * STEP)
    assert stats.snapshot(3.0).jitter_seconds == pytest.approx(0.0, abs=1e-9)


def test_outage_is_one_dropout_of_its_length() -> None:
    """25 lost packets (500 ms) make one dropout of 0.5 s."""
    stats = RtpLegStats()
    offsets = [i for i in range(300) if not 100 <= i < 125]
    for offset in offsets:
        feed(stats, offset, offset * STEP, offset * PTIME)
    snap = stats.snapshot(10.0)
    assert snap.dropouts == 1
    assert snap.dropout_seconds == pytest.approx(0.5, abs=1e-6)
    assert stats.dropouts[0].missing_packets == 25
    assert stats.dropouts[0].started_at == pytest.approx(99 * PTIME)


def test_short_gap_is_not_a_dropout() -> None:
    """Seven lost packets (140 ms) stay under the 150 ms threshold."""
    stats = RtpLegStats()
    run(stats, [i for i in range(100) if not 10 <= i < 17])
    assert stats.snapshot(5.0).dropouts == 0


def test_dtx_timestamp_jump_is_not_a_dropout() -> None:
    """A timestamp jump with contiguous sequence numbers is DTX silence."""
    stats = RtpLegStats()
    for i in range(10):
        feed(stats, i, i * STEP, i * PTIME)
    # one second of silence: timestamp and arrival both jump, sequence does not
    for i in range(10, 20):
        feed(stats, i, (i + 50) * STEP, (i + 50) * PTIME)
    snap = stats.snapshot(3.0)
    assert snap.dropouts == 0
    assert snap.packets_lost == 0


def test_held_back_packets_are_a_dropout() -> None:
    """Packets stopping and resuming late (no loss) count as missing audio."""
    stats = RtpLegStats()
    for i in range(10):
        feed(stats, i, i * STEP, i * PTIME)
    # packet 10 should arrive at 0.200 s but comes at 0.600 s
    feed(stats, 10, 10 * STEP, 0.600)
    snap = stats.snapshot(1.0)
    assert snap.dropouts == 1
    assert snap.dropout_seconds == pytest.approx(0.400, abs=1e-6)
    assert snap.packets_lost == 0


def test_recent_loss_window_forgets_old_loss() -> None:
    """Loss long ago leaves the recent ratio while the cumulative ratio keeps it."""
    stats = RtpLegStats(recent_window_seconds=5.0)
    offsets = [i for i in range(1000) if not (i < 250 and i % 2)]
    for offset in offsets:
        feed(stats, offset, offset * STEP, offset * PTIME)
    snap = stats.snapshot(1000 * PTIME)
    assert snap.loss_ratio == pytest.approx(125 / 1000)
    assert snap.recent_loss_ratio == pytest.approx(0.0, abs=1e-9)


def test_recent_loss_window_sees_new_loss() -> None:
    """Loss inside the window shows in the recent ratio."""
    stats = RtpLegStats(recent_window_seconds=5.0)
    offsets = [i for i in range(1000) if not (i >= 700 and i % 10 == 0)]
    for offset in offsets:
        feed(stats, offset, offset * STEP, offset * PTIME)
    snap = stats.snapshot(1000 * PTIME)
    assert snap.recent_loss_ratio == pytest.approx(0.1, abs=0.02)


def test_bitrate_over_window() -> None:
    """100 bytes every 20 ms is 40 kbit/s."""
    stats = RtpLegStats()
    for i in range(500):
        feed(stats, i, i * STEP, i * PTIME, size=100)
    assert stats.snapshot(500 * PTIME).bitrate_bps == pytest.approx(40000, rel=0.02)


def test_silence_before_first_packet() -> None:
    """Before any packet every number is zero and last_packet_at is None."""
    stats = RtpLegStats()
    snap = stats.snapshot(3.0)
    assert snap.packets_expected == 0
    assert snap.loss_ratio == 0.0
    assert snap.last_packet_at is None
    assert stats.seconds_since_last_packet(3.0) is None


def test_dropout_media_interval_and_session_time() -> None:
    """The outage's missing audio is placed on the session clock via RTP time."""
    stats = RtpLegStats()
    offset = 100.0  # constant transit: session time = RTP time + 100 s
    for i in [i for i in range(300) if not 100 <= i < 125]:
        feed(stats, i, i * STEP, offset + i * PTIME)
    dropout = stats.dropouts[0]
    assert dropout.media_start == pytest.approx(offset + 100 * PTIME)
    assert dropout.media_end == pytest.approx(offset + 125 * PTIME)
    assert stats.session_time_of(150 * STEP) == pytest.approx(offset + 150 * PTIME)


def test_session_time_uses_least_delayed_packets() -> None:
    """Jittered arrivals map RTP time onto the lowest transit, not an average."""
    stats = RtpLegStats()
    for i in range(100):
        feed(stats, i, i * STEP, 5.0 + i * PTIME + (0.030 if i % 2 else 0.0))
    assert stats.session_time_of(0) == pytest.approx(5.0)
    assert stats.session_time_of(None or 0) is not None
    assert RtpLegStats().session_time_of(0) is None


def test_short_window_loss_for_warnings() -> None:
    """The 2 s window sees a loss burst the 5 s window dilutes, and forgets it quickly."""
    stats = RtpLegStats(recent_window_seconds=5.0)
    offsets = [i for i in range(500) if not (400 <= i < 500 and i % 5 == 0)]
    for offset in offsets:
        feed(stats, offset, offset * STEP, offset * PTIME)
    now = 499 * PTIME
    assert stats.window_loss_ratio(now, 2.0) == pytest.approx(0.2, abs=0.03)
    assert RtpLegStats().window_loss_ratio(1.0, 2.0) is None


def test_window_loss_needs_enough_packets() -> None:
    """One loss among the first few packets is not reported as a rate."""
    stats = RtpLegStats()
    for offset in [0, 1, 3, 4, 5]:
        feed(stats, offset, offset * STEP, offset * PTIME)
    assert stats.window_loss_ratio(0.1, 2.0) == pytest.approx(1 / 5)  # since the 1st packet
    assert stats.window_loss_ratio(0.1, 2.0, min_expected=80) is None
