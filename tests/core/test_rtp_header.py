"""The lean RTP header reader agrees with aiortc's parser on every packet, valid or not."""

from __future__ import annotations

from aiortc.rtp import RtpPacket
from hypothesis import given
from hypothesis import strategies as st

from qualmon.core.rtp_header import parse_rtp_header

from ..fuzzing import examples


def _packet(
    first: int,
    m_pt: int,
    seq: int,
    ts: int,
    ssrc: int,
    csrcs: int,
    ext_words: int | None,
    payload: bytes,
    padding: int,
) -> bytes:
    out = bytes([first, m_pt]) + seq.to_bytes(2, "big") + ts.to_bytes(4, "big")
    out += ssrc.to_bytes(4, "big") + b"\x00\x00\x00\x01" * csrcs
    if ext_words is not None:
        out += b"\xbe\xde" + ext_words.to_bytes(2, "big") + b"\x10\xff\x00\x00" * ext_words
    return out + payload + (bytes(padding - 1) + bytes([padding]) if padding else b"")


@st.composite
def rtp_like(draw: st.DrawFn) -> bytes:
    """Mostly well-formed packets (every header feature), some cut or corrupted."""
    csrcs = draw(st.integers(0, 3))
    ext = draw(st.none() | st.integers(0, 3))
    padding = draw(st.sampled_from([0, 0, 1, 4]))
    version = draw(st.sampled_from([2, 2, 2, 1]))
    first = version << 6 | (0x20 if padding else 0) | (0x10 if ext is not None else 0) | csrcs
    data = _packet(
        first,
        draw(st.integers(0, 255)),
        draw(st.integers(0, 0xFFFF)),
        draw(st.integers(0, 0xFFFFFFFF)),
        draw(st.integers(0, 0xFFFFFFFF)),
        csrcs,
        ext,
        draw(st.binary(max_size=40)),
        padding,
    )
    cut = draw(st.none() | st.integers(0, len(data)))
    return data if cut is None else data[:cut]


@examples(500)
@given(rtp_like() | st.binary(max_size=64))
def test_agrees_with_aiortc(data: bytes) -> None:
    ours = parse_rtp_header(data)
    try:
        theirs = RtpPacket.parse(data)
    except ValueError:
        assert ours is None
        return
    assert ours is not None
    assert (ours.marker, ours.payload_type, ours.sequence_number) == (
        theirs.marker,
        theirs.payload_type,
        theirs.sequence_number,
    )
    assert (ours.timestamp, ours.ssrc, ours.payload) == (
        theirs.timestamp,
        theirs.ssrc,
        theirs.payload,
    )


def test_an_opus_packet_with_the_audio_level_extension() -> None:
    data = _packet(0x90, 0x80 | 111, 65535, 960, 0xDEADBEEF, 0, 1, b"\xfc\x01\x02", 0)
    header = parse_rtp_header(data)
    assert header is not None
    assert (header.marker, header.payload_type, header.sequence_number) == (1, 111, 65535)
    assert (header.timestamp, header.ssrc, header.payload) == (960, 0xDEADBEEF, b"\xfc\x01\x02")
