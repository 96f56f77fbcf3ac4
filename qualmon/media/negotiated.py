"""What an answer negotiated, and how aiortc's frame timestamps map back to RTP time."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from aiortc import RTCRtpReceiver

_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([^/\s]+)/(\d+)", re.MULTILINE)
_MLINE_AUDIO = re.compile(r"^m=audio \d+ \S+ ([\d ]+)", re.MULTILINE)


@dataclass(frozen=True)
class NegotiatedCodec:
    payload_type: int
    name: str
    "Lower case, as in a=rtpmap (e.g. 'opus', 'pcmu')."
    clock_rate: int


def negotiated_codec(answer_sdp: str) -> NegotiatedCodec:
    """The first codec the answer's audio section accepts (Opus at 48 kHz if unstated)."""
    mline = _MLINE_AUDIO.search(answer_sdp)
    rtpmaps = {int(pt): (name, int(rate)) for pt, name, rate in _RTPMAP.findall(answer_sdp)}
    if mline:
        for pt in mline.group(1).split():
            if int(pt) in rtpmaps:
                name, rate = rtpmaps[int(pt)]
                return NegotiatedCodec(int(pt), name.lower(), rate)
    return NegotiatedCodec(111, "opus", 48000)


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
