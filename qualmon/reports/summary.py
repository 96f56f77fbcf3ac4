"""The clinician summary: a few plain sentences for the therapist, in their language."""

from __future__ import annotations

from ..core.msgid import N_
from ..l10n.localizer import Localizer
from .model import BUCKET_SECONDS, SessionReport, degraded_ratio, quality_degraded_ratio

_OPENINGS: dict[str, str] = {
    "ended": N_("Session of {duration}; it ended normally."),
    "lost": N_("Session of {duration}; it ended when the connection was lost."),
    "interrupted": N_(
        "Session of {duration}; it was interrupted by a monitor restart; figures run to the "
        "last save."
    ),
    "shutdown": N_("Session of {duration}; it was cut short when the monitor shut down."),
}
_STILL_RUNNING = N_("Session of {duration}; it is still running.")
_TALK_SHARES = {
    ("therapist", "client"): N_("Therapist talk share {therapist}; client talk share {client}."),
    ("therapist",): N_("Therapist talk share {therapist}."),
    ("client",): N_("Client talk share {client}."),
}
_PICTURE_FROZE = {
    "therapist": N_("The therapist's picture froze at times ({share} of the session)."),
    "client": N_("The client's picture froze at times ({share} of the session)."),
}


def _share(loc: Localizer, ratio: float) -> str:
    """A share of the session: whole percent, and 'under 1%' rather than a false 0%."""
    if 0 < ratio < 0.01:
        return loc.gettext(N_("under {share}")).format(share=loc.percent(0.01))
    return loc.percent(ratio)


def _dropouts_in_speech(loc: Localizer, role: str, n: int) -> str:
    # Literal pairs in the calls: that is how message extraction sees a plural.
    if role == "therapist":
        sentence = loc.ngettext(
            "{n} dropout while the therapist was speaking.",
            "{n} dropouts while the therapist was speaking.",
            n,
        )
    else:
        sentence = loc.ngettext(
            "{n} dropout while the client was speaking.",
            "{n} dropouts while the client was speaking.",
            n,
        )
    return sentence.format(n=loc.number(n))


def clinician_summary(
    report: SessionReport,
    loc: Localizer,
    *,
    degraded: float | None = None,
    warned: float | None = None,
) -> str:
    """How the audio was, who talked, what was lost, in `loc`'s language.

    `degraded` (quality_degraded_ratio) and `warned` (degraded_ratio) when already computed.
    """
    duration = loc.duration(report.duration_seconds)
    opening = _OPENINGS.get(report.end_reason or "", _STILL_RUNNING)
    parts = [loc.gettext(opening).format(duration=duration)]
    if degraded is None:
        degraded = quality_degraded_ratio(report)
    if degraded == 0:
        parts.append(loc.gettext(N_("Audio was good throughout.")))
    else:
        sentence = loc.gettext(N_("Audio was degraded for {share} of the session."))
        parts.append(sentence.format(share=_share(loc, degraded)))
    shares = report.turns.get("talk_share") or {}
    said = tuple(
        role for role in ("therapist", "client") if role in report.roles and role in shares
    )
    if said in _TALK_SHARES:
        values = {role: _share(loc, shares[role]) for role in said}
        parts.append(loc.gettext(_TALK_SHARES[said]).format(**values))
    for leg in report.legs:
        if leg.dropouts_in_speech:
            parts.append(_dropouts_in_speech(loc, leg.role, leg.dropouts_in_speech))
    for role in report.roles:
        frozen = sum(1 for p in report.points if p.role == role and p.video_frozen)
        if frozen and role in _PICTURE_FROZE:
            share = min(1.0, frozen * BUCKET_SECONDS / max(report.duration_seconds, 1.0))
            parts.append(loc.gettext(_PICTURE_FROZE[role]).format(share=_share(loc, share)))
    if any(leg.dropouts for leg in report.legs) and not any(
        leg.dropouts_in_speech for leg in report.legs
    ):
        parts.append(loc.gettext(N_("No words were lost to dropouts.")))
    if report.warnings:
        if warned is None:
            end = report.ended_at or report.checkpoint_at
            warned = degraded_ratio(report.warnings, report.started_at, end)
        n = len(report.warnings)
        sentence = loc.ngettext(
            "{n} warning raised, active for {share} of the session.",
            "{n} warnings raised, active for {share} of the session.",
            n,
        )
        parts.append(sentence.format(n=loc.number(n), share=_share(loc, warned)))
    return " ".join(parts)
