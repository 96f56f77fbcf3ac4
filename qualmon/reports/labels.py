"""Names a report shows for its codes (roles, warning kinds, bands, how things ended), as
English message ids for the reader's catalog."""

from __future__ import annotations

from ..core.msgid import N_
from ..l10n.localizer import Localizer

ROLE_NAMES: dict[str, str] = {"therapist": N_("Therapist"), "client": N_("Client")}
WARNING_NAMES: dict[str, str] = {
    "high_loss": N_("Audio breaking up (packet loss)"),
    "high_rtt": N_("Noticeable delay"),
    "high_jitter": N_("Unsteady connection (jitter)"),
    "low_mos": N_("Poor call quality"),
    "audio_dropouts": N_("Words lost (dropouts in speech)"),
    "media_stopped": N_("Audio stopped"),
    "mic_silent": N_("Silent microphone"),
    "audible_concealment": N_("Incoming audio incomplete"),
    "connection_lost": N_("Connection dropped"),
    "video_frozen": N_("Picture freezing"),
    "talk_over_delay": N_("Talking over each other"),
    "talk_balance": N_("Talk balance"),
}
SEVERITY_NAMES: dict[str, str] = {
    "info": N_("for information"),
    "warning": N_("notice"),
    "critical": N_("urgent"),
}
QUALITY_NAMES: dict[str, str] = {
    "good": N_("good"),
    "fair": N_("fair"),
    "poor": N_("poor"),
    "none": N_("no data"),
}
PICTURE_NAMES: dict[str, str] = {
    "smooth": N_("smooth"),
    "choppy": N_("choppy"),
    "frozen": N_("frozen"),
    "none": N_("no video"),
}
LEG_ENDINGS: dict[str, str] = {
    "closed": N_("closed"),
    "lost": N_("connection lost"),
    "replaced": N_("replaced by a reconnect"),
    "failed": N_("failed"),
    "never_connected": N_("never connected"),
    "shutdown": N_("monitor shut down"),
}
REPORT_ENDINGS: dict[str, str] = {
    "ended": N_("ended normally"),
    "lost": N_("connection lost"),
    "interrupted": N_("interrupted by a monitor restart"),
    "shutdown": N_("cut short by a monitor shutdown"),
}
WHOLE_SESSION = N_("whole session")
STILL_LIVE = N_("still live")


def named(loc: Localizer, names: dict[str, str], code: str | None, fallback: str) -> str:
    """The translated name of `code`; a code without a name (a newer kind read by an older
    page) shows as itself rather than breaking the page."""
    if code is None:
        return loc.gettext(fallback)
    name = names.get(code)
    return loc.gettext(name) if name is not None else code
