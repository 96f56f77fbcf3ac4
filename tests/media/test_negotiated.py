"""What an answer negotiated: the codec that picks the speech path."""

from __future__ import annotations

from aiortc import RTCPeerConnection, RTCRtpSender

from qualmon.media.negotiated import NegotiatedCodec, negotiated_codec

OPUS_ANSWER = """v=0
m=audio 9 UDP/TLS/RTP/SAVPF 111 0
a=rtpmap:111 opus/48000/2
a=rtpmap:0 PCMU/8000
"""


def test_first_payload_type_of_the_audio_line_wins() -> None:
    assert negotiated_codec(OPUS_ANSWER) == NegotiatedCodec(111, "opus", 48000)
    pcmu_first = OPUS_ANSWER.replace("SAVPF 111 0", "SAVPF 0 111")
    assert negotiated_codec(pcmu_first) == NegotiatedCodec(0, "pcmu", 8000)


def test_names_are_lower_case_and_unmapped_types_are_skipped() -> None:
    answer = "m=audio 9 UDP/TLS/RTP/SAVPF 96 8\na=rtpmap:8 PCMA/8000\n"
    assert negotiated_codec(answer) == NegotiatedCodec(8, "pcma", 8000)


def test_no_audio_line_defaults_to_opus() -> None:
    assert negotiated_codec("v=0\n") == NegotiatedCodec(111, "opus", 48000)
    video_only = "v=0\nm=video 9 UDP/TLS/RTP/SAVPF 97\na=rtpmap:97 VP8/90000\n"
    assert negotiated_codec(video_only) == NegotiatedCodec(111, "opus", 48000)


def test_no_mapped_audio_payload_type_defaults_to_opus() -> None:
    answer = "v=0\nm=audio 9 UDP/TLS/RTP/SAVPF 96\na=rtpmap:97 opus/48000/2\n"
    assert negotiated_codec(answer) == NegotiatedCodec(111, "opus", 48000)


def test_only_the_audio_sections_rtpmaps_count() -> None:
    """A video section reusing the payload number does not rename the audio codec."""
    answer = OPUS_ANSWER + "m=video 9 UDP/TLS/RTP/SAVPF 111\na=rtpmap:111 VP8/90000\n"
    assert negotiated_codec(answer) == NegotiatedCodec(111, "opus", 48000)


async def test_an_answer_aiortc_made_names_its_codec() -> None:
    """The real input: aiortc's own answer to an offer that prefers PCMU."""
    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    try:
        transceiver = offerer.addTransceiver("audio", direction="sendonly")
        pcmu = [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.name == "PCMU"]
        transceiver.setCodecPreferences(pcmu)
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        assert negotiated_codec(answerer.localDescription.sdp) == NegotiatedCodec(0, "pcmu", 8000)
    finally:
        await offerer.close()
        await answerer.close()
