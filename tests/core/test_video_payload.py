"""Unit tests of the VP8 and H.264 payload header readers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from qualmon.core.video_payload import (
    NOTHING,
    START,
    START_KEY,
    PayloadInfo,
    parse_h264,
    parse_payload,
    parse_vp8,
    sps_picture_size,
)

from .video_streams import PPS, SPS_1280X720_HIGH, vp8_descriptor, vp8_frame_header

# -- VP8 ------------------------------------------------------------------------------

LIBVPX_KEYFRAME_320X180 = bytes.fromhex("5054009d012a4001b400")
"The first ten bytes of a libvpx (PyAV 18) keyframe of a 320×180 picture."


def test_vp8_keyframe_from_libvpx() -> None:
    """A real libvpx keyframe header behind the shortest descriptor (S bit, partition 0)."""
    info = parse_vp8(b"\x10" + LIBVPX_KEYFRAME_320X180 + bytes(20))
    assert info == PayloadInfo(frame_start=True, keyframe=True, width=320, height=180)


@pytest.mark.parametrize(
    "descriptor",
    [
        b"\x10",  # no extension
        b"\x90\x00",  # X, nothing in it
        b"\x90\x80\x05",  # 7-bit picture id
        b"\x90\x80\x81\x23",  # 15-bit picture id
        b"\x90\xc0\x81\x23\x07",  # + TL0PICIDX
        b"\x90\xf0\x81\x23\x07\x40",  # + TID/Y/KEYIDX
        b"\x90\x30\x40",  # T and K without I or L
        b"\xb0\x80\x05",  # N (non-reference) bit set
    ],
)
def test_vp8_descriptor_variants(descriptor: bytes) -> None:
    """Every optional descriptor field is skipped to reach the frame header."""
    info = parse_vp8(descriptor + vp8_frame_header(key=True, width=1280, height=720) + b"x")
    assert info == PayloadInfo(frame_start=True, keyframe=True, width=1280, height=720)


def test_vp8_scale_bits_are_not_size() -> None:
    """The top two bits of each 16-bit size field are the upscaling mode."""
    header = vp8_frame_header(key=True, width=16383, height=1, scale=3)
    info = parse_vp8(vp8_descriptor(start=True, picture_id=300) + header)
    assert info == PayloadInfo(frame_start=True, keyframe=True, width=16383, height=1)


def test_vp8_start_and_middle_packets() -> None:
    """Only S with partition 0 starts a frame; an inter frame is no keyframe."""
    inter = vp8_frame_header(key=False)
    assert parse_vp8(vp8_descriptor(start=True, picture_id=7) + inter) == START
    assert parse_vp8(vp8_descriptor(start=False, picture_id=7) + bytes(50)) == NOTHING
    assert parse_vp8(vp8_descriptor(start=True, picture_id=7, partition=1) + inter) == NOTHING
    # Key bit set but no start code, or cut short: a start, not a keyframe.
    assert parse_vp8(b"\x10\x50\x54\x00\x9d\x01\x2b" + bytes(4)) == START
    assert parse_vp8(b"\x10" + LIBVPX_KEYFRAME_320X180[:9]) == START
    assert parse_vp8(b"\x10" + LIBVPX_KEYFRAME_320X180[:6] + bytes(4)) == START_KEY


@pytest.mark.parametrize("payload", [b"", b"\x80", b"\x90\x80", b"\x90\x80\x81", b"\x90\x40"])
def test_vp8_truncated_descriptor_is_unknown(payload: bytes) -> None:
    assert parse_vp8(payload) is None


# -- H.264 SPS ----------------------------------------------------------------------------

REAL_SPS = [
    ("6742c01ed900a03da10000030001000003003c8f162e48", 640, 480),  # baseline
    ("6764001facb200a00b7420000003002000000791e30649", 1280, 720),  # high
    ("67640028acb200f0044fcb08000003000800000301e478c19240", 1920, 1080),  # high, cropped 1088
    ("6764001facb200a00b7d5420000003002000000791e30649", 1278, 718),  # high, cropped both ways
    ("6764001eace402818fcf08000003000800000301e4f8a15240", 640, 360),  # interlaced, cropped
    ("67f4000d919640507e84000003000400000300f23c50a920", 320, 240),  # high 4:4:4
    ("6764000dacd941609684000003000400000300f03c50a658", 352, 288),  # scaling matrix present
    ("67640015acd941612d08000003000800000301e0f8a14cb0", 352, 288),  # the same, interlaced
]
"SPS units from libx264 (PyAV 18) for the named pictures, emulation prevention included."


@pytest.mark.parametrize(("sps", "width", "height"), REAL_SPS)
def test_real_sps_sizes(sps: str, width: int, height: int) -> None:
    assert sps_picture_size(bytes.fromhex(sps)) == (width, height)


class BitWriter:
    """Writes an SPS the way an encoder does (to reach fields libx264 never sets)."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, count: int, value: int) -> None:
        self.bits += [(value >> (count - 1 - i)) & 1 for i in range(count)]

    def ue(self, value: int) -> None:
        code = value + 1
        self.u(2 * code.bit_length() - 1, code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def nal(self) -> bytes:
        bits = [*self.bits, 1]  # rbsp_stop_one_bit
        bits += [0] * (-len(bits) % 8)
        rbsp = bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))
        out, zeros = bytearray(b"\x67"), 0
        for byte in rbsp:
            if zeros >= 2 and byte <= 3:  # emulation prevention
                out.append(3)
                zeros = 0
            out.append(byte)
            zeros = zeros + 1 if byte == 0 else 0
        return bytes(out)


@dataclass(frozen=True)
class Sps:
    profile: int = 100
    chroma_format: int = 1
    separate_planes: bool = False
    scaling_lists: tuple[tuple[int, ...] | None, ...] = ()
    poc_type: int = 0
    width_mbs: int = 80
    height_units: int = 45
    frame_mbs_only: bool = True
    crop: tuple[int, int, int, int] | None = None

    def nal(self) -> bytes:
        w = BitWriter()
        w.u(8, self.profile)
        w.u(16, 0x001F)
        w.ue(0)
        if self.profile in (100, 122, 244):
            w.ue(self.chroma_format)
            if self.chroma_format == 3:
                w.u(1, self.separate_planes)
            w.ue(0)
            w.ue(0)
            w.u(1, 0)
            w.u(1, bool(self.scaling_lists))
            if self.scaling_lists:
                for deltas in self.scaling_lists:
                    w.u(1, deltas is not None)
                    for delta in deltas or ():
                        w.se(delta)
        w.ue(0)
        w.ue(self.poc_type)
        if self.poc_type == 0:
            w.ue(2)
        elif self.poc_type == 1:
            w.u(1, 0)
            w.se(-3)
            w.se(5)
            w.ue(3)
            for offset in (1, -1, 7):
                w.se(offset)
        w.ue(1)
        w.u(1, 0)
        w.ue(self.width_mbs - 1)
        w.ue(self.height_units - 1)
        w.u(1, self.frame_mbs_only)
        if not self.frame_mbs_only:
            w.u(1, 1)
        w.u(1, 1)
        w.u(1, self.crop is not None)
        for offset in self.crop or ():
            w.ue(offset)
        w.u(1, 0)  # no VUI
        return w.nal()


FLAT_16 = (0,) * 16
EARLY_END = (-8,)
"A delta to next scale 0 ends the list: the rest repeat the last scale, nothing more is read."
NOISY_64 = tuple((-1) ** i * (i % 9) for i in range(64))


@pytest.mark.parametrize(
    ("sps", "size"),
    [
        (Sps(), (1280, 720)),
        (Sps(crop=(0, 0, 0, 4)), (1280, 712)),  # 4:2:0: crop units of 2
        (Sps(chroma_format=2, crop=(1, 2, 1, 2)), (1274, 717)),  # 4:2:2: 2 × 1
        (Sps(chroma_format=3, crop=(1, 2, 1, 2)), (1277, 717)),  # 4:4:4: 1 × 1
        (Sps(chroma_format=0, crop=(1, 2, 1, 2)), (1277, 717)),  # monochrome: 1 × 1
        (Sps(chroma_format=3, separate_planes=True, crop=(3, 0, 1, 0)), (1277, 719)),
        (Sps(frame_mbs_only=False, height_units=23, crop=(0, 0, 0, 2)), (1280, 728)),  # 2 × 2
        (
            Sps(chroma_format=0, frame_mbs_only=False, height_units=23, crop=(0, 0, 0, 2)),
            (1280, 732),
        ),
        (Sps(profile=66, chroma_format=3, crop=(0, 0, 0, 4)), (1280, 712)),  # no chroma field
        (Sps(poc_type=1), (1280, 720)),
        (Sps(poc_type=2, width_mbs=1, height_units=1), (16, 16)),
        (
            Sps(scaling_lists=(FLAT_16, None, EARLY_END, None, None, None, NOISY_64, None)),
            (1280, 720),
        ),
        (Sps(chroma_format=3, scaling_lists=(EARLY_END,) * 6 + (NOISY_64,) * 6), (1280, 720)),
        (Sps(width_mbs=1025), None),  # 16400 pixels wide: beyond any level
        (Sps(crop=(320, 320, 0, 0)), None),  # cropped to nothing
        (Sps(chroma_format=4), None),
        (Sps(poc_type=3), None),
    ],
)
def test_sps_fields(sps: Sps, size: tuple[int, int] | None) -> None:
    """Cropping per chroma format and field coding, scaling lists and POC fields skipped."""
    assert sps_picture_size(sps.nal()) == size


def test_sps_truncated_is_unknown() -> None:
    nal = bytes.fromhex(REAL_SPS[2][0])
    assert all(sps_picture_size(nal[:cut]) is None for cut in range(11))
    assert sps_picture_size(b"\x67" + b"\x64\x00\x1f" + bytes(20)) is None  # endless zeros


# -- H.264 packets ------------------------------------------------------------------------


def stap_a(*nals: bytes) -> bytes:
    return b"\x78" + b"".join(len(n).to_bytes(2, "big") + n for n in nals)


IDR = b"\x65\x88\x84\x00"
"IDR slice, first_mb_in_slice = 0."


def test_h264_stap_a_with_sps_pps_idr() -> None:
    info = parse_h264(stap_a(SPS_1280X720_HIGH, PPS, IDR))
    assert info == PayloadInfo(frame_start=True, keyframe=True, width=1280, height=720)
    # Truncated after the SPS: what was read still counts.
    assert parse_h264(stap_a(SPS_1280X720_HIGH, PPS)[:-3]) == PayloadInfo(
        frame_start=True, keyframe=False, width=1280, height=720
    )
    assert parse_h264(b"\x78") is None
    assert parse_h264(b"\x78\x00\x00") is None


@pytest.mark.parametrize(
    ("payload", "start", "key"),
    [
        (IDR, True, True),
        (b"\x41\x9a\x00", True, False),  # slice, first_mb 0
        (b"\x41\x40\x00", False, False),  # slice, first_mb 1: the picture's second slice
        (b"\x41", False, False),  # slice header cut off
        (b"\x68\xeb", True, False),  # PPS
        (b"\x09\x10", True, False),  # access unit delimiter
        (b"\x06\x05", True, False),  # SEI
        (b"\x0c\xff", False, False),  # filler
        (b"\x7c\x85\x88", True, True),  # FU-A start of an IDR slice
        (b"\x7c\x05\x00", False, True),  # FU-A middle of an IDR slice
        (b"\x7c\x45\x00", False, True),  # FU-A end of an IDR slice
        (b"\x7c\x81\x40", False, False),  # FU-A start of a picture's second slice
        (b"\x7c\x81", False, False),  # FU-A start, no slice header byte
        (b"\x7c\x81\x9a", True, False),  # FU-A start of a slice at the top
    ],
)
def test_h264_packets(payload: bytes, start: bool, key: bool) -> None:
    info = parse_h264(payload)
    assert info is not None
    assert (info.frame_start, info.keyframe) == (start, key)


@pytest.mark.parametrize("payload", [b"", b"\x00", b"\x1e\x00", b"\x1f", b"\x7c", b"\x19\x00\x01"])
def test_h264_unreadable_packets(payload: bytes) -> None:
    """Empty, forbidden types, FU-A without a header, STAP-B/MTAP: unknown, not an error."""
    assert parse_h264(payload) is None


def test_parse_payload_by_codec() -> None:
    assert parse_payload("vp8", b"\x10" + LIBVPX_KEYFRAME_320X180) == PayloadInfo(
        frame_start=True, keyframe=True, width=320, height=180
    )
    assert parse_payload("h264", IDR) == START_KEY
