"""Tests for WHIP offer validation."""

import pytest
from aiortc.sdp import SessionDescription

from qualmon.media.offer import OfferError, ValidatedOffer, check_candidate, validate_offer

FINGERPRINT = ":".join(f"{i * 7 % 256:02X}" for i in range(32))

# Modeled on what aiortc 1.16 createOffer() produces for one audio transceiver.
AIORTC_OFFER = (
    "\r\n".join(
        [
            "v=0",
            "o=- 3926412345 3926412345 IN IP4 0.0.0.0",
            "s=-",
            "t=0 0",
            "a=group:BUNDLE 0",
            "a=msid-semantic:WMS *",
            "m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8",
            "c=IN IP4 0.0.0.0",
            "a=sendrecv",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
            "a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "a=mid:0",
            "a=msid:5d1e3b8c-4f0a-4d62-9a7e-0c1f6b2d9e11 8b7a6c5d-1e2f-4a3b-9c8d-7e6f5a4b3c2d",
            "a=rtcp:9 IN IP4 0.0.0.0",
            "a=rtcp-mux",
            "a=ssrc:2876543210 cname:3f2e1d0c-b9a8-4765-8432-10fedcba9876",
            "a=rtpmap:96 opus/48000/2",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=candidate:0b6c7a4e1f2d3c5b 1 udp 2130706431 192.168.1.23 54321 typ host",
            "a=candidate:4d5e6f7a8b9c0d1e 1 udp 2130706431 fd00::23 54322 typ host",
            "a=candidate:9a8b7c6d5e4f3a2b 1 udp 1694498815 203.0.113.7 54321 typ srflx"
            " raddr 192.168.1.23 rport 54321",
            "a=end-of-candidates",
            "a=ice-ufrag:Xq3n",
            "a=ice-pwd:8Hk2pLm4Qr6sTv8wXy0zAb",
            f"a=fingerprint:sha-256 {FINGERPRINT}",
            "a=setup:actpass",
        ]
    )
    + "\r\n"
)

# Modeled on a Chrome offer from a WHIP publisher (audio only, mDNS host candidate).
CHROME_OFFER = (
    "\r\n".join(
        [
            "v=0",
            "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
            "s=-",
            "t=0 0",
            "a=group:BUNDLE 0",
            "a=extmap-allow-mixed",
            "a=msid-semantic: WMS",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
            "c=IN IP4 0.0.0.0",
            "a=rtcp:9 IN IP4 0.0.0.0",
            "a=candidate:2999745851 1 udp 2122260223 3b1c7a2e-1d4f-4e5a-9b6c-7d8e9f0a1b2c.local"
            " 61764 typ host generation 0 network-id 1",
            "a=candidate:1467250027 1 udp 2122194687 192.168.1.40 61765 typ host generation 0",
            "a=ice-ufrag:yLkq",
            "a=ice-pwd:ZcP0oV9bmh3M1q3V2o2w7Kjz",
            "a=ice-options:trickle",
            f"a=fingerprint:sha-256 {FINGERPRINT}",
            "a=setup:actpass",
            "a=mid:0",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
            "a=sendonly",
            "a=msid:- 1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b",
            "a=rtcp-mux",
            "a=rtcp-rsize",
            "a=rtpmap:111 opus/48000/2",
            "a=rtcp-fb:111 transport-cc",
            "a=fmtp:111 minptime=10;useinbandfec=1",
            "a=rtpmap:63 red/48000/2",
            "a=fmtp:63 111/111",
            "a=rtpmap:9 G722/8000",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:13 CN/8000",
            "a=rtpmap:110 telephone-event/48000",
            "a=rtpmap:126 telephone-event/8000",
            "a=ssrc:1349503526 cname:Xv4p3kLr8sWq2nYb",
            "a=ssrc:1349503526 msid:- 1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b",
        ]
    )
    + "\r\n"
)


TRANSPORT = ("a=ice-ufrag:Xq3n", "a=ice-pwd:8Hk2pLm4Qr6sTv8wXy0zAb", "a=setup:actpass")
"What every m= section carries (browsers repeat it in bundled sections too)."


def replace_line(sdp: str, old: str, new: str | None) -> str:
    """The offer with one exact line replaced, or removed when new is None."""
    lines = sdp.split("\r\n")
    assert old in lines, old
    index = lines.index(old)
    if new is None:
        del lines[index]
    else:
        lines[index] = new
    return "\r\n".join(lines)


def reason_for(sdp: str) -> str:
    """The reason validate_offer gives for refusing sdp."""
    with pytest.raises(OfferError) as info:
        validate_offer(sdp)
    assert str(info.value) == info.value.reason
    assert "\n" not in info.value.reason
    return info.value.reason


def test_aiortc_offer_is_accepted_unchanged() -> None:
    """A valid aiortc offer round-trips byte for byte and yields its clock rates."""
    result = validate_offer(AIORTC_OFFER)
    assert result == ValidatedOffer(
        sdp=AIORTC_OFFER,
        audio_payload_clock_rates={96: 48000, 0: 8000, 8: 8000},
        dropped_candidates=0,
    )


def test_validation_is_idempotent() -> None:
    """Validating the cleaned SDP again changes nothing."""
    for offer in (AIORTC_OFFER, CHROME_OFFER):
        once = validate_offer(offer)
        assert validate_offer(once.sdp).sdp == once.sdp


def test_chrome_offer_drops_mdns_candidate() -> None:
    """A .local candidate is removed and counted; the IP candidate stays."""
    result = validate_offer(CHROME_OFFER)
    assert result.dropped_candidates == 1
    assert ".local" not in result.sdp
    assert "192.168.1.40 61765 typ host" in result.sdp
    assert result.sdp == replace_line(
        CHROME_OFFER,
        "a=candidate:2999745851 1 udp 2122260223 3b1c7a2e-1d4f-4e5a-9b6c-7d8e9f0a1b2c.local"
        " 61764 typ host generation 0 network-id 1",
        None,
    )
    assert result.audio_payload_clock_rates == {
        111: 48000,
        63: 48000,
        9: 8000,
        0: 8000,
        8: 8000,
        13: 8000,
        110: 48000,
        126: 8000,
    }


def test_ip_literal_candidates_are_kept() -> None:
    """IPv4 and IPv6 candidates, host and srflx, are all kept."""
    assert validate_offer(AIORTC_OFFER).sdp.count("a=candidate:") == 3


def test_lf_only_input_is_normalised_to_crlf() -> None:
    """LF line endings, with or without a final newline, come out as CRLF."""
    lf = AIORTC_OFFER.replace("\r\n", "\n")
    assert validate_offer(lf).sdp == AIORTC_OFFER
    assert validate_offer(lf.rstrip("\n")).sdp == AIORTC_OFFER


def test_missing_direction_gets_the_sendrecv_default() -> None:
    """Without a direction attribute the section is sendrecv, written out for aiortc."""
    offer = replace_line(AIORTC_OFFER, "a=sendrecv", None)
    sdp = validate_offer(offer).sdp
    assert sdp.count("a=sendrecv") == 1
    assert sdp.endswith("a=setup:actpass\r\na=sendrecv\r\n")


def test_session_level_attributes_count_for_audio() -> None:
    """Fingerprint, ICE credentials and setup may sit at session level."""
    moved = [
        "a=ice-ufrag:Xq3n",
        "a=ice-pwd:8Hk2pLm4Qr6sTv8wXy0zAb",
        f"a=fingerprint:sha-256 {FINGERPRINT}",
        "a=setup:actpass",
    ]
    offer = AIORTC_OFFER
    for line in moved:
        offer = replace_line(offer, line, None)
    offer = offer.replace("t=0 0\r\n", "t=0 0\r\n" + "\r\n".join(moved) + "\r\n")
    assert validate_offer(offer).sdp == offer


def test_video_and_application_sections_are_accepted() -> None:
    """Other media sections pass through untouched apart from candidate filtering."""
    extra = "\r\n".join(
        [
            "m=video 9 UDP/TLS/RTP/SAVPF 97",
            "c=IN IP4 0.0.0.0",
            "a=recvonly",
            "a=mid:1",
            *TRANSPORT,
            "a=rtpmap:97 VP8/90000",
            "a=candidate:1 1 udp 2122260223 host-1.local 5000 typ host",
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            "c=IN IP4 0.0.0.0",
            "a=mid:2",
            *TRANSPORT,
            "a=sctp-port:5000",
        ]
    )
    result = validate_offer(AIORTC_OFFER + extra)
    assert result.dropped_candidates == 1
    assert "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n" in result.sdp
    assert result.audio_payload_clock_rates == {96: 48000, 0: 8000, 8: 8000}


def test_every_audio_section_is_validated() -> None:
    """A second, receive-only audio section is refused."""
    second = AIORTC_OFFER[AIORTC_OFFER.index("m=audio") :].replace("a=mid:0", "a=mid:1")
    assert validate_offer(AIORTC_OFFER + second).audio_payload_clock_rates[96] == 48000
    reason = reason_for(AIORTC_OFFER + second.replace("a=sendrecv", "a=recvonly"))
    assert reason == "m-line 2 (audio): direction is recvonly, a WHIP publisher must send"


def test_static_payload_type_without_rtpmap_is_enough() -> None:
    """PCMU named only by its static payload type number is acceptable."""
    offer = AIORTC_OFFER.replace("SAVPF 96 0 8", "SAVPF 0")
    offer = replace_line(offer, "a=rtpmap:96 opus/48000/2", None)
    offer = replace_line(offer, "a=rtpmap:0 PCMU/8000", None)
    offer = replace_line(offer, "a=rtpmap:8 PCMA/8000", None)
    assert validate_offer(offer).audio_payload_clock_rates == {}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "offer is empty"),
        (" \r\n\t\n", "offer is empty"),
        ("hello world", "offer does not start with v=0"),
        ("v=1\r\n" + AIORTC_OFFER[5:], "offer does not start with v=0"),
        (AIORTC_OFFER.replace("a=rtcp-mux", "rtcp-mux"), "line 15 is not of the form"),
        (AIORTC_OFFER.replace("a=rtcp-mux", "a = rtcp-mux"), "line 15 is not of the form"),
        (AIORTC_OFFER.replace("a=rtcp-mux\r\n", "\r\n"), "line 15 is not of the form"),
        (AIORTC_OFFER.replace("a=mid:0", "a=mid:\x000"), "control character U+0000"),
        (AIORTC_OFFER.replace("a=mid:0", "a=mid:\x1b0"), "control character U+001B"),
        (AIORTC_OFFER.replace("a=mid:0", "a=mid:\u20280"), "control character U+2028"),
        (AIORTC_OFFER.replace("a=mid:0\r\n", "a=mid:0\r\r\n"), "line 12 contains a stray CR"),
        (replace_line(AIORTC_OFFER, "s=-", None), "lacks the session-level s= line"),
        (replace_line(AIORTC_OFFER, "t=0 0", None), "lacks the session-level t= line"),
        (
            replace_line(AIORTC_OFFER, "o=- 3926412345 3926412345 IN IP4 0.0.0.0", None),
            "lacks the session-level o= line",
        ),
        (AIORTC_OFFER.replace("m=audio", "m=video"), "offer has no m=audio section"),
        (AIORTC_OFFER[: AIORTC_OFFER.index("m=audio")], "offer has no m=audio section"),
    ],
)
def test_structural_rejections(text: str, reason: str) -> None:
    """Garbage and broken structure are refused before any media checks."""
    assert reason in reason_for(text)


AUDIO = "m-line 1 (audio): "


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8", "m=audio nine UDP/TLS/RTP/SAVPF 96", "malformed m="),
        ("m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8", "m=audio 9/2 UDP/TLS/RTP/SAVPF 96", "malformed m="),
        ("m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8", "m=audio 9", "malformed m= line"),
        ("m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8", "m=audio 9 UDP/TLS/RTP/SAVPF  ", "no payload types"),
        ("m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8", "m=audio 9 UDP/DTLS/SCTP 96", "is not RTP"),
        ("m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8", "m=audio 70000 RTP/AVP 96", "port 70000 is out"),
        ("m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8", "m=audio 9 RTP/AVP opus", "invalid payload type"),
        ("m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8", "m=audio 9 RTP/AVP 96 300", "invalid payload type"),
        ("m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8", "m=audio 9 RTP/AVP 96 72", "invalid payload type"),
        ("m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8", "m=audio 9 RTP/AVP 97", "no payload type with"),
        (f"a=fingerprint:sha-256 {FINGERPRINT}", None, "no a=fingerprint"),
        (f"a=fingerprint:sha-256 {FINGERPRINT}", "a=fingerprint:sha-256", "malformed a=fingerp"),
        (f"a=fingerprint:sha-256 {FINGERPRINT}", "a=fingerprint:sha-256 AB:CD:E", "malformed"),
        (f"a=fingerprint:sha-256 {FINGERPRINT}", "a=fingerprint:sha-256 zz:zz", "malformed"),
        ("a=ice-ufrag:Xq3n", None, "no a=ice-ufrag"),
        ("a=ice-ufrag:Xq3n", "a=ice-ufrag:", "no a=ice-ufrag"),
        ("a=ice-pwd:8Hk2pLm4Qr6sTv8wXy0zAb", None, "no a=ice-pwd"),
        ("a=sendrecv", "a=recvonly", "direction is recvonly, a WHIP publisher must send"),
        ("a=sendrecv", "a=inactive", "direction is inactive"),
        ("a=setup:actpass", None, "no a=setup"),
        ("a=setup:actpass", "a=setup:holdconn", "a=setup must be actpass, active or passive"),
        ("c=IN IP4 0.0.0.0", "c=IN IP4", "malformed c= line"),
        ("a=rtpmap:96 opus/48000/2", "a=rtpmap:96 opus", "malformed a=rtpmap"),
        ("a=rtcp:9 IN IP4 0.0.0.0", "a=rtcp:nine", "malformed a=rtcp line"),
        ("a=ssrc:2876543210 cname:3f2e1d0c-b9a8-4765-8432-10fedcba9876", "a=ssrc:1 x", "a=ssrc"),
        ("a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid", "a=extmap:one urn:x", "a=extmap"),
        (
            "a=candidate:0b6c7a4e1f2d3c5b 1 udp 2130706431 192.168.1.23 54321 typ host",
            "a=candidate:0b6c7a4e1f2d3c5b 1 udp 2130706431 192.168.1.23",
            "malformed a=candidate",
        ),
        (
            "a=candidate:0b6c7a4e1f2d3c5b 1 udp 2130706431 192.168.1.23 54321 typ host",
            "a=candidate:0b6c 1 udp 2130706431 192.168.1.23 54321 typ srflx raddr 1.2.3.4 rport x",
            "malformed a=candidate",
        ),
        ("a=rtpmap:96 opus/48000/2", "a=fmtp:97 minptime=10", "a=fmtp for payload type 97"),
        ("a=rtcp-mux", None, "no a=rtcp-mux"),
        (
            "a=msid:5d1e3b8c-4f0a-4d62-9a7e-0c1f6b2d9e11 8b7a6c5d-1e2f-4a3b-9c8d-7e6f5a4b3c2d",
            "a=msid:5d1e3b8c-4f0a-4d62-9a7e-0c1f6b2d9e11 ",
            "malformed a=msid",
        ),
        ("a=rtpmap:8 PCMA/8000", "a=rtpmap:8 PCMA/8000\r\na=fmtp:96 minptime=ten", "not an int"),
    ],
)
def test_audio_rejections(old: str, new: str | None, reason: str) -> None:
    """Each way an audio section can be unusable has its own one-line reason."""
    assert reason_for(replace_line(AIORTC_OFFER, old, new)).startswith(AUDIO)
    assert reason in reason_for(replace_line(AIORTC_OFFER, old, new))


def test_session_level_setup_is_checked() -> None:
    """A bad a=setup at session level is refused too (aiortc raises KeyError on it)."""
    offer = AIORTC_OFFER.replace("t=0 0\r\n", "t=0 0\r\na=setup:holdconn\r\n")
    assert reason_for(offer) == "session: a=setup must be actpass, active or passive"


def test_session_level_recvonly_applies_to_audio_without_direction() -> None:
    """A session-level direction is inherited by an audio section that states none."""
    offer = replace_line(AIORTC_OFFER, "a=sendrecv", None)
    offer = offer.replace("t=0 0\r\n", "t=0 0\r\na=recvonly\r\n")
    assert "direction is recvonly" in reason_for(offer)


def test_malformed_video_section_is_refused() -> None:
    """Video is not validated strictly, but an m= line aiortc would assert on is refused."""
    reason = reason_for(AIORTC_OFFER + "m=video 9 UDP/TLS/RTP/SAVPF vp8\r\n")
    assert reason == "m-line 2 (video): invalid payload type 'vp8'"


def test_oversized_offer_is_refused_with_its_size() -> None:
    """An offer over max_bytes is refused and the reason gives both sizes."""
    size = len(AIORTC_OFFER.encode())
    with pytest.raises(OfferError, match=f"offer is {size} bytes, over the limit of 100 bytes"):
        validate_offer(AIORTC_OFFER, max_bytes=100)
    assert validate_offer(AIORTC_OFFER, max_bytes=size).sdp == AIORTC_OFFER


def test_offer_error_is_a_value_error() -> None:
    """Callers that catch ValueError also catch OfferError."""
    assert issubclass(OfferError, ValueError)
    assert OfferError("bad").reason == "bad"


@pytest.mark.parametrize("offer", [AIORTC_OFFER, CHROME_OFFER], ids=["aiortc", "chrome"])
def test_cleaned_offer_parses_in_aiortc(offer: str) -> None:
    """aiortc's own (pure) SDP parser reads the cleaned offer as we read it."""
    result = validate_offer(offer)
    parsed = SessionDescription.parse(result.sdp)
    (audio,) = parsed.media
    assert audio.kind == "audio"
    assert audio.direction in ("sendrecv", "sendonly")
    assert audio.dtls is not None
    assert {codec.payloadType: codec.clockRate for codec in audio.rtp.codecs} == (
        result.audio_payload_clock_rates
    )
    assert all(not candidate.ip.endswith(".local") for candidate in audio.ice_candidates)


# -- numbers in ASCII digits only ----------------------------------------------

# The aiortc offer with a number in every place aiortc int()s one: fmtp, ssrc-group, and a
# video and a data-channel section besides the audio one.
NUMBERED_OFFER = (
    replace_line(
        replace_line(
            AIORTC_OFFER,
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:8 PCMA/8000\r\na=fmtp:96 minptime=10;useinbandfec=1",
        ),
        "a=ssrc:2876543210 cname:3f2e1d0c-b9a8-4765-8432-10fedcba9876",
        "a=ssrc:2876543210 cname:3f2e1d0c-b9a8-4765-8432-10fedcba9876\r\n"
        "a=ssrc-group:FID 2876543210 2876543211",
    )
    + "\r\n".join(
        [
            "m=video 9 UDP/TLS/RTP/SAVPF 97",
            "c=IN IP4 0.0.0.0",
            "a=recvonly",
            "a=mid:1",
            *TRANSPORT,
            "a=rtpmap:97 VP8/90000",
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            "c=IN IP4 0.0.0.0",
            "a=mid:2",
            *TRANSPORT,
            "a=sctp-port:5000",
            "a=max-message-size:65536",
            "a=sctpmap:5000 webrtc-datachannel 1024",
        ]
    )
    + "\r\n"
)
SRFLX = "a=candidate:9a8b7c6d5e4f3a2b 1 udp 1694498815 203.0.113.7 54321 typ srflx raddr "
HOST = "a=candidate:0b6c7a4e1f2d3c5b {c} udp {p} 192.168.1.23 {port} typ host"

# Each numeric place: a line of NUMBERED_OFFER with one of its digits as {d}, and that digit.
NUMERIC_PLACES = {
    "m-line port": ("m=audio {d} UDP/TLS/RTP/SAVPF 96 0 8", "9"),
    "m-line payload type": ("m=audio 9 UDP/TLS/RTP/SAVPF 96 {d} 8", "0"),
    "rtpmap payload type": ("a=rtpmap:9{d} opus/48000/2", "6"),
    "rtpmap clock rate": ("a=rtpmap:96 opus/4800{d}/2", "0"),
    "rtpmap channels": ("a=rtpmap:96 opus/48000/{d}", "2"),
    "fmtp payload type": ("a=fmtp:9{d} minptime=10;useinbandfec=1", "6"),
    "fmtp minptime": ("a=fmtp:96 minptime=1{d};useinbandfec=1", "0"),
    "fmtp useinbandfec": ("a=fmtp:96 minptime=10;useinbandfec={d}", "1"),
    "candidate component": (HOST.format(c="{d}", p="2130706431", port="54321"), "1"),
    "candidate priority": (HOST.format(c="1", p="213070643{d}", port="54321"), "1"),
    "candidate port": (HOST.format(c="1", p="2130706431", port="5432{d}"), "1"),
    "candidate rport": (SRFLX + "192.168.1.23 rport 5432{d}", "1"),
    "rtcp port": ("a=rtcp:{d} IN IP4 0.0.0.0", "9"),
    "ssrc": ("a=ssrc:287654321{d} cname:3f2e1d0c-b9a8-4765-8432-10fedcba9876", "0"),
    "ssrc-group": ("a=ssrc-group:FID 2876543210 287654321{d}", "1"),
    "extmap id": ("a=extmap:{d} urn:ietf:params:rtp-hdrext:sdes:mid", "1"),
    "video m-line port": ("m=video {d} UDP/TLS/RTP/SAVPF 97", "9"),
    "video payload type": ("m=video 9 UDP/TLS/RTP/SAVPF 9{d}", "7"),
    "video clock rate": ("a=rtpmap:97 VP8/9000{d}", "0"),
    "data m-line port": ("m=application {d} UDP/DTLS/SCTP webrtc-datachannel", "9"),
    "sctp-port": ("a=sctp-port:500{d}", "0"),
    "max-message-size": ("a=max-message-size:6553{d}", "6"),
    "sctpmap": ("a=sctpmap:500{d} webrtc-datachannel 1024", "0"),
}
# Digits that str.isdigit() accepts and int() refuses ("²") or reads as 3, 5, 1 and 9.
UNICODE_DIGITS = ("\u00b2", "\u0663", "\u06f5", "\u0967", "\uff19")


def test_numbered_offer_is_valid_and_has_every_numeric_place() -> None:
    """The base of the test below: accepted, parsed by aiortc, each place present."""
    assert validate_offer(NUMBERED_OFFER).sdp == NUMBERED_OFFER
    assert len(SessionDescription.parse(NUMBERED_OFFER).media) == 3
    lines = NUMBERED_OFFER.split("\r\n")
    for template, digit in NUMERIC_PLACES.values():
        assert template.format(d=digit) in lines, template


@pytest.mark.parametrize("digit", UNICODE_DIGITS, ids=[f"U+{ord(d):04X}" for d in UNICODE_DIGITS])
@pytest.mark.parametrize("place", sorted(NUMERIC_PLACES))
def test_non_ascii_digits_are_refused_in_every_numeric_place(place: str, digit: str) -> None:
    """One foreign digit anywhere aiortc reads a number is an OfferError: never a crash
    ("²" made int() raise ValueError, a 500), never a silent read ("٣" became 3)."""
    template, ascii_digit = NUMERIC_PLACES[place]
    offer = replace_line(NUMBERED_OFFER, template.format(d=ascii_digit), template.format(d=digit))
    with pytest.raises(OfferError) as info:
        validate_offer(offer)
    assert "\n" not in info.value.reason


def test_a_port_too_long_for_int_is_refused() -> None:
    """int() raises ValueError past 4300 digits; the offer is refused before that."""
    offer = AIORTC_OFFER.replace("m=audio 9 ", "m=audio " + "9" * 5000 + " ")
    assert reason_for(offer) == AUDIO + "port 99999999 is out of range"


@pytest.mark.parametrize("digit", UNICODE_DIGITS, ids=[f"U+{ord(d):04X}" for d in UNICODE_DIGITS])
def test_trickled_candidates_take_ascii_digits_only(digit: str) -> None:
    """PATCHed candidates get the offer's candidate check (aiortc would read "٣" as 3)."""
    value = "0b6c7a4e1f2d3c5b 1 udp 2130706431 192.168.1.23 54321 typ host"
    check_candidate(value)
    check_candidate(SRFLX.removeprefix("a=candidate:") + "192.168.1.23 rport 54321")
    with pytest.raises(OfferError, match="trickled candidate: malformed a=candidate line"):
        check_candidate(value.replace("54321", "5432" + digit))
    with pytest.raises(OfferError):
        check_candidate(SRFLX.removeprefix("a=candidate:") + "192.168.1.23 rport 5432" + digit)


@pytest.mark.parametrize("run", ["9" * 5000, "9" * 11])
@pytest.mark.parametrize("place", sorted(NUMERIC_PLACES))
def test_overlong_numbers_are_refused_in_every_numeric_place(place: str, run: str) -> None:
    """Found by fuzzing: a 5000-digit SSRC, ssrc-group item, extmap id, fmtp integer, rtcp or
    SCTP port or video port passed validation and made aiortc's parser raise ValueError
    (int()'s 4300-digit limit), a 400 only by the media stack's fallback. Every number now
    has a digit cap, so they are refused with a reason before aiortc sees them."""
    template, ascii_digit = NUMERIC_PLACES[place]
    offer = replace_line(NUMBERED_OFFER, template.format(d=ascii_digit), template.format(d=run))
    with pytest.raises(OfferError) as info:
        validate_offer(offer)
    assert "\n" not in info.value.reason


@pytest.mark.parametrize(
    "candidate",
    [
        HOST.format(c="1", p="2130706431", port="65536"),
        SRFLX + "192.168.1.23 rport 99999",
    ],
)
def test_candidate_ports_past_65535_are_refused(candidate: str) -> None:
    """aioice would send its checks to such a port (sendto raises OverflowError)."""
    offer = NUMBERED_OFFER.replace(
        "a=end-of-candidates", candidate.replace("{d}", "1") + "\r\na=end-of-candidates"
    )
    assert "malformed a=candidate line" in reason_for(offer)
    with pytest.raises(OfferError):
        check_candidate(candidate.removeprefix("a=candidate:"))


@pytest.mark.parametrize(
    ("offer", "reason"),
    [
        (
            AIORTC_OFFER.replace("a=group:BUNDLE 0", "a=group:BUNDLE 7"),
            "a=group:BUNDLE names mid '7', which no m= section has",
        ),
        (
            NUMBERED_OFFER.replace("a=group:BUNDLE 0", "a=group:BUNDLE -45493 1 2"),
            "a=group:BUNDLE names mid '-45493', which no m= section has",
        ),
        (
            AIORTC_OFFER + AIORTC_OFFER[AIORTC_OFFER.index("m=audio") :],
            "m-line 2 (audio): another m= section has mid '0' too",
        ),
        (
            (AIORTC_OFFER + AIORTC_OFFER[AIORTC_OFFER.index("m=audio") :])
            .replace("a=mid:0\r\n", "")
            .replace("a=group:BUNDLE 0\r\n", ""),
            "m-line 2 (audio): another m= section has no a=mid too",
        ),
        (
            NUMBERED_OFFER.replace("a=mid:1", "a=mid:0"),
            "m-line 2 (video): another m= section has mid '0' too",
        ),
        (
            NUMBERED_OFFER
            + NUMBERED_OFFER[NUMBERED_OFFER.index("m=application") :].replace("a=mid:2", "a=mid:3"),
            "offer has more than one m=application section",
        ),
    ],
    ids=["bundle-unknown", "bundle-first-unknown", "mid-twice", "no-mid-twice", "video", "sctp"],
)
def test_mids_and_bundle_groups_must_match_the_sections(offer: str, reason: str) -> None:
    """Found by fuzzing: a BUNDLE group whose first mid names no section left aiortc without
    a transport (AttributeError in createAnswer, a 500, and a peer connection close() could
    not finish); two sections with one mid (or none) did the same in setRemoteDescription."""
    assert reason_for(offer) == reason


def test_one_section_without_mid_and_an_empty_group_are_fine() -> None:
    """What aiortc handles stays accepted."""
    no_mid = AIORTC_OFFER.replace("a=mid:0\r\n", "").replace("a=group:BUNDLE 0\r\n", "")
    assert validate_offer(no_mid).sdp == no_mid
    empty = AIORTC_OFFER.replace("a=group:BUNDLE 0", "a=group:BUNDLE")
    assert validate_offer(empty).sdp == empty


def _without(sdp: str, section_start: str, line: str) -> str:
    """sdp with `line` removed from the section that starts at `section_start` only."""
    head, _, section = sdp.partition(section_start)
    return head + section_start + section.replace(line + "\r\n", "", 1)


@pytest.mark.parametrize(
    ("offer", "reason"),
    [
        (AIORTC_OFFER.replace("s=-", "v=0.0\r\ns=-"), "line 3 is a second v= line"),
        (
            _without(NUMBERED_OFFER, "m=video", "a=setup:actpass"),
            "m-line 2 (video): no a=setup",
        ),
        (
            _without(NUMBERED_OFFER, "m=application", "a=setup:actpass"),
            "m-line 3 (application): no a=setup",
        ),
        (
            _without(NUMBERED_OFFER, "m=video", "a=ice-pwd:8Hk2pLm4Qr6sTv8wXy0zAb"),
            "m-line 2 (video): no a=ice-pwd",
        ),
        (
            AIORTC_OFFER + "m=text 9 UDP/TLS/RTP/SAVPF 98\r\na=mid:5\r\n" + "\r\n".join(TRANSPORT),
            "m-line 2 (text): media kind 'text' is not supported",
        ),
    ],
    ids=["second-v", "video-setup", "data-setup", "video-ice", "text-kind"],
)
def test_what_aiortc_fails_on_in_other_sections_is_refused(offer: str, reason: str) -> None:
    """Found by fuzzing: a video or data section without a=setup made aiortc's
    setRemoteDescription raise AttributeError (a 500), an m=text section did the same in
    createAnswer, and a second v= line (v=0.0) made its parser raise ValueError."""
    assert reason_for(offer) == reason
