"""What an answer negotiated: the codec that picks the speech path."""

from __future__ import annotations

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
