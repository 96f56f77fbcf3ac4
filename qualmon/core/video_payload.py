"""What a video RTP payload header says without decoding: frame start, keyframe, picture size.

VP8 per RFC 7741 (payload descriptor, then the VP8 frame header of the first partition's
first packet); H.264 per RFC 6184 (single NAL unit, STAP-A, FU-A; the SPS read with
exp-Golomb codes per ITU-T H.264 7.3.2.1.1). Garbage never raises: it reads as "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

VideoCodec = Literal["vp8", "h264"]

VP8_START_CODE = b"\x9d\x01\x2a"
MAX_DIMENSION_PIXELS = 16384
"Larger than any level of H.264 allows; a bigger SPS value is garbage."


@dataclass(frozen=True)
class PayloadInfo:
    """What one packet's payload header says."""

    frame_start: bool
    "The packet can be a frame's first (VP8: S bit with partition 0; H.264: see parse_h264)."
    keyframe: bool
    "The packet carries keyframe data (VP8 key frame header, H.264 IDR slice)."
    width: int | None = None
    height: int | None = None
    "Picture size in pixels when the packet carries it (VP8 keyframe header, H.264 SPS)."


NOTHING = PayloadInfo(frame_start=False, keyframe=False)
"A packet in the middle of a frame (most packets): shared, not built per packet."
START = PayloadInfo(frame_start=True, keyframe=False)
START_KEY = PayloadInfo(frame_start=True, keyframe=True)
KEY = PayloadInfo(frame_start=False, keyframe=True)


def parse_payload(codec: VideoCodec, payload: bytes) -> PayloadInfo | None:
    """The payload header of `codec`; None when it cannot be read."""
    return parse_vp8(payload) if codec == "vp8" else parse_h264(payload)


# -- VP8 (RFC 7741) ------------------------------------------------------------


def parse_vp8(payload: bytes) -> PayloadInfo | None:
    """VP8 payload descriptor and, in a frame's first packet, the frame header."""
    size = len(payload)
    if size < 1:
        return None
    first = payload[0]
    offset = 1
    if first & 0x80:  # X: an extension byte follows
        if size < 2:
            return None
        ext = payload[1]
        offset = 2
        if ext & 0x80:  # I: picture id, one byte or two (M bit)
            if size <= offset:
                return None
            offset += 2 if payload[offset] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            offset += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX byte
            offset += 1
        if offset > size:
            return None
    # Only the start of partition 0 begins a frame and carries the frame header.
    if not (first & 0x10) or first & 0x07:
        return NOTHING
    header = payload[offset : offset + 10]
    # Frame tag bit 0 is the *inverse* key frame flag; a key frame has the start code.
    if len(header) < 10 or header[0] & 0x01 or header[3:6] != VP8_START_CODE:
        return START
    # 14-bit sizes, little endian; the top two bits are the upscaling mode, not size.
    width = (header[6] | header[7] << 8) & 0x3FFF
    height = (header[8] | header[9] << 8) & 0x3FFF
    if not width or not height:
        return START_KEY
    return PayloadInfo(frame_start=True, keyframe=True, width=width, height=height)


# -- H.264 (RFC 6184) -------------------------------------------------------------

NAL_SLICE = 1
NAL_PARTITION_A = 2
NAL_IDR = 5
NAL_SPS = 7
NAL_STAP_A = 24
NAL_FU_A = 28
_SLICE_HEADER_TYPES = frozenset({NAL_SLICE, NAL_PARTITION_A, NAL_IDR})
"NAL units that begin with a slice header (first_mb_in_slice first)."
_ACCESS_UNIT_OPENERS = frozenset({6, 7, 8, 9, *range(13, 19)})
"Non-VCL units that may precede an access unit's first slice (H.264 7.4.1.2.3)."


def _can_start(nal_type: int, after_header: int | None) -> bool:
    """Whether a NAL unit can be its access unit's first (H.264 7.4.1.2.3)."""
    if nal_type in _SLICE_HEADER_TYPES:
        # first_mb_in_slice is ue(v); a leading 1 bit is the value 0: the picture's top.
        return after_header is not None and bool(after_header & 0x80)
    return nal_type in _ACCESS_UNIT_OPENERS


def parse_h264(payload: bytes) -> PayloadInfo | None:
    """H.264 packet: a single NAL unit, a STAP-A aggregate or an FU-A fragment.

    A packet can start a frame when its (first) NAL unit can open an access unit: SPS,
    PPS, SEI, AUD, or a slice with first_mb_in_slice = 0 (for FU-A, only the S fragment).
    """
    size = len(payload)
    if size < 1:
        return None
    nal_type = payload[0] & 0x1F
    if 1 <= nal_type <= 23:
        return _single_nal(payload)
    if nal_type == NAL_STAP_A:
        return _stap_a(payload)
    if nal_type == NAL_FU_A:
        if size < 2:
            return None
        fu_header = payload[1]
        inner = fu_header & 0x1F
        start = bool(fu_header & 0x80) and _can_start(inner, payload[2] if size > 2 else None)
        key = inner == NAL_IDR
        return START_KEY if start and key else START if start else KEY if key else NOTHING
    # STAP-B, MTAP, FU-B are not used with packetization-mode 0/1; 0, 30, 31 are invalid.
    return None


def _single_nal(nal: bytes) -> PayloadInfo:
    nal_type = nal[0] & 0x1F
    start = _can_start(nal_type, nal[1] if len(nal) > 1 else None)
    if nal_type == NAL_SPS:
        size = sps_picture_size(nal)
        if size is not None:
            return PayloadInfo(frame_start=start, keyframe=False, width=size[0], height=size[1])
    key = nal_type == NAL_IDR
    return START_KEY if start and key else START if start else KEY if key else NOTHING


def _stap_a(payload: bytes) -> PayloadInfo | None:
    """Aggregated NAL units, each after a 16-bit size; a truncated tail is ignored."""
    offset = 1
    start: bool | None = None
    key = False
    width = height = None
    while offset + 2 < len(payload):
        length = payload[offset] << 8 | payload[offset + 1]
        nal = payload[offset + 2 : offset + 2 + length]
        offset += 2 + length
        if not nal:
            break
        info = _single_nal(nal)
        if start is None:
            start = info.frame_start
        key = key or info.keyframe
        if info.width is not None:
            width, height = info.width, info.height
    if start is None:
        return None
    return PayloadInfo(frame_start=start, keyframe=key, width=width, height=height)


# -- SPS --------------------------------------------------------------------------


class _Truncated(Exception):
    """The bit string ended (or a code was absurd): the SPS is unreadable."""


class _Bits:
    """A big-endian bit reader over an RBSP."""

    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._left = len(data) * 8

    def bits(self, count: int) -> int:
        if count > self._left:
            raise _Truncated
        self._left -= count
        return (self._value >> self._left) & ((1 << count) - 1)

    def flag(self) -> bool:
        return self.bits(1) == 1

    def ue(self) -> int:
        """Unsigned exp-Golomb (H.264 9.1)."""
        zeros = 0
        while not self.bits(1):
            zeros += 1
            if zeros > 31:  # no syntax element needs more than 32 bits
                raise _Truncated
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        """Signed exp-Golomb: 1, −1, 2, −2, … for codes 1, 2, 3, 4, …"""
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)


def _rbsp(nal_body: bytes) -> bytes:
    """Remove emulation prevention bytes (00 00 03 → 00 00)."""
    if b"\x00\x00\x03" not in nal_body:
        return nal_body
    out = bytearray()
    zeros = 0
    for byte in nal_body:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


# Profiles whose SPS carries chroma format, bit depths and scaling lists (7.3.2.1.1).
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    """scaling_list() of 7.3.2.1.1.1: deltas until a zero next scale ends the list."""
    last = next_scale = 8
    for _ in range(size):
        if next_scale:
            delta = bits.se()
            if not -128 <= delta <= 127:
                raise _Truncated
            next_scale = (last + delta + 256) % 256
        last = next_scale or last


def sps_picture_size(nal: bytes) -> tuple[int, int] | None:
    """Width and height in pixels (cropping applied) from an SPS NAL unit, header included."""
    try:
        return _sps_size(_Bits(_rbsp(nal[1:])))
    except _Truncated:
        return None


def _sps_size(bits: _Bits) -> tuple[int, int] | None:
    profile_idc = bits.bits(8)
    bits.bits(16)  # constraint flags, level_idc
    bits.ue()  # seq_parameter_set_id
    chroma_format_idc = 1  # 4:2:0 unless a high profile says otherwise
    separate_colour_planes = False
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = bits.ue()
        if chroma_format_idc > 3:
            return None
        if chroma_format_idc == 3:
            separate_colour_planes = bits.flag()
        bits.ue()  # bit_depth_luma_minus8
        bits.ue()  # bit_depth_chroma_minus8
        bits.flag()  # qpprime_y_zero_transform_bypass_flag
        if bits.flag():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if bits.flag():
                    _skip_scaling_list(bits, 16 if i < 6 else 64)
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        bits.flag()  # delta_pic_order_always_zero_flag
        bits.se()  # offset_for_non_ref_pic
        bits.se()  # offset_for_top_to_bottom_field
        cycle = bits.ue()
        if cycle > 255:
            return None
        for _ in range(cycle):
            bits.se()  # offset_for_ref_frame
    elif poc_type != 2:
        return None
    bits.ue()  # max_num_ref_frames
    bits.flag()  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_map_units = bits.ue() + 1
    frame_mbs_only = bits.flag()
    if not frame_mbs_only:
        bits.flag()  # mb_adaptive_frame_field_flag
    bits.flag()  # direct_8x8_inference_flag
    field_factor = 1 if frame_mbs_only else 2  # map units are field rows when interlaced
    width = width_mbs * 16
    height = height_map_units * 16 * field_factor
    if bits.flag():  # frame_cropping_flag: offsets in crop units (7.4.2.1.1)
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        if separate_colour_planes or chroma_format_idc == 0:
            unit_x, unit_y = 1, field_factor
        else:
            unit_x = 1 if chroma_format_idc == 3 else 2
            unit_y = (2 if chroma_format_idc == 1 else 1) * field_factor
        width -= unit_x * (left + right)
        height -= unit_y * (top + bottom)
    if not (0 < width <= MAX_DIMENSION_PIXELS and 0 < height <= MAX_DIMENSION_PIXELS):
        return None
    return width, height
