"""Validation of a WHIP SDP offer before aiortc parses it."""

import ipaddress
import re
import unicodedata
from dataclasses import dataclass, field

from ..core.ascii_digits import parse_ascii_int
from ..core.video import VideoCodec
from .offer_video import measurable_video_codecs

# aiortc's parser asserts, int()s or splits these values; a value off this shape raises
# deep inside it (AssertionError, ValueError, KeyError), so it must not get that far.
# [0-9], never \d: \d also matches "٣" or "９", which int() reads as 3 and 9. Every number
# has a digit cap: int() raises ValueError past 4300 digits, and a 32-bit SSRC or a 16-bit
# port has no business being longer than 10 or 5 digits.
_ATTRIBUTE_FORMS = {
    # foundation, component, transport, priority (32 bits), address, port.
    "candidate": re.compile(r"\S+ [0-9]{1,3} \S+ [0-9]{1,10} \S+ [0-9]{1,5} typ \S+( .*)?"),
    "extmap": re.compile(r"[0-9]{1,3}(/\w+)? \S+"),
    "fingerprint": re.compile(r"[A-Za-z0-9-]+ [0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})+"),
    "fmtp": re.compile(r"[0-9]{1,3} .+"),
    "max-message-size": re.compile(r"[0-9]{1,10}"),
    "msid": re.compile(r"\S+( \S+)?"),
    "rtcp": re.compile(r"[0-9]{1,5}( IN IP[46] [^ ]+)?"),
    "rtpmap": re.compile(r"[0-9]{1,3} [^/ ]+/[0-9]{1,10}(/[0-9]{1,3})?"),
    "sctp-port": re.compile(r"[0-9]{1,5}"),
    "sctpmap": re.compile(r"[0-9]{1,5} .+"),
    "setup": re.compile(r"actpass|active|passive"),
    "ssrc": re.compile(r"[0-9]{1,10} [^:]+:.*"),
    "ssrc-group": re.compile(r"\S+( [0-9]{1,10})*"),
}
# aiortc int()s these fmtp parameters.
_FMTP_INT_PARAMETERS = frozenset(
    {"apt", "max-fr", "max-fs", "maxplaybackrate", "minptime", "stereo", "useinbandfec"}
)
_LINE = re.compile(r"[a-z]=.*")
_CONNECTION = re.compile(r"IN IP[46] [^ ]+")
# aiortc's own m-line pattern: a port with "/<count>" or a lower-case proto fails its assert.
_MEDIA = re.compile(r"m=(\S+) ([0-9]+) ([A-Z/]+) (.+)")
_DIRECTIONS = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})
_MEDIA_KINDS = frozenset({"audio", "video", "application"})
_STATIC_AUDIO_PAYLOAD_TYPES = frozenset({0, 8})  # PCMU/8000, PCMA/8000
_FORBIDDEN_PAYLOAD_TYPES = range(72, 77)  # RTCP packet types under rtcp-mux
_EXCERPT_CHARS = 40
_PAYLOAD_TYPE_DIGITS = 3
_PORT_DIGITS = 5
_FMTP_INT_DIGITS = 10
MAX_PORT = 65535


class OfferError(ValueError):
    """An offer we refuse; ``reason`` is one human-readable line, fit for an HTTP 400 body."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ValidatedOffer:
    """An offer that aiortc can parse, and what we learnt from it on the way."""

    sdp: str
    "The cleaned SDP, CRLF line endings, to hand to aiortc."
    audio_payload_clock_rates: dict[int, int]
    "RTP payload type → clock rate in Hz, from the a=rtpmap lines of the audio sections."
    dropped_candidates: int
    "Candidates removed because their address is a host name (e.g. mDNS .local), not an IP."
    video_payload_codecs: dict[int, VideoCodec] = field(default_factory=dict)
    "Payload type → codec of the one sending video section's VP8 and H.264 formats that we"
    " measure; empty for an audio-only offer (or one whose video does not send)."
    video_mid: str | None = None
    "The a=mid of that video section (None without one, or without such a section)."


@dataclass(frozen=True)
class _Section:
    label: str
    kind: str
    "Media kind from the m= line; empty for the session part."
    lines: list[str]


def validate_offer(text: str, *, max_bytes: int = 65536) -> ValidatedOffer:
    """Check a WHIP offer strictly enough that aiortc neither crashes nor half-succeeds on it.

    Raises OfferError with a one-line reason. Candidates with host-name addresses are dropped
    (aioice would resolve them with blocking DNS inside the event loop); an audio or video
    section without a direction attribute gets its effective one appended (aiortc does not
    apply the sendrecv default and fails in createAnswer). Everything else is kept as sent.
    """
    size_bytes = len(text.encode("utf-8", errors="replace"))
    if size_bytes > max_bytes:
        raise OfferError(f"offer is {size_bytes} bytes, over the limit of {max_bytes} bytes")
    if not text.strip():
        raise OfferError("offer is empty")
    _reject_control_characters(text)
    lines = _split_lines(text)
    session, media = _group(lines)
    for name in ("o", "s", "t"):
        if not any(line.startswith(f"{name}=") for line in session.lines):
            raise OfferError(f"offer lacks the session-level {name}= line")
    for section in [session, *media]:
        _check_line_forms(section)
    audio = [section for section in media if section.kind == "audio"]
    if not audio:
        # Video alone is refused: a leg is measured by its audio (liveness, loss, speech).
        raise OfferError("offer has no m=audio section")
    _check_mids(session, media)
    for section in media:
        _check_transport(section, session)
    clock_rates: dict[int, int] = {}
    for section in audio:
        for pt, clock_rate_hz in _check_audio(section, session).items():
            clock_rates.setdefault(pt, clock_rate_hz)
    video_codecs, video_mid = _check_video(media, session)
    dropped = 0
    out = list(session.lines)
    for section in media:
        kept, dropped_here = _drop_hostname_candidates(section.lines)
        dropped += dropped_here
        if section.kind in ("audio", "video") and _direction(section) is None:
            kept.append(f"a={_direction(session) or 'sendrecv'}")
        out += kept
    return ValidatedOffer(
        sdp="\r\n".join(out) + "\r\n",
        audio_payload_clock_rates=clock_rates,
        dropped_candidates=dropped,
        video_payload_codecs=video_codecs,
        video_mid=video_mid,
    )


def check_candidate(value: str) -> None:
    """Raise OfferError unless `value`, an a=candidate value trickled in a PATCH, has the
    form the offer's own candidates must have (aiortc int()s its numbers)."""
    if not _ATTRIBUTE_FORMS["candidate"].fullmatch(value):
        raise OfferError("trickled candidate: malformed a=candidate line")
    _check_candidate_extensions("trickled candidate", value)


def _reject_control_characters(text: str) -> None:
    for char in text:
        # Zl/Zp and C1 controls would make str.splitlines (aiortc's splitter) see extra lines.
        if char not in "\r\n\t" and unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp"):
            raise OfferError(f"offer contains control character U+{ord(char):04X}")


def _split_lines(text: str) -> list[str]:
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    if lines[0] != "v=0":
        raise OfferError("offer does not start with v=0")
    for number, line in enumerate(lines, start=1):
        if "\r" in line:
            raise OfferError(f"line {number} contains a stray CR")
        if not _LINE.fullmatch(line):
            excerpt = line[:_EXCERPT_CHARS]
            raise OfferError(f"line {number} is not of the form <letter>=<value>: {excerpt!r}")
        if number > 1 and line.startswith("v="):
            raise OfferError(f"line {number} is a second v= line")  # aiortc int()s each one
    return lines


def _group(lines: list[str]) -> tuple[_Section, list[_Section]]:
    session = _Section("session", "", [])
    media: list[_Section] = []
    for line in lines:
        if line.startswith("m="):
            kind = line[2:].split(" ", 1)[0]
            media.append(_Section(f"m-line {len(media) + 1} ({kind})", kind, [line]))
        else:
            (media[-1] if media else session).lines.append(line)
    return session, media


def _attribute(line: str) -> tuple[str, str] | None:
    if not line.startswith("a="):
        return None
    name, _, value = line[2:].partition(":")
    return name, value


def _values(section: _Section, name: str) -> list[str]:
    return [a[1] for line in section.lines if (a := _attribute(line)) and a[0] == name]


def _direction(section: _Section) -> str | None:
    # aiortc, like the RFC, lets the last direction attribute win.
    found = [a[0] for line in section.lines if (a := _attribute(line)) and a[0] in _DIRECTIONS]
    return found[-1] if found else None


def _check_line_forms(section: _Section) -> None:
    is_media = bool(section.kind)
    if is_media:
        match = _MEDIA.fullmatch(section.lines[0])
        if not match:
            raise OfferError(f"{section.label}: malformed m= line")
        if section.kind not in _MEDIA_KINDS:
            # aiortc pairs other kinds with nothing and fails on them in createAnswer.
            raise OfferError(
                f"{section.label}: media kind {section.kind[:_EXCERPT_CHARS]!r} is not supported"
            )
        _port(section.label, match.group(2))
        if section.kind in ("audio", "video"):
            _payload_types(section, match.group(4))
    for line in section.lines[is_media:]:
        if line.startswith("c=") and not _CONNECTION.fullmatch(line[2:]):
            raise OfferError(f"{section.label}: malformed c= line")
        attribute = _attribute(line)
        if attribute is None:
            continue
        name, value = attribute
        form = _ATTRIBUTE_FORMS.get(name)
        if form is not None and not form.fullmatch(value):
            if name == "setup":
                raise OfferError(f"{section.label}: a=setup must be actpass, active or passive")
            raise OfferError(f"{section.label}: malformed a={name} line")
        if name == "candidate":
            _check_candidate_extensions(section.label, value)
    if is_media:
        _check_fmtp(section)


def _check_mids(session: _Section, media: list[_Section]) -> None:
    """aiortc pairs sections with transceivers by mid and bundles on the group's first mid:
    a mid used twice (or two sections without one), a BUNDLE naming no section or a second
    data channel section make it fail inside createAnswer (AttributeError, ValueError)."""
    mids: list[str | None] = []
    for section in media:
        values = _values(section, "mid")
        mid = values[-1] if values else None
        if mid in mids:
            what = f"mid {mid[:_EXCERPT_CHARS]!r}" if mid is not None else "no a=mid"
            raise OfferError(f"{section.label}: another m= section has {what} too")
        mids.append(mid)
    if sum(section.kind == "application" for section in media) > 1:
        raise OfferError("offer has more than one m=application section")
    for value in _values(session, "group"):
        bits = value.split()  # as aiortc splits it
        for tag in bits[1:] if bits[:1] == ["BUNDLE"] else ():
            if tag not in mids:
                excerpt = tag[:_EXCERPT_CHARS]
                raise OfferError(f"a=group:BUNDLE names mid {excerpt!r}, which no m= section has")


def _payload_types(section: _Section, fmt: str) -> list[int]:
    payload_types = []
    for token in fmt.split():
        pt = parse_ascii_int(token, max_digits=_PAYLOAD_TYPE_DIGITS)
        if pt is None or pt > 255 or pt in _FORBIDDEN_PAYLOAD_TYPES:
            raise OfferError(f"{section.label}: invalid payload type {token[:8]!r}")
        payload_types.append(pt)
    return payload_types


def _port(label: str, text: str) -> int:
    port = parse_ascii_int(text, max_digits=_PORT_DIGITS)
    if port is None or port > MAX_PORT:
        raise OfferError(f"{label}: port {text[:8]} is out of range")
    return port


def _check_candidate_extensions(label: str, value: str) -> None:
    """The candidate's port and rport are ports (aioice sends to them); the form is checked."""
    bits = value.split()
    ports = [bits[5]] + [bits[i + 1] for i in range(8, len(bits) - 1, 2) if bits[i] == "rport"]
    for port in ports:
        number = parse_ascii_int(port, max_digits=_PORT_DIGITS)
        if number is None or number > MAX_PORT:
            raise OfferError(f"{label}: malformed a=candidate line")


def _check_fmtp(section: _Section) -> None:
    mapped = {int(value.split(" ", 1)[0]) for value in _values(section, "rtpmap")}
    for value in _values(section, "fmtp"):
        pt_text, parameters = value.split(" ", 1)
        if int(pt_text) not in mapped:
            raise OfferError(f"{section.label}: a=fmtp for payload type {pt_text} has no a=rtpmap")
        for parameter in parameters.split(";"):
            key, has_value, parameter_value = parameter.partition("=")
            if (
                has_value
                and key in _FMTP_INT_PARAMETERS
                and parse_ascii_int(parameter_value, max_digits=_FMTP_INT_DIGITS) is None
            ):
                raise OfferError(f"{section.label}: a=fmtp {key} is not an integer")


def _check_transport(section: _Section, session: _Section) -> None:
    """ICE credentials and a DTLS role for every m= section, bundled or not: aiortc refuses a
    section without credentials and fails (AttributeError) on one without a=setup."""
    for name in ("ice-ufrag", "ice-pwd"):
        values = _values(section, name) or _values(session, name)
        if not values or not values[-1]:
            raise OfferError(f"{section.label}: no a={name}")
    if not (_values(section, "setup") or _values(session, "setup")):
        raise OfferError(f"{section.label}: no a=setup")


def _check_rtp_section(section: _Section, session: _Section) -> list[int]:
    """An audio or video section we receive: RTP, DTLS, RTCP muxed; its payload types."""
    label = section.label
    match = _MEDIA.fullmatch(section.lines[0])
    if match is None:  # _check_line_forms refused it already; a check, not an assert (-O)
        raise OfferError(f"{label}: malformed m= line")
    if "RTP/" not in match.group(3):
        raise OfferError(f"{label}: protocol {match.group(3)!r} is not RTP")
    payload_types = _payload_types(section, match.group(4))
    if not payload_types:
        raise OfferError(f"{label}: no payload types on the m= line")
    if not (_values(section, "fingerprint") or _values(session, "fingerprint")):
        raise OfferError(f"{label}: no a=fingerprint (DTLS is required)")
    if not any(line == "a=rtcp-mux" for line in section.lines):
        raise OfferError(f"{label}: no a=rtcp-mux (RTCP multiplexing is required)")
    return payload_types


def _check_audio(section: _Section, session: _Section) -> dict[int, int]:
    label = section.label
    payload_types = _check_rtp_section(section, session)
    direction = _direction(section) or _direction(session) or "sendrecv"
    if direction not in ("sendrecv", "sendonly"):
        raise OfferError(f"{label}: direction is {direction}, a WHIP publisher must send")

    clock_rates: dict[int, int] = {}
    for value in _values(section, "rtpmap"):
        pt_text, encoding = value.split(" ", 1)
        clock_rates.setdefault(int(pt_text), int(encoding.split("/")[1]))
    if not any(pt in clock_rates or pt in _STATIC_AUDIO_PAYLOAD_TYPES for pt in payload_types):
        raise OfferError(f"{label}: no payload type with an a=rtpmap or a static codec")
    return clock_rates


def _check_video(
    media: list[_Section], session: _Section
) -> tuple[dict[int, VideoCodec], str | None]:
    """The payload types we measure of the one video section that sends, and its mid.

    A video section that does not send (recvonly, inactive, port 0) is answered inactive,
    as before. One that sends must carry VP8 or H.264 as aiortc answers it: other codecs
    (VP9, AV1) or a second camera would be received and not measured, so they are refused.
    """
    sending = [
        section
        for section in media
        if section.kind == "video"
        and (_direction(section) or _direction(session) or "sendrecv") in ("sendrecv", "sendonly")
        and not section.lines[0].startswith("m=video 0 ")
    ]
    if not sending:
        return {}, None
    if len(sending) > 1:
        raise OfferError(f"{sending[1].label}: a second sending m=video section (one is measured)")
    section = sending[0]
    payload_types = _check_rtp_section(section, session)
    codecs = measurable_video_codecs(
        payload_types, rtpmaps=_values(section, "rtpmap"), fmtps=_values(section, "fmtp")
    )
    if not codecs:
        raise OfferError(
            f"{section.label}: no VP8 or H.264 (packetization-mode 1, baseline) payload type;"
            " only those are measured"
        )
    mids = _values(section, "mid")
    return codecs, mids[-1] if mids else None


def _drop_hostname_candidates(lines: list[str]) -> tuple[list[str], int]:
    kept = []
    dropped = 0
    for line in lines:
        attribute = _attribute(line)
        if attribute is not None and attribute[0] == "candidate":
            address = attribute[1].split()[4]
            try:
                ipaddress.ip_address(address)
            except ValueError:
                dropped += 1
                continue
        kept.append(line)
    return kept, dropped
