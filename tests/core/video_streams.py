"""Synthetic video RTP streams for the video tests: real VP8 payload descriptors and
keyframe headers, real H.264 STAP-A/FU-A packets, timestamps at 90 kHz."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from qualmon.core.video import VideoStats

CLOCK = 90000
SPS_1280X720_HIGH = bytes.fromhex("6764001facb200a00b7420000003002000000791e30649")
"libx264 (PyAV 18, profile high, tune zerolatency) for a 1280×720 picture."
PPS = bytes.fromhex("68ebe3cb22c0")
"A PPS (its content is never read)."


@dataclass(frozen=True)
class Packet:
    seq: int
    ts: int
    marker: bool
    payload: bytes
    at: float
    ssrc: int = 1


def vp8_descriptor(*, start: bool, picture_id: int, partition: int = 0) -> bytes:
    """X=1 with a 15-bit picture id (what libwebrtc sends), S bit, partition index."""
    first = 0x80 | (0x10 if start else 0) | (partition & 0x07)
    return bytes([first, 0x80, 0x80 | (picture_id >> 8) & 0x7F, picture_id & 0xFF])


def vp8_frame_header(*, key: bool, width: int = 0, height: int = 0, scale: int = 0) -> bytes:
    """VP8 frame tag (inverse key bit, version 0, shown, partition size) and, for a key
    frame, the start code and 14-bit sizes with `scale` in the top two bits."""
    tag = (0 if key else 1) | 1 << 4 | 700 << 5
    header = tag.to_bytes(3, "little")
    if key:
        header += b"\x9d\x01\x2a"
        header += (width | scale << 14).to_bytes(2, "little")
        header += (height | scale << 14).to_bytes(2, "little")
    return header


class Vp8Sender:
    """Frames of `packets` packets of ~`size` bytes; the first frame is a keyframe."""

    def __init__(
        self,
        *,
        seq: int = 0,
        ts: int = 0,
        width: int = 320,
        height: int = 240,
        packets: int = 3,
        size: int = 400,
        fps: float = 30.0,
        ssrc: int = 1,
    ) -> None:
        self.seq, self.ts, self.width, self.height = seq, ts, width, height
        self.packets, self.size, self.fps, self.ssrc = packets, size, fps, ssrc
        self.picture_id = 0
        self.frames_sent = 0

    def frame(self, at: float, *, key: bool | None = None, spread: float = 0.001) -> list[Packet]:
        """One frame whose packets arrive from `at`, `spread` seconds apart."""
        key = self.frames_sent == 0 if key is None else key
        out = []
        for i in range(self.packets):
            head = vp8_descriptor(start=i == 0, picture_id=self.picture_id)
            if i == 0:
                head += vp8_frame_header(key=key, width=self.width, height=self.height)
            payload = head + bytes(self.size - len(head))
            out.append(
                Packet(
                    seq=self.seq % 65536,
                    ts=self.ts % (1 << 32),
                    marker=i == self.packets - 1,
                    payload=payload,
                    at=at + i * spread,
                    ssrc=self.ssrc,
                )
            )
            self.seq += 1
        self.ts += round(CLOCK / self.fps)
        self.picture_id = (self.picture_id + 1) % 32768
        self.frames_sent += 1
        return out

    def frames(self, count: int, start: float, *, period: float | None = None) -> list[Packet]:
        """`count` frames, one every `period` seconds (1/fps) from `start`."""
        step = 1 / self.fps if period is None else period
        return [p for i in range(count) for p in self.frame(start + i * step)]


def h264_frame(
    *, seq: int, ts: int, at: float, key: bool, fragments: int = 3, size: int = 900
) -> list[Packet]:
    """An access unit: for a keyframe a STAP-A (SPS, PPS) then the IDR slice in FU-A
    fragments; otherwise one slice, in FU-A fragments (or a single NAL unit)."""
    out: list[bytes] = []
    if key:
        stap = b"\x78"
        for nal in (SPS_1280X720_HIGH, PPS):
            stap += len(nal).to_bytes(2, "big") + nal
        out.append(stap)
    nal_type = 5 if key else 1
    # Slice header: first_mb_in_slice = 0 is the single bit 1.
    slice_nal = bytes([0x60 | nal_type, 0x88]) + bytes(size)
    if fragments == 1:
        out.append(slice_nal)
    else:
        body = slice_nal[1:]
        chunk = -(-len(body) // fragments)
        for i in range(fragments):
            fu_header = (0x80 if i == 0 else 0) | (0x40 if i == fragments - 1 else 0) | nal_type
            out.append(bytes([0x7C, fu_header]) + body[i * chunk : (i + 1) * chunk])
    return [
        Packet(seq=(seq + i) % 65536, ts=ts % (1 << 32), marker=i == len(out) - 1, payload=p, at=at)
        for i, p in enumerate(out)
    ]


def feed(stats: VideoStats, packets: Iterable[Packet]) -> None:
    for p in packets:
        stats.on_packet(
            ssrc=p.ssrc,
            sequence_number=p.seq,
            rtp_timestamp=p.ts,
            marker=p.marker,
            payload=p.payload,
            arrival_seconds=p.at,
        )


def delayed(packets: list[Packet], seconds: float) -> list[Packet]:
    return [replace(p, at=p.at + seconds) for p in packets]
