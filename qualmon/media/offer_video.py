"""Which of an offer's video formats we measure: VP8, and H.264 as aiortc answers it."""

from __future__ import annotations

from aiortc.sdp import H264Profile, parse_h264_profile_level_id

from ..core.video import CLOCK_RATE_HZ, VideoCodec

# aiortc 1.16's only local H.264 codecs: packetization mode 1, baseline or constrained
# baseline; a missing profile-level-id means 42e01f to it (older WebRTC's default).
_H264_PROFILES = frozenset({H264Profile.PROFILE_BASELINE, H264Profile.PROFILE_CONSTRAINED_BASELINE})
_H264_DEFAULT_PROFILE_LEVEL_ID = "42e01f"
_HEX = frozenset("0123456789abcdefABCDEF")


def measurable_video_codecs(
    payload_types: list[int], *, rtpmaps: list[str], fmtps: list[str]
) -> dict[int, VideoCodec]:
    """Payload type → codec for the section's formats aiortc will answer and we can measure.

    `rtpmaps` and `fmtps` are the a=rtpmap and a=fmtp values, already checked for form
    (`offer._ATTRIBUTE_FORMS`): a payload type, a space, then the rest.
    """
    parameters: dict[int, dict[str, str]] = {}
    for value in fmtps:
        pt_text, text = value.split(" ", 1)
        pairs = (item.strip().partition("=") for item in text.split(";"))
        parameters.setdefault(int(pt_text), {key: v for key, _, v in pairs})
    codecs: dict[int, VideoCodec] = {}
    for value in rtpmaps:
        pt_text, encoding = value.split(" ", 1)
        name, clock_text = encoding.split("/")[:2]
        pt = int(pt_text)
        if pt not in payload_types or pt in codecs or int(clock_text) != CLOCK_RATE_HZ:
            continue
        if name.lower() == "vp8":
            codecs[pt] = "vp8"
        elif name.lower() == "h264" and h264_answerable(parameters.get(pt, {})):
            codecs[pt] = "h264"
    return codecs


def h264_answerable(parameters: dict[str, str]) -> bool:
    """Whether aiortc answers H.264 with these fmtp parameters (else it fails the offer)."""
    if parameters.get("packetization-mode") != "1":
        return False
    profile_level_id = parameters.get("profile-level-id", _H264_DEFAULT_PROFILE_LEVEL_ID)
    if len(profile_level_id) != 6 or not set(profile_level_id) <= _HEX:
        return False
    try:
        profile, _ = parse_h264_profile_level_id(profile_level_id)
    except ValueError:  # a level or profile_iop aiortc does not know
        return False
    return profile in _H264_PROFILES
