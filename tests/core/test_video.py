"""Unit tests of the video measures from RTP (synthetic streams, time passed in)."""

from __future__ import annotations

import random

import pytest

from qualmon.core.video import FPS_MEMORY_FRAMES, FREEZE_WINDOW_FRAMES, VideoStats
from qualmon.core.video_frames import MAX_PENDING_FRAMES

from .video_streams import Packet, Vp8Sender, delayed, feed, h264_frame

FRAME = 1 / 30
SPREAD = 0.001
"Packets of a frame arrive 1 ms apart: a frame completes 2 ms after its first packet."


def steady(seconds: float, **sender: int) -> tuple[VideoStats, Vp8Sender]:
    stats, vp8 = VideoStats("vp8"), Vp8Sender(**sender)
    feed(stats, vp8.frames(round(seconds * 30), 0.0))
    return stats, vp8


def test_steady_30_fps() -> None:
    """A steady 30 fps stream: 30 ± 1 fps at any moment, no freeze, nothing lost, the
    keyframe's size, and the payload bitrate."""
    stats, _ = steady(10.0)
    for now in (2.0, 5.01, 7.333, 9.99):
        assert stats.snapshot(now).frames_per_second == pytest.approx(30, abs=1)
    snap = stats.snapshot(10.0)
    assert snap.codec == "vp8"
    assert snap.frames_received == 300
    assert (snap.frames_incomplete, snap.freezes, snap.pauses) == (0, 0, 0)
    assert snap.freeze_seconds == 0.0
    assert (snap.keyframes, snap.width, snap.height) == (1, 320, 240)
    assert (snap.packets_received, snap.packets_lost, snap.loss_ratio) == (900, 0, 0.0)
    assert snap.bitrate_bps == pytest.approx(3 * 400 * 8 * 30, rel=0.05)
    assert snap.keyframe_requests == 0


def test_three_stalls_of_400_ms_are_three_freezes() -> None:
    """Three 400 ms stalls at 30 fps: three freezes, each as long as its inter-frame delay."""
    stats, vp8 = VideoStats("vp8"), Vp8Sender()
    at, totals = 0.0, []
    for _stall in range(3):
        for _ in range(60):
            feed(stats, vp8.frame(at))
            at += FRAME
        at += 0.400  # the stall: the next frame comes 433 ms after the previous
        feed(stats, vp8.frame(at))
        at += FRAME
        totals.append(stats.snapshot(at).freeze_seconds)
    snap = stats.snapshot(at)
    assert snap.freezes == 3
    delay = FRAME + 0.400
    assert totals == pytest.approx([delay, 2 * delay, 3 * delay])
    assert snap.pauses == 0
    assert snap.frames_received == 183


@pytest.mark.parametrize(("stalled_frame", "freezes"), [(4, 0), (5, 1)])
def test_freezes_are_judged_from_the_fifth_delay(stalled_frame: int, freezes: int) -> None:
    """libwebrtc judges once its window holds 5 delays, the judged one included."""
    stats, vp8 = VideoStats("vp8"), Vp8Sender()
    at = 0.0
    for i in range(10):
        at += 0.5 if i == stalled_frame else FRAME
        feed(stats, vp8.frame(at))
    assert stats.snapshot(at).freezes == freezes


def test_gap_of_6_seconds_is_a_pause_not_a_freeze() -> None:
    """> 5 s without a frame is a pause (counted while it lasts), never a freeze."""
    stats, vp8 = VideoStats("vp8"), Vp8Sender()
    feed(stats, vp8.frames(90, 0.0))
    last = 89 * FRAME + 2 * SPREAD
    assert stats.snapshot(last + 3.0).pauses == 0
    in_progress = stats.snapshot(last + 5.5)
    assert (in_progress.pauses, in_progress.freezes) == (1, 0)
    assert in_progress.pause_seconds == pytest.approx(5.5)
    assert in_progress.frames_per_second == 0
    resume = 89 * FRAME + 6.0
    feed(stats, vp8.frames(60, resume))
    snap = stats.snapshot(resume + 2.0)
    assert (snap.pauses, snap.freezes) == (1, 0)
    assert snap.pause_seconds == pytest.approx(6.0)


def test_a_pause_leaves_the_freeze_window_alone() -> None:
    """The pause's delay is not averaged: a 400 ms stall right after it is still a freeze."""
    stats, vp8 = VideoStats("vp8"), Vp8Sender()
    feed(stats, vp8.frames(30, 0.0))
    feed(stats, vp8.frames(1, 8.0))
    feed(stats, vp8.frames(2, 8.5, period=FRAME))
    assert stats.snapshot(9.0).freezes == 1
    assert stats.snapshot(9.0).pauses == 1


def drop_frames(packets: list[Packet], frames: set[int], per_frame: int = 3) -> list[Packet]:
    """Lose the middle packet of the given frames."""
    return [p for i, p in enumerate(packets) if not (i // per_frame in frames and i % 3 == 1)]


@pytest.mark.parametrize(("lost_in_a_row", "freezes"), [(1, 0), (4, 0), (5, 1)])
def test_lost_frames_are_skipped_not_frozen(lost_in_a_row: int, freezes: int) -> None:
    """The rule: freezes are judged on complete frames only; an incomplete frame is skipped.
    One lost frame makes a 67 ms delay (threshold 183 ms at 30 fps): no freeze; only a run of
    5 lost frames (200 ms without a complete picture) is one."""
    stats, vp8 = VideoStats("vp8"), Vp8Sender()
    packets = vp8.frames(120, 0.0)
    feed(stats, drop_frames(packets, set(range(60, 60 + lost_in_a_row))))
    snap = stats.snapshot(4.0)
    assert snap.frames_incomplete == lost_in_a_row
    assert snap.frames_received == 120 - lost_in_a_row
    assert snap.freezes == freezes
    assert snap.freeze_seconds == pytest.approx(freezes * (lost_in_a_row + 1) * FRAME)
    assert snap.packets_lost == lost_in_a_row


def test_5_percent_random_loss_makes_incomplete_frames_not_freezes() -> None:
    """5 % packet loss: every frame that lost a packet is incomplete (counted once a later
    frame completes), the others complete, and no freeze since no run of 5 frames was lost."""
    rng = random.Random(1616)
    stats, vp8 = VideoStats("vp8"), Vp8Sender()
    packets = vp8.frames(1800, 0.0)
    kept = [p for p in packets if rng.random() >= 0.05]
    feed(stats, kept)
    kept_seqs = {p.seq for p in kept}
    damaged = [any(p.seq not in kept_seqs for p in packets[i : i + 3]) for i in range(0, 5400, 3)]
    runs, run = [], 0
    for bad in damaged:
        run = run + 1 if bad else 0
        runs.append(run)
    assert max(runs) < 5, "the seed should not lose 5 frames in a row"
    last_complete = max(i for i, bad in enumerate(damaged) if not bad)
    wholly_lost = sum(
        all(p.seq not in kept_seqs for p in packets[i : i + 3]) for i in range(0, 5400, 3)
    )
    snap = stats.snapshot(61.0)
    assert snap.frames_received == damaged.count(False)
    assert snap.frames_incomplete == sum(damaged[:last_complete]) - wholly_lost
    assert snap.frames_incomplete > 100
    assert snap.freezes == 0
    assert snap.packets_lost == len(packets) - len(kept)
    assert snap.loss_ratio == pytest.approx(0.05, abs=0.01)


def test_first_or_marker_packet_lost_makes_the_frame_incomplete() -> None:
    """Without its start (S bit, partition 0) or its marker packet a frame never completes;
    it is counted incomplete once a later frame completes, not before."""
    stats, vp8 = VideoStats("vp8"), Vp8Sender()
    feed(stats, vp8.frames(10, 0.0))
    feed(stats, vp8.frame(10 * FRAME)[1:])  # first packet lost
    assert stats.snapshot(1.0).frames_incomplete == 0
    feed(stats, vp8.frame(11 * FRAME)[:-1])  # marker packet lost
    assert stats.snapshot(1.0).frames_incomplete == 0
    feed(stats, vp8.frame(12 * FRAME))
    snap = stats.snapshot(1.0)
    assert (snap.frames_received, snap.frames_incomplete) == (11, 2)


def test_reordered_packets_complete_the_frame_at_the_last_arrival() -> None:
    """Packets of a frame in any order (marker first, start last), and a frame's last packet
    arriving after the next frame began: all complete, at the arrival of the last packet."""
    stats, vp8 = VideoStats("vp8"), Vp8Sender()
    feed(stats, vp8.frames(30, 0.0))
    frame = vp8.frame(1.0)
    feed(stats, [frame[2], frame[0], frame[1]][:2])
    assert stats.snapshot(1.1).frames_received == 30
    feed(stats, delayed([frame[1]], 0.1))
    assert stats.snapshot(1.1).frames_received == 31
    a, b = vp8.frame(1.0 + 2 * FRAME), vp8.frame(1.0 + 3 * FRAME)
    feed(stats, [a[0], a[1], b[0], a[2], b[1], b[2]])
    snap = stats.snapshot(1.2)
    assert (snap.frames_received, snap.frames_incomplete, snap.freezes) == (33, 0, 0)
    assert snap.packets_lost == 0


def test_duplicates_count_once() -> None:
    """Every packet twice: the same frames, packets and keyframes as once."""
    stats, vp8 = VideoStats("vp8"), Vp8Sender(packets=4)
    packets = vp8.frames(60, 0.0)
    feed(stats, [p for p in packets for _ in range(2)])
    snap = stats.snapshot(2.0)
    assert (snap.frames_received, snap.frames_incomplete, snap.keyframes) == (60, 0, 1)
    assert (snap.packets_received, snap.packets_lost) == (240, 0)


def test_sequence_and_timestamp_wrap_around() -> None:
    """Sequence numbers cross 65535 → 0 and timestamps 2^32 − 1 → 0 without a trace."""
    stats, vp8 = VideoStats("vp8"), Vp8Sender(seq=65500, ts=(1 << 32) - 3000 * 20)
    packets = vp8.frames(90, 0.0)
    assert any(p.seq < 100 for p in packets) and any(p.ts < 90000 for p in packets)
    # Each frame's packets backwards, across both wraps.
    feed(stats, [p for i in range(0, 270, 3) for p in packets[i : i + 3][::-1]])
    snap = stats.snapshot(3.0)
    assert (snap.frames_received, snap.frames_incomplete, snap.packets_lost) == (90, 0, 0)
    assert snap.freezes == 0
    feed(stats, vp8.frames(30, 3.0))
    assert stats.snapshot(4.0).frames_per_second == pytest.approx(30, abs=1)


def test_keyframes_once_per_frame_and_requests() -> None:
    """Keyframes: once per frame however many packets; PLI/FIR counted as noted."""
    stats, vp8 = VideoStats("vp8"), Vp8Sender(packets=8)
    feed(stats, vp8.frame(0.0))
    feed(stats, vp8.frame(FRAME, key=False))
    feed(stats, vp8.frame(2 * FRAME, key=True))
    stats.note_keyframe_request()
    stats.note_keyframe_request()
    snap = stats.snapshot(1.0)
    assert (snap.keyframes, snap.keyframe_requests, snap.frames_received) == (2, 2, 3)


def test_h264_stream() -> None:
    """H.264: STAP-A (SPS, PPS) + FU-A IDR, then slices; size from the SPS; a lost FU-A
    start fragment makes the frame incomplete; keyframes once per access unit."""
    stats = VideoStats("h264")
    seq, at = 65530, 0.0
    for i in range(60):
        key = i in (0, 40)
        packets = h264_frame(seq=seq, ts=i * 3000, at=at, key=key, fragments=1 + i % 3)
        seq += len(packets)
        if i == 20:
            packets = packets[1:]
        feed(stats, packets)
        at += FRAME
    snap = stats.snapshot(at)
    assert (snap.width, snap.height, snap.keyframes) == (1280, 720, 2)
    assert (snap.frames_received, snap.frames_incomplete) == (59, 1)
    assert snap.codec == "h264"
    assert snap.frames_per_second == pytest.approx(30, abs=1)


def test_new_ssrc_starts_afresh() -> None:
    """A new SSRC: its own size, its waiting frames given up, no freeze across the switch;
    totals go on counting."""
    stats, first = VideoStats("vp8"), Vp8Sender(ssrc=1)
    feed(stats, first.frames(30, 0.0))
    feed(stats, first.frame(1.0)[:2])  # never completes
    second = Vp8Sender(ssrc=2, seq=4000, ts=777, width=640, height=480)
    feed(stats, second.frames(3, 3.0))
    snap = stats.snapshot(3.1)
    assert (snap.width, snap.height) == (640, 480)
    assert (snap.frames_received, snap.frames_incomplete, snap.keyframes) == (33, 1, 2)
    assert (snap.freezes, snap.pauses) == (0, 0)
    assert snap.packets_received == 30 * 3 + 2 + 3 * 3


def test_timestamps_restarted_on_the_same_ssrc() -> None:
    """Timestamps jumping far back (a restarted sender, same SSRC): frames go on."""
    stats = VideoStats("vp8")
    feed(stats, Vp8Sender(ts=50_000_000).frames(30, 0.0))
    feed(stats, Vp8Sender(seq=90, ts=1000).frames(30, 1.0))
    snap = stats.snapshot(2.0)
    assert snap.frames_received >= 58
    assert snap.frames_per_second == pytest.approx(30, abs=1)


def test_jitter_at_90_khz() -> None:
    """RFC 3550 jitter: arrival ±5 ms around the timestamp's promise converges to 10 ms."""
    stats, vp8 = VideoStats("vp8"), Vp8Sender(packets=1)
    for i in range(300):
        feed(stats, vp8.frame(i * FRAME + (0.005 if i % 2 else -0.005)))
    assert stats.snapshot(10.0).jitter_seconds == pytest.approx(0.010, rel=0.02)


def test_bitrate_is_the_last_second() -> None:
    """Bitrate covers the last second: nothing sent for two seconds reads 0."""
    stats, _ = steady(3.0)
    assert stats.snapshot(3.0).bitrate_bps > 0
    assert stats.snapshot(5.0).bitrate_bps == 0.0


def test_memory_stays_bounded() -> None:
    """Whatever the stream: frames that never complete, a very long stream."""
    stats = VideoStats("vp8")
    for i in range(5000):  # no packet can start a frame: nothing ever completes
        stats.on_packet(
            ssrc=1,
            sequence_number=i % 65536,
            rtp_timestamp=i * 3000,
            marker=True,
            payload=b"\x00\x00",
            arrival_seconds=i * FRAME,
        )
    assert len(stats._frames._pending) <= MAX_PENDING_FRAMES
    assert stats.snapshot(200.0).frames_incomplete == 5000 - MAX_PENDING_FRAMES
    stats, _ = steady(100.0)
    assert len(stats._frame_times) <= FPS_MEMORY_FRAMES
    assert len(stats._delays) <= FREEZE_WINDOW_FRAMES
    assert len(stats._frames._pending) <= 1


def test_very_late_packets_are_not_a_restart() -> None:
    """Consecutive packets 2 s late (recent sequence numbers) are ignored: frames already
    judged are not counted again."""
    stats, vp8 = VideoStats("vp8"), Vp8Sender()
    packets = vp8.frames(150, 0.0)
    late = packets[30:32]
    feed(stats, packets[:30] + packets[32:] + delayed(late, 4.0))
    feed(stats, vp8.frames(30, 5.0))
    snap = stats.snapshot(6.0)
    assert (snap.frames_received, snap.frames_incomplete) == (179, 1)
