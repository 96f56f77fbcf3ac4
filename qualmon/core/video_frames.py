"""Video frames assembled from RTP packets: complete, incomplete, keyframes, picture size.

A frame is the packets of one RTP timestamp. It is complete when its first packet (the
payload header says which packet can start a frame), its marker packet and every sequence
number between them arrived, in any order. A frame still waiting when a later frame
(higher timestamp) completes is given up as incomplete: its first or last packet, or one
in between, was lost. Packets of a frame already judged are too late and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .video_payload import PayloadInfo

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
MAX_PENDING_FRAMES = 32
"Frames waiting for packets at once; past this the oldest is given up (memory bound)."
MAX_FRAME_PACKETS = 1024
"Packets one frame may hold (~1.2 MB: beyond any real keyframe); more makes it incomplete."
# A packet this far (1 s at 90 kHz) behind the frames already judged, whose sequence number
# is not a recent one (ahead of the newest, or this far behind it), is not late: when two
# consecutive packets are such, the sender restarted its timestamps.
RESTART_TS_TICKS = 90000
RESTART_SEQ_PACKETS = 1000


def _signed_delta(new: int, old: int, modulus: int) -> int:
    """Difference new − old on a wrapping counter, in (−modulus/2, modulus/2]."""
    delta = (new - old) % modulus
    return delta - modulus if delta > modulus // 2 else delta


@dataclass(slots=True)
class _Frame:
    """Packets of one timestamp seen so far (extended sequence numbers)."""

    seqs: set[int] = field(default_factory=set)
    start_seq: int | None = None
    end_seq: int | None = None
    keyframe: bool = False

    def complete(self) -> bool:
        start, end = self.start_seq, self.end_seq
        if start is None or end is None or end < start or len(self.seqs) < end - start + 1:
            return False
        seqs = self.seqs
        return all(seq in seqs for seq in range(start, end + 1))


class FrameAssembler:
    """Groups one SSRC's packets into frames and says when one completes."""

    def __init__(self) -> None:
        self.frames_incomplete = 0
        "Frames given up (a packet missing), counted over every stream."
        self.keyframes = 0
        "Frames with keyframe data, each counted once, complete or not."
        self.width: int | None = None
        self.height: int | None = None
        self._pending: dict[int, _Frame] = {}
        self._seq_raw = 0
        self._seq_ext: int | None = None
        self._ts_raw = 0
        self._ts_ext = 0
        self._judged_ts: int | None = None
        "Highest (unwrapped) timestamp of a frame completed or given up."
        self._behind_seq: int | None = None
        "Extended sequence number of the last packet far behind the judged frames."

    def restart(self, *, forget_size: bool) -> None:
        """A new stream (new SSRC, or restarted timestamps): frames waiting are given up."""
        self.frames_incomplete += len(self._pending)
        self._pending.clear()
        self._seq_ext = None
        self._judged_ts = None
        self._behind_seq = None
        if forget_size:
            self.width = self.height = None

    def on_packet(
        self, *, sequence_number: int, rtp_timestamp: int, marker: bool, info: PayloadInfo | None
    ) -> bool:
        """Account one (non-duplicate) packet; True when it completed its frame."""
        newest_seq = self._seq_ext
        seq, ts = self._unwrap(sequence_number, rtp_timestamp)
        judged = self._judged_ts
        if judged is not None and ts <= judged:
            late = newest_seq is not None and 0 <= newest_seq - seq <= RESTART_SEQ_PACKETS
            if late or judged - ts <= RESTART_TS_TICKS:
                return False  # a frame already judged: too late to matter
            if self._behind_seq is None or seq != self._behind_seq + 1:
                self._behind_seq = seq
                return False
            self.restart(forget_size=False)
            seq, ts = self._unwrap(sequence_number, rtp_timestamp)
        self._behind_seq = None
        frame = self._pending.get(ts)
        if frame is None:
            if len(self._pending) >= MAX_PENDING_FRAMES:
                oldest = min(self._pending)
                del self._pending[oldest]
                self.frames_incomplete += 1
                self._judge(oldest)
            frame = self._pending[ts] = _Frame()
        if len(frame.seqs) >= MAX_FRAME_PACKETS or seq in frame.seqs:
            return False
        frame.seqs.add(seq)
        if info is not None:
            self._note_payload(frame, seq, info)
        if marker and (frame.end_seq is None or seq < frame.end_seq):
            frame.end_seq = seq
        if not frame.complete():
            return False
        del self._pending[ts]
        for older in [t for t in self._pending if t < ts]:
            del self._pending[older]
            self.frames_incomplete += 1
        self._judge(ts)
        return True

    def _unwrap(self, sequence_number: int, rtp_timestamp: int) -> tuple[int, int]:
        """Extended sequence number and timestamp, relative to the highest seen."""
        if self._seq_ext is None:
            # Start one cycle up so that early reordering stays positive.
            self._seq_raw, self._seq_ext = sequence_number, SEQ_MOD + sequence_number
            self._ts_raw, self._ts_ext = rtp_timestamp, TS_MOD + rtp_timestamp
        seq = self._seq_ext + _signed_delta(sequence_number, self._seq_raw, SEQ_MOD)
        if seq > self._seq_ext:
            self._seq_raw, self._seq_ext = sequence_number, seq
        ts = self._ts_ext + _signed_delta(rtp_timestamp, self._ts_raw, TS_MOD)
        if ts > self._ts_ext:
            self._ts_raw, self._ts_ext = rtp_timestamp, ts
        return seq, ts

    def _note_payload(self, frame: _Frame, seq: int, info: PayloadInfo) -> None:
        if info.frame_start and (frame.start_seq is None or seq < frame.start_seq):
            frame.start_seq = seq
        if info.keyframe and not frame.keyframe:
            frame.keyframe = True
            self.keyframes += 1
        if info.width is not None and info.height is not None:
            self.width, self.height = info.width, info.height

    def _judge(self, ts: int) -> None:
        """Frames up to `ts` are judged: their packets from now on are too late."""
        if self._judged_ts is None or ts > self._judged_ts:
            self._judged_ts = ts
