"""The report's timeline picture: an SVG with one lane per role, in the reader's language.

Network quality is told by pattern as well as colour (fair dotted, poor hatched), so the
picture does not rely on colour alone; the page also carries it as a table
(timeline_table.py), and every mark has a tooltip.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from ..core.msgid import N_
from ..l10n.localizer import Localizer
from .labels import PICTURE_NAMES, QUALITY_NAMES, ROLE_NAMES, SEVERITY_NAMES, WARNING_NAMES, named
from .model import BUCKET_SECONDS, QualityBand, SessionReport, VideoBand, quality_band, video_band

WIDTH = 960
LABEL_WIDTH = 110
RIGHT_MARGIN = 20
LANE_HEIGHT = 56
LANE_GAP = 18
AXIS_HEIGHT = 28
BAND_COLOURS: dict[QualityBand, str] = {
    "good": "#2e7d32",
    "fair": "#f2a900",
    "poor": "#c62828",
    "none": "#bdbdbd",
}
VIDEO_ROW_HEIGHT = 18
"Extra height of a lane whose role sent video: its picture row."
VIDEO_COLOURS: dict[VideoBand, str] = {
    "smooth": "#2e7d32",
    "choppy": "#f2a900",
    "frozen": "#c62828",
    "none": "#bdbdbd",
}
SPEECH_COLOUR = "#3f6fb5"
DROPOUT_COLOUR = "#6a1b1b"
WARNING_COLOUR = "#e65100"
TICK_STEPS_SECONDS = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
PATTERN_DEFS = (
    '<defs><pattern id="dots-fair" width="6" height="6" patternUnits="userSpaceOnUse">'
    f'<rect width="6" height="6" fill="{BAND_COLOURS["fair"]}"/>'
    '<circle cx="3" cy="3" r="1.2" fill="#1b1b1b"/></pattern>'
    '<pattern id="hatch-poor" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)">'
    f'<rect width="6" height="6" fill="{BAND_COLOURS["poor"]}"/>'
    '<rect width="2" height="6" fill="#ffffff"/></pattern></defs>'
)
"Fills that tell fair and poor apart from good without colour (referenced by the legend)."
BAND_FILLS: dict[QualityBand, str] = {
    "good": BAND_COLOURS["good"],
    "fair": "url(#dots-fair)",
    "poor": "url(#hatch-poor)",
    "none": BAND_COLOURS["none"],
}
PICTURE_FILLS: dict[VideoBand, str] = {
    "smooth": VIDEO_COLOURS["smooth"],
    "choppy": "url(#dots-fair)",
    "frozen": "url(#hatch-poor)",
    "none": VIDEO_COLOURS["none"],
}

TITLE = N_("Session timeline")
ROW_LABELS: dict[str, str] = {
    "network": N_("network"),
    "speech": N_("speech"),
    "video": N_("video"),
}
"The rows of a lane, named in its margin."

Scale = Callable[[float], float]


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def clock_text(seconds: float) -> str:
    """Session time as m:ss or h:mm:ss (the same in every language qualmon speaks)."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def maybe(value: float | None, show: Callable[[float], str]) -> str:
    """A measure, or a dash where there is none."""
    return "–" if value is None else show(value)


def render_timeline_svg(report: SessionReport, loc: Localizer) -> str:
    """Per-role lanes: network quality bands, speech bars, dropout and warning marks."""
    # The session's length; the last 5 s bucket is cut off where the session ended.
    span = max(report.duration_seconds, 1.0)
    plot = WIDTH - LABEL_WIDTH - RIGHT_MARGIN

    def x(t: float) -> float:
        return LABEL_WIDTH + max(0.0, min(span, t)) / span * plot

    def w(t0: float, t1: float) -> float:
        return max(1.0, x(t1) - x(t0))

    with_video = {p.role for p in report.points if p.video_frozen is not None}
    lanes_height = sum(
        LANE_HEIGHT + LANE_GAP + (VIDEO_ROW_HEIGHT if role in with_video else 0)
        for role in report.roles
    )
    height = lanes_height + AXIS_HEIGHT
    description = loc.gettext(
        N_(
            "For each participant: network quality in 5-second bands (green good, amber "
            "dotted fair, red hatched poor, grey no data), speech activity in blue, dropouts "
            "as dark red marks and warnings in orange; for a participant who sent video, the "
            "picture in 5-second bands (green smooth, amber dotted under 15 frames a second, "
            "red hatched frozen). The table below the picture gives the same."
        )
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-labelledby="tl-title tl-desc">',
        f'<title id="tl-title">{_e(loc.gettext(TITLE))}</title>',
        f'<desc id="tl-desc">{_e(description)}</desc>',
        PATTERN_DEFS,
    ]
    top = 4
    for role in report.roles:
        out.append(f'<g class="lane" data-role="{_e(role)}" transform="translate(0 {top})">')
        out.append(_lane(report, role, loc, x, w))
        if role in with_video:
            out.append(_video_row(report, role, loc, x, w))
        out.append("</g>")
        top += LANE_HEIGHT + LANE_GAP + (VIDEO_ROW_HEIGHT if role in with_video else 0)
    out.append(_axis(span, lanes_height, x))
    out.append("</svg>")
    return "".join(out)


def _lane(
    report: SessionReport, role: str, loc: Localizer, x: Scale, w: Callable[..., float]
) -> str:
    role_name = named(loc, ROLE_NAMES, role, "")
    network, speech = (_e(loc.gettext(ROW_LABELS[row])) for row in ("network", "speech"))
    out = [
        f'<text x="4" y="16" class="role">{_e(role_name)}</text>'
        f'<text x="4" y="31" class="row">{network}</text>'
        f'<text x="4" y="45" class="row">{speech}</text>'
        f'<rect x="{LABEL_WIDTH}" y="4" width="{WIDTH - LABEL_WIDTH - RIGHT_MARGIN}" '
        'height="44" class="track"/>'
    ]
    for p in (p for p in report.points if p.role == role):
        band = quality_band(p)
        template = (
            N_(
                "{start}–{end}: {quality}, no media; MOS {mos}, loss {loss}, jitter {jitter}, "
                "RTT {rtt}"
            )
            if p.stalled
            else N_("{start}–{end}: {quality}; MOS {mos}, loss {loss}, jitter {jitter}, RTT {rtt}")
        )
        tip = loc.gettext(template).format(
            start=clock_text(p.t_seconds),
            end=clock_text(p.t_seconds + BUCKET_SECONDS),
            quality=loc.gettext(QUALITY_NAMES[band]),
            mos=maybe(p.mos, lambda v: loc.number(v, digits=2)),
            loss=maybe(p.recent_loss_ratio, lambda v: loc.percent(v, digits=1)),
            jitter=maybe(p.jitter_seconds, loc.milliseconds),
            rtt=maybe(p.rtt_seconds, loc.milliseconds),
        )
        out.append(
            f'<rect class="quality {band}" x="{x(p.t_seconds):.1f}" y="6" '
            f'width="{w(p.t_seconds, p.t_seconds + BUCKET_SECONDS):.1f}" height="16" '
            f'fill="{BAND_FILLS[band]}"><title>{_e(tip)}</title></rect>'
        )
    for s in (s for s in report.speech if s.role == role):
        tip = loc.gettext(N_("speech {start}–{end}")).format(
            start=clock_text(s.start_seconds), end=clock_text(s.end_seconds)
        )
        out.append(
            f'<rect class="speech" x="{x(s.start_seconds):.1f}" y="34" '
            f'width="{w(s.start_seconds, s.end_seconds):.1f}" height="10" '
            f'fill="{SPEECH_COLOUR}"><title>{_e(tip)}</title></rect>'
        )
    for d in (d for d in report.dropouts if d.role == role):
        template = (
            N_("dropout of {length} at {at} while speaking")
            if d.in_speech
            else N_("dropout of {length} at {at}")
        )
        tip = loc.gettext(template).format(
            length=loc.seconds(d.duration_seconds, digits=2), at=clock_text(d.t_seconds)
        )
        cx = x(d.t_seconds)
        out.append(
            f'<g class="dropout"><title>{_e(tip)}</title>'
            f'<line x1="{cx:.1f}" y1="2" x2="{cx:.1f}" y2="50" stroke="{DROPOUT_COLOUR}" '
            f'stroke-width="2"/><path d="M{cx - 5:.1f} 0 L{cx + 5:.1f} 0 L{cx:.1f} 7 Z" '
            f'fill="{DROPOUT_COLOUR}"/></g>'
        )
    end = report.ended_at or report.checkpoint_at
    for warn in (v for v in report.warnings if v.role in (role, None)):
        t0 = warn.raised_at - report.started_at
        t1 = (warn.cleared_at or end) - report.started_at
        tip = loc.gettext(N_("warning: {kind} ({severity}), {start}–{end}")).format(
            kind=named(loc, WARNING_NAMES, warn.kind, ""),
            severity=named(loc, SEVERITY_NAMES, warn.severity, ""),
            start=clock_text(t0),
            end=clock_text(t1),
        )
        out.append(
            f'<g class="warning"><title>{_e(tip)}</title>'
            f'<rect x="{x(t0):.1f}" y="48" width="{w(t0, t1):.1f}" height="5" '
            f'fill="{WARNING_COLOUR}"/><circle cx="{x(t0):.1f}" cy="50.5" r="4" '
            f'fill="{WARNING_COLOUR}"/></g>'
        )
    return "".join(out)


def _video_row(
    report: SessionReport, role: str, loc: Localizer, x: Scale, w: Callable[..., float]
) -> str:
    """The role's picture per 5 s bucket, under its audio rows."""
    label = _e(loc.gettext(ROW_LABELS["video"]))
    out = [f'<g class="video"><text x="4" y="67" class="row">{label}</text>']
    for p in (p for p in report.points if p.role == role and p.video_frozen is not None):
        band = video_band(p)
        if p.video_fps_min is None:
            template = N_("{start}–{end}: picture {quality}")
        elif p.video_frozen:
            template = N_("{start}–{end}: picture {quality}; {fps} fps at the lowest, froze")
        else:
            template = N_("{start}–{end}: picture {quality}; {fps} fps at the lowest")
        tip = loc.gettext(template).format(
            start=clock_text(p.t_seconds),
            end=clock_text(p.t_seconds + BUCKET_SECONDS),
            quality=loc.gettext(PICTURE_NAMES[band]),
            fps=maybe(p.video_fps_min, loc.number),
        )
        out.append(
            f'<rect class="picture {band}" x="{x(p.t_seconds):.1f}" y="58" '
            f'width="{w(p.t_seconds, p.t_seconds + BUCKET_SECONDS):.1f}" height="12" '
            f'fill="{PICTURE_FILLS[band]}"><title>{_e(tip)}</title></rect>'
        )
    out.append("</g>")
    return "".join(out)


def _axis(span: float, top: float, x: Scale) -> str:
    step = next((s for s in TICK_STEPS_SECONDS if span / s <= 10), TICK_STEPS_SECONDS[-1])
    parts = [
        f'<g class="axis"><line x1="{LABEL_WIDTH}" y1="{top + 2}" x2="{WIDTH - RIGHT_MARGIN}" '
        f'y2="{top + 2}" class="tick"/>'
    ]
    t = 0.0
    while t <= span + 1e-9:
        parts.append(
            f'<line x1="{x(t):.1f}" y1="{top}" x2="{x(t):.1f}" y2="{top + 6}" class="tick"/>'
            f'<text x="{x(t):.1f}" y="{top + 20}" text-anchor="middle">{_e(clock_text(t))}</text>'
        )
        t += step
    parts.append("</g>")
    return "".join(parts)
