"""Offers with video: one sending VP8/H.264 section is measured; what we cannot measure is
refused with a reason; video that does not send is declined as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from qualmon.media.offer import OfferError, validate_offer
from qualmon.media.offer_video import h264_answerable

from .test_offer import AIORTC_OFFER, TRANSPORT, replace_line

CHROME_AV = (Path(__file__).parent / "offers" / "chrome_av.sdp").read_text()


def video_section(
    *,
    mid: str = "1",
    direction: str = "sendonly",
    fmt: str = "97",
    lines: tuple[str, ...] = ("a=rtpmap:97 VP8/90000",),
) -> str:
    return (
        "\r\n".join(
            [
                f"m=video 9 UDP/TLS/RTP/SAVPF {fmt}",
                "c=IN IP4 0.0.0.0",
                f"a={direction}",
                f"a=mid:{mid}",
                *TRANSPORT,
                "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
                "a=rtcp-mux",
                *lines,
            ]
        )
        + "\r\n"
    )


def reason_for(text: str) -> str:
    with pytest.raises(OfferError) as caught:
        validate_offer(text)
    return caught.value.reason


def test_chrome_audio_and_video_offer_measures_vp8_and_baseline_h264() -> None:
    """Chrome's camera + mic offer: VP8 and the packetization-mode 1 baseline H.264 formats
    are measurable; mode 0, Main, High, VP9, AV1 and RTX are not."""
    offer = validate_offer(CHROME_AV)
    assert offer.video_payload_codecs == {96: "vp8", 102: "h264", 106: "h264"}
    assert offer.video_mid == "1"
    assert 111 in offer.audio_payload_clock_rates


def test_audio_only_offer_has_no_video() -> None:
    offer = validate_offer(AIORTC_OFFER)
    assert offer.video_payload_codecs == {} and offer.video_mid is None


@pytest.mark.parametrize("direction", ["recvonly", "inactive"])
def test_video_that_does_not_send_is_not_measured(direction: str) -> None:
    offer = validate_offer(
        AIORTC_OFFER
        + video_section(direction=direction, fmt="98", lines=("a=rtpmap:98 VP9/90000",))
    )
    assert offer.video_payload_codecs == {}


def test_rejected_video_section_is_not_measured() -> None:
    section = video_section(fmt="98", lines=("a=rtpmap:98 VP9/90000",)).replace(
        "m=video 9 ", "m=video 0 "
    )
    assert validate_offer(AIORTC_OFFER + section).video_payload_codecs == {}


def test_video_alone_is_refused() -> None:
    offer = AIORTC_OFFER.replace("m=audio", "m=video").replace("opus/48000/2", "VP8/90000")
    assert reason_for(offer) == "offer has no m=audio section"


@pytest.mark.parametrize(
    ("fmt", "lines"),
    [
        ("98", ("a=rtpmap:98 VP9/90000",)),
        ("45", ("a=rtpmap:45 AV1/90000",)),
        (
            "104",
            ("a=rtpmap:104 H264/90000", "a=fmtp:104 packetization-mode=0;profile-level-id=42e01f"),
        ),
        (
            "39",
            ("a=rtpmap:39 H264/90000", "a=fmtp:39 packetization-mode=1;profile-level-id=64001f"),
        ),
        ("97", ("a=rtpmap:97 VP8/48000",)),
        ("97", ()),
    ],
    ids=["vp9", "av1", "h264-mode-0", "h264-high", "vp8-wrong-clock", "no-rtpmap"],
)
def test_sending_video_we_cannot_measure_is_refused(fmt: str, lines: tuple[str, ...]) -> None:
    reason = reason_for(AIORTC_OFFER + video_section(fmt=fmt, lines=lines))
    assert reason == (
        "m-line 2 (video): no VP8 or H.264 (packetization-mode 1, baseline) payload type;"
        " only those are measured"
    )


def test_a_second_sending_video_section_is_refused() -> None:
    offer = AIORTC_OFFER + video_section() + video_section(mid="2")
    assert (
        reason_for(offer) == "m-line 3 (video): a second sending m=video section (one is measured)"
    )
    # A second one that only receives is declined, not refused.
    offer = AIORTC_OFFER + video_section() + video_section(mid="2", direction="recvonly")
    assert validate_offer(offer).video_payload_codecs == {97: "vp8"}


@pytest.mark.parametrize(
    ("missing", "reason"),
    [
        ("a=rtcp-mux", "m-line 2 (video): no a=rtcp-mux (RTCP multiplexing is required)"),
    ],
)
def test_sending_video_needs_what_audio_needs(missing: str, reason: str) -> None:
    assert reason_for(AIORTC_OFFER + replace_line(video_section(), missing, None)) == reason


def test_video_protocol_must_be_rtp() -> None:
    section = video_section().replace("UDP/TLS/RTP/SAVPF", "UDP/DTLS/SCTP")
    assert (
        reason_for(AIORTC_OFFER + section)
        == "m-line 2 (video): protocol 'UDP/DTLS/SCTP' is not RTP"
    )


@pytest.mark.parametrize(
    ("parameters", "answerable"),
    [
        ({"packetization-mode": "1", "profile-level-id": "42e01f"}, True),
        ({"packetization-mode": "1", "profile-level-id": "42001f"}, True),
        ({"packetization-mode": "1", "profile-level-id": "42C01F"}, True),
        ({"packetization-mode": "1"}, True),
        ({"packetization-mode": "0", "profile-level-id": "42e01f"}, False),
        ({}, False),
        ({"packetization-mode": "1", "profile-level-id": "4d001f"}, False),
        ({"packetization-mode": "1", "profile-level-id": "42e0zz"}, False),
        ({"packetization-mode": "1", "profile-level-id": "42e01f0"}, False),
        ({"packetization-mode": "1", "profile-level-id": "42e0ff"}, False),
        ({"packetization-mode": "\u0661", "profile-level-id": "42e01f"}, False),
    ],
)
def test_h264_formats_aiortc_answers(parameters: dict[str, str], answerable: bool) -> None:
    assert h264_answerable(parameters) is answerable
