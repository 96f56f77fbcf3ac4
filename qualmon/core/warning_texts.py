"""The words of every warning, for the therapist and for SREs: the one place they live.

Nothing else in qualmon holds user-visible warning wording, so the gettext catalogs can
later take over this module alone. The rules that decide when to warn are in warnings.py.
"""

from __future__ import annotations

# Placeholders: {who}/{whose} name whose side it is (see _who); SRE texts get {role},
# {value} and {threshold} in the rule's unit, and {value_ms}/{threshold_ms} for seconds.

THERAPIST_TEXTS: dict[str, str] = {
    "high_loss": "{who} audio is breaking up. You may want to ask them to repeat anything "
    "important.",
    "high_rtt": "There is a noticeable delay on {whose} connection. Leaving a little more "
    "time before replying can help avoid talking over each other.",
    "high_jitter": "{who} connection is unsteady, so their voice may sound choppy.",
    "low_mos": "Call quality on {whose} side is poor right now. If it continues, a short "
    "pause or reconnecting may help.",
    "audio_dropouts": "Some of {whose} words were lost. You may want to ask them to repeat "
    "what they just said.",
    "media_stopped": "{who} audio has stopped reaching the session. They may not hear you "
    "either; check in with them.",
    "mic_silent": "We are not picking up any sound from {whose} microphone. They may be muted.",
    "audible_concealment": "{who} connection is losing parts of the incoming audio, so words "
    "may be missed. Repeating anything important can help.",
    "connection_lost": "{who} connection has dropped. They may be trying to reconnect.",
    "video_frozen": "{who} picture keeps freezing; their voice may still be fine — ask "
    "before assuming they are not responding.",
    "talk_over_delay": "The connection delay is making it easy to talk over each other. "
    "Short pauses before replying can help.",
    "talk_balance": "For your information: one participant has been doing most of the "
    "talking for a while.",
}
"What the therapist reads when a warning is raised, by kind."
OWN_SIDE_TEXTS: dict[str, str] = {
    "video_frozen": "Your picture keeps freezing for the client; your voice may still be "
    "reaching them. Letting them know you are still there can help.",
}
"Kinds whose advice differs when the warning is about the therapist's own side."
CLEARED_TEXTS: dict[str, str] = {
    "media_stopped": "{who} audio is coming through again.",
    "connection_lost": "{who} connection is back.",
}
"Cleared texts of their own; every other kind says SETTLED_TEXT with its SETTLED_TEXTS entry."
SETTLED_TEXT = "This has settled: {what}"
SETTLED_TEXTS: dict[str, str] = {
    "high_loss": "audio is coming through clearly again.",
    "high_rtt": "the delay is back to normal.",
    "high_jitter": "the connection is steady again.",
    "low_mos": "call quality has recovered.",
    "audio_dropouts": "no more lost words.",
    "mic_silent": "sound is coming from the microphone again.",
    "audible_concealment": "the incoming audio is complete again.",
    "video_frozen": "the picture is moving smoothly again.",
    "talk_over_delay": "the delay is no longer getting in the way.",
    "talk_balance": "the conversation is more balanced again.",
}
SETTLED_FALLBACK = "resolved."
SRE_TEXTS: dict[str, str] = {
    "high_loss": "{role} inbound RTP loss {value:.1%} (5 s-equivalent: worst of 1/2/5 s "
    "windows; threshold {threshold:.1%})",
    "high_rtt": "{role} RTT {value_ms:.0f} ms (threshold {threshold_ms:.0f} ms)",
    "high_jitter": "{role} RFC 3550 jitter {value_ms:.1f} ms (threshold {threshold_ms:.0f} ms)",
    "low_mos": "{role} estimated MOS {value:.2f} (threshold {threshold:.2f})",
    "audio_dropouts": "{role} {value:.0f} dropout(s) during speech in the last 10 s",
    "media_stopped": "{role} no RTP for {value:.1f} s (threshold {threshold:.1f} s)",
    "mic_silent": "{role} audio below -60 dBFS with no speech for the mic-silent period",
    "audible_concealment": "{role} hears {value:.1%} concealed audio over 15 s "
    "(probe; threshold {threshold:.0%})",
    "connection_lost": "{role} leg ended without media (lost/failed)",
    "video_frozen": "{role} inbound video frozen: score {value:.1f} over 30 s (max of W3C "
    "freeze seconds and 0.5 s per freeze; threshold {threshold:.1f})",
    "talk_over_delay": "overlap {value:.1f} s in 30 s while RTT > 300 ms",
    "talk_balance": "a role's talk share {value:.0%} over 5 min (threshold {threshold:.0%})",
}
"What SREs read in each warning event (live stream, webhook); cleared ones get CLEARED_PREFIX."
CLEARED_PREFIX = "cleared: "
SESSION_ROLE = "session"
"The {role} of a session-scope warning, which belongs to no one leg."


def _who(role: str | None) -> tuple[str, str]:
    """{who} and {whose}: the therapist reads about their own side as "your"."""
    if role == "client":
        return "The client's", "the client's"
    if role == "therapist":
        return "Your", "your"
    return "The", "the"


def texts(
    kind: str, role: str | None, value: float, threshold: float, *, cleared: bool
) -> tuple[str, str]:
    """(therapist text, SRE text) of a warning raised or cleared; KeyError for unknown kinds."""
    who, whose = _who(role)
    if cleared:
        template = CLEARED_TEXTS.get(kind, SETTLED_TEXT)
        what = SETTLED_TEXTS.get(kind, SETTLED_FALLBACK)
        therapist = template.format(who=who, whose=whose, what=what)
    else:
        own = OWN_SIDE_TEXTS.get(kind) if role == "therapist" else None
        therapist = (own or THERAPIST_TEXTS[kind]).format(who=who, whose=whose)
    sre = SRE_TEXTS[kind].format(
        role=role or SESSION_ROLE,
        value=value,
        threshold=threshold,
        value_ms=value * 1000,
        threshold_ms=threshold * 1000,
    )
    return therapist, (CLEARED_PREFIX + sre if cleared else sre)
