"""The words of every warning, for the therapist and for SREs: the one place they live.

Therapist texts are English message ids, marked with N_ so the gettext catalogs
(`qualmon/l10n/locales`) carry their translations; each is a whole sentence per side (the
client's, or the therapist's own), since "the client's" and "your" do not compose in other
languages. `therapist_text` takes a gettext function and so translates at the output edge;
the core itself stays English and pure. SRE texts stay English (operators, logs). The rules
that decide when to warn are in warnings.py.
"""

from __future__ import annotations

from collections.abc import Callable

from .msgid import N_

Gettext = Callable[[str], str]
"A catalog's gettext: message id in, its translation out."

CLIENT = "client"
OWN = "therapist"
"Whose side a warning is about: the client's, or the therapist's own (read as 'your')."

THERAPIST_TEXTS: dict[str, dict[str | None, str]] = {
    "high_loss": {
        CLIENT: N_(
            "The client's audio is breaking up. You may want to ask them to repeat anything "
            "important."
        ),
        OWN: N_(
            "Your audio is breaking up. The client may miss some of your words; repeating "
            "anything important can help."
        ),
    },
    "high_rtt": {
        CLIENT: N_(
            "There is a noticeable delay on the client's connection. Leaving a little more "
            "time before replying can help avoid talking over each other."
        ),
        OWN: N_(
            "There is a noticeable delay on your connection. Leaving a little more time "
            "before replying can help avoid talking over each other."
        ),
    },
    "high_jitter": {
        CLIENT: N_("The client's connection is unsteady, so their voice may sound choppy."),
        OWN: N_("Your connection is unsteady, so your voice may sound choppy to the client."),
    },
    "low_mos": {
        CLIENT: N_(
            "Call quality on the client's side is poor right now. If it continues, a short "
            "pause or reconnecting may help."
        ),
        OWN: N_(
            "Call quality on your side is poor right now. If it continues, a short pause or "
            "reconnecting may help."
        ),
    },
    "audio_dropouts": {
        CLIENT: N_(
            "Some of the client's words were lost. You may want to ask them to repeat what "
            "they just said."
        ),
        OWN: N_("Some of your words were lost. You may want to repeat what you just said."),
    },
    "media_stopped": {
        CLIENT: N_(
            "The client's audio has stopped reaching the session. They may not hear you "
            "either; check in with them."
        ),
        OWN: N_(
            "Your audio has stopped reaching the session. The client may not hear you; check "
            "your microphone and connection."
        ),
    },
    "mic_silent": {
        CLIENT: N_(
            "We are not picking up any sound from the client's microphone. They may be muted."
        ),
        OWN: N_("We are not picking up any sound from your microphone. It may be muted."),
    },
    "audible_concealment": {
        CLIENT: N_(
            "The client's connection is losing parts of the incoming audio, so words may be "
            "missed. Repeating anything important can help."
        ),
        OWN: N_(
            "Your connection is losing parts of the incoming audio, so you may miss some "
            "words. Asking the client to repeat anything important can help."
        ),
    },
    "connection_lost": {
        CLIENT: N_("The client's connection has dropped. They may be trying to reconnect."),
        OWN: N_("Your connection has dropped. Reconnecting should bring you back in."),
    },
    "video_frozen": {
        CLIENT: N_(
            "The client's picture keeps freezing; their voice may still be fine — ask before "
            "assuming they are not responding."
        ),
        OWN: N_(
            "Your picture keeps freezing for the client; your voice may still be reaching "
            "them. Letting them know you are still there can help."
        ),
    },
    "talk_over_delay": {
        None: N_(
            "The connection delay is making it easy to talk over each other. Short pauses "
            "before replying can help."
        ),
    },
    "talk_balance": {
        None: N_(
            "For your information: one participant has been doing most of the talking for a while."
        ),
    },
}
"What the therapist reads when a warning is raised, by kind and whose side it is about."
CLEARED_TEXTS: dict[str, dict[str | None, str]] = {
    "media_stopped": {
        CLIENT: N_("The client's audio is coming through again."),
        OWN: N_("Your audio is coming through again."),
    },
    "connection_lost": {
        CLIENT: N_("The client's connection is back."),
        OWN: N_("Your connection is back."),
    },
}
"Cleared texts that name whose side recovered; every other kind says its SETTLED_TEXTS."
SETTLED_TEXTS: dict[str, str] = {
    "high_loss": N_("This has settled: audio is coming through clearly again."),
    "high_rtt": N_("This has settled: the delay is back to normal."),
    "high_jitter": N_("This has settled: the connection is steady again."),
    "low_mos": N_("This has settled: call quality has recovered."),
    "audio_dropouts": N_("This has settled: no more lost words."),
    "mic_silent": N_("This has settled: sound is coming from the microphone again."),
    "audible_concealment": N_("This has settled: the incoming audio is complete again."),
    "video_frozen": N_("This has settled: the picture is moving smoothly again."),
    "talk_over_delay": N_("This has settled: the delay is no longer getting in the way."),
    "talk_balance": N_("This has settled: the conversation is more balanced again."),
}
SETTLED_FALLBACK = N_("This has settled: resolved.")
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


def _english(message: str) -> str:
    return message


def _side_text(by_side: dict[str | None, str], role: str | None) -> str:
    """The text for `role`'s side; a session-scope kind has one text for every role, and a
    leg warning without a known role (the runtime raises none) reads as the client's."""
    if None in by_side:
        return by_side[None]
    return by_side.get(role, by_side[CLIENT])


def therapist_message(kind: str, role: str | None, *, cleared: bool) -> str:
    """The English message id of a warning's therapist text; KeyError for unknown kinds."""
    if cleared:
        own = CLEARED_TEXTS.get(kind)
        if own is not None:
            return _side_text(own, role)
        if kind not in THERAPIST_TEXTS:
            raise KeyError(kind)
        return SETTLED_TEXTS.get(kind, SETTLED_FALLBACK)
    return _side_text(THERAPIST_TEXTS[kind], role)


def therapist_text(
    kind: str, role: str | None, *, cleared: bool, gettext: Gettext = _english
) -> str:
    """What the therapist reads, through `gettext` (English without one)."""
    return gettext(therapist_message(kind, role, cleared=cleared))


def sre_text(kind: str, role: str | None, value: float, threshold: float, *, cleared: bool) -> str:
    """What SREs read: technical, English, with the measured value and the threshold."""
    sre = SRE_TEXTS[kind].format(
        role=role or SESSION_ROLE,
        value=value,
        threshold=threshold,
        value_ms=value * 1000,
        threshold_ms=threshold * 1000,
    )
    return CLEARED_PREFIX + sre if cleared else sre


def texts(
    kind: str, role: str | None, value: float, threshold: float, *, cleared: bool
) -> tuple[str, str]:
    """(therapist text in English, SRE text) of a warning raised or cleared; KeyError for
    unknown kinds."""
    return (
        therapist_text(kind, role, cleared=cleared),
        sre_text(kind, role, value, threshold, cleared=cleared),
    )
