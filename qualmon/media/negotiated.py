"""What an answer negotiated, and how aiortc's frame timestamps map back to RTP time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiortc import RTCRtpReceiver
from aiortc.sdp import SessionDescription


@dataclass(frozen=True)
class NegotiatedCodec:
    payload_type: int
    name: str
    "Lower case, as in a=rtpmap (e.g. 'opus', 'pcmu')."
    clock_rate: int


DEFAULT_CODEC = NegotiatedCodec(111, "opus", 48000)
"What aiortc sends when an answer names no usable audio codec."


def negotiated_codec(answer_sdp: str) -> NegotiatedCodec:
    """The first codec the answer's first audio section accepts (Opus at 48 kHz if unstated).

    The answer is aiortc's own, so aiortc's parser reads it: its rtpmap lines are taken
    from the audio section only, not from whichever section mentions the same number.
    """
    audio = next((m for m in SessionDescription.parse(answer_sdp).media if m.kind == "audio"), None)
    if audio is None:
        return DEFAULT_CODEC
    codecs = {codec.payloadType: codec for codec in audio.rtp.codecs}
    for payload_type in audio.fmt:
        codec = codecs.get(payload_type)
        if codec is not None:
            return NegotiatedCodec(payload_type, codec.name.lower(), codec.clockRate)
    return DEFAULT_CODEC


def frame_time_mapper(
    receiver: RTCRtpReceiver,
    session_time_of: Callable[[int], float | None],
    first_rtp_timestamp: Callable[[], int | None],
) -> Callable[[int], float | None]:
    """Session time of a decoded frame from its pts (None until a packet has been seen).

    aiortc rebases frame timestamps to start at 0; its private TimestampMapper keeps the
    origin. Read that origin when it is there, otherwise assume the first packet tapped.
    """
    mapper = getattr(receiver, "_RTCRtpReceiver__timestamp_mapper", None)
    if mapper is None or not hasattr(mapper, "_origin"):
        mapper = None

    def frame_time(pts: int) -> float | None:
        origin = mapper._origin if mapper is not None else None
        first = int(origin) if origin is not None else first_rtp_timestamp()
        return None if first is None else session_time_of((pts + first) % (1 << 32))

    return frame_time
