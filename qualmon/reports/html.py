"""The HTML session report: a self-contained page with a server-rendered SVG timeline."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

from .model import (
    BUCKET_SECONDS,
    QualityBand,
    SessionReport,
    VideoBand,
    clinician_summary,
    quality_band,
    video_band,
)

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

# Inline only: the page must work offline and under a CSP that forbids every fetch.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def clock_text(seconds: float) -> str:
    """Session time as m:ss or h:mm:ss."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%d %b %Y, %H:%M:%S UTC")


def _num(value: float | None, unit: str = "", *, scale: float = 1.0, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value * scale:.{digits}f}{unit}"


def _pct(value: float | None) -> str:
    return _num(value, " %", scale=100.0, digits=1)


def render_timeline_svg(report: SessionReport) -> str:
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
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-labelledby="tl-title tl-desc">',
        '<title id="tl-title">Session timeline</title>',
        '<desc id="tl-desc">For each participant: network quality in 5-second bands '
        "(green good, amber fair, red poor, grey no data), speech activity in blue, "
        "dropouts as dark red marks and warnings in orange; for a participant who sent "
        "video, the picture in 5-second bands (green smooth, amber under 15 frames a "
        "second, red frozen).</desc>",
    ]
    top = 4
    for role in report.roles:
        out.append(f'<g class="lane" data-role="{_e(role)}" transform="translate(0 {top})">')
        out.append(
            f'<text x="4" y="16" class="role">{_e(role)}</text>'
            '<text x="4" y="31" class="row">network</text>'
            '<text x="4" y="45" class="row">speech</text>'
        )
        out.append(f'<rect x="{LABEL_WIDTH}" y="4" width="{plot}" height="44" class="track"/>')
        for p in (p for p in report.points if p.role == role):
            band = quality_band(p)
            tip = (
                f"{clock_text(p.t_seconds)}–{clock_text(p.t_seconds + BUCKET_SECONDS)}: "
                f"{band}; MOS {_num(p.mos, digits=2)}, loss {_pct(p.recent_loss_ratio)}, "
                f"jitter {_num(p.jitter_seconds, ' ms', scale=1000)}, "
                f"RTT {_num(p.rtt_seconds, ' ms', scale=1000)}"
                + (", no media" if p.stalled else "")
            )
            out.append(
                f'<rect class="quality {band}" x="{x(p.t_seconds):.1f}" y="6" '
                f'width="{w(p.t_seconds, p.t_seconds + BUCKET_SECONDS):.1f}" height="16" '
                f'fill="{BAND_COLOURS[band]}"><title>{_e(tip)}</title></rect>'
            )
        for s in (s for s in report.speech if s.role == role):
            tip = f"speech {clock_text(s.start_seconds)}–{clock_text(s.end_seconds)}"
            out.append(
                f'<rect class="speech" x="{x(s.start_seconds):.1f}" y="34" '
                f'width="{w(s.start_seconds, s.end_seconds):.1f}" height="10" '
                f'fill="{SPEECH_COLOUR}"><title>{_e(tip)}</title></rect>'
            )
        for d in (d for d in report.dropouts if d.role == role):
            where = " while speaking" if d.in_speech else ""
            tip = f"dropout of {d.duration_seconds:.2f} s at {clock_text(d.t_seconds)}{where}"
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
            tip = f"warning {warn.kind} ({warn.severity}) {clock_text(t0)}–{clock_text(t1)}"
            out.append(
                f'<g class="warning"><title>{_e(tip)}</title>'
                f'<rect x="{x(t0):.1f}" y="48" width="{w(t0, t1):.1f}" height="5" '
                f'fill="{WARNING_COLOUR}"/><circle cx="{x(t0):.1f}" cy="50.5" r="4" '
                f'fill="{WARNING_COLOUR}"/></g>'
            )
        if role in with_video:
            out.append(_video_row(report, role, x, w))
        out.append("</g>")
        top += LANE_HEIGHT + LANE_GAP + (VIDEO_ROW_HEIGHT if role in with_video else 0)
    out.append(_axis(span, lanes_height, x))
    out.append("</svg>")
    return "".join(out)


def _video_row(report: SessionReport, role: str, x: Any, w: Any) -> str:
    """The role's picture per 5 s bucket, under its audio rows."""
    out = ['<g class="video"><text x="4" y="67" class="row">video</text>']
    for p in (p for p in report.points if p.role == role and p.video_frozen is not None):
        band = video_band(p)
        fps = f"{p.video_fps_min:.0f} fps at the lowest" if p.video_fps_min is not None else "–"
        tip = (
            f"{clock_text(p.t_seconds)}–{clock_text(p.t_seconds + BUCKET_SECONDS)}: "
            f"picture {band}; {fps}" + (", froze" if p.video_frozen else "")
        )
        out.append(
            f'<rect class="picture {band}" x="{x(p.t_seconds):.1f}" y="58" '
            f'width="{w(p.t_seconds, p.t_seconds + BUCKET_SECONDS):.1f}" height="12" '
            f'fill="{VIDEO_COLOURS[band]}"><title>{_e(tip)}</title></rect>'
        )
    out.append("</g>")
    return "".join(out)


def _axis(span: float, top: float, x: Any) -> str:
    step = next((s for s in TICK_STEPS_SECONDS if span / s <= 10), TICK_STEPS_SECONDS[-1])
    parts = [
        f'<g class="axis"><line x1="{LABEL_WIDTH}" y1="{top + 2}" x2="{WIDTH - RIGHT_MARGIN}" '
        f'y2="{top + 2}" stroke="#555"/>'
    ]
    t = 0.0
    while t <= span + 1e-9:
        parts.append(
            f'<line x1="{x(t):.1f}" y1="{top}" x2="{x(t):.1f}" y2="{top + 6}" stroke="#555"/>'
            f'<text x="{x(t):.1f}" y="{top + 20}" text-anchor="middle">{_e(clock_text(t))}</text>'
        )
        t += step
    parts.append("</g>")
    return "".join(parts)


def _leg_rows(report: SessionReport) -> str:
    rows = []
    for leg in report.legs:
        cells = (
            leg.role,
            f"{leg.packets_received} / {leg.packets_lost} ({_pct(leg.loss_ratio)})",
            f"{_num(leg.jitter_p50_seconds, ' ms', scale=1000)} / "
            f"{_num(leg.jitter_p95_seconds, ' ms', scale=1000)}",
            f"{_num(leg.rtt_p50_seconds, ' ms', scale=1000)} / "
            f"{_num(leg.rtt_p95_seconds, ' ms', scale=1000)}",
            f"{_num(leg.mos_min, digits=2)} / {_num(leg.mos_mean, digits=2)}",
            f"{leg.dropouts} ({leg.dropout_seconds:.1f} s)",
            f"{leg.dropouts_in_speech} ({leg.dropout_in_speech_seconds:.1f} s)",
            clock_text(leg.speech_seconds),
            str(leg.reconnects),
            leg.end_reason or "live",
        )
        rows.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    return "".join(rows)


def _turn_rows(report: SessionReport) -> str:
    turns = report.turns
    rows = []
    for role in report.roles:
        cells = (
            role,
            _pct((turns.get("talk_share") or {}).get(role)),
            str((turns.get("turn_count") or {}).get(role, "–")),
            _num((turns.get("mean_turn_seconds") or {}).get(role), " s"),
            str((turns.get("interruptions") or {}).get(role, "–")),
        )
        rows.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    return "".join(rows)


def _warning_rows(report: SessionReport) -> str:
    rows = []
    for warn in report.warnings:
        cells = (
            warn.kind,
            warn.severity,
            warn.role or "session",
            clock_text(warn.raised_at - report.started_at),
            clock_text(warn.cleared_at - report.started_at) if warn.cleared_at else "not cleared",
            _num(warn.value, digits=3),
            _num(warn.threshold, digits=3),
        )
        rows.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    return "".join(rows)


STYLE = """
body{font:15px/1.45 system-ui,sans-serif;color:#1b1b1b;margin:24px;max-width:1000px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:24px 0 8px}
.meta{color:#444;margin:0 0 12px} .summary{font-size:17px;background:#f3f6fa;
padding:12px 16px;border-left:4px solid #3f6fb5}
table{border-collapse:collapse;font-size:14px} th,td{padding:4px 10px;text-align:left;
border-bottom:1px solid #ddd} th{background:#f5f5f5}
svg text{font:12px system-ui,sans-serif;fill:#333} svg .role{font-weight:600;font-size:13px}
svg .row{fill:#666;font-size:11px} svg .track{fill:#fafafa;stroke:#e0e0e0}
.legend span{display:inline-block;margin-right:14px} .sw{display:inline-block;width:12px;
height:12px;margin-right:4px;vertical-align:-1px}
footer{margin-top:28px;color:#666;font-size:13px}
"""


def render_report_html(report: SessionReport) -> str:
    """The whole page; every interpolated string is escaped."""
    title = f"Session report: {report.session_id}"
    ending = report.end_reason or "still running"
    legend = "".join(
        f'<span><i class="sw" style="background:{colour}"></i>{_e(label)}</span>'
        for label, colour in (
            ("good", BAND_COLOURS["good"]),
            ("fair", BAND_COLOURS["fair"]),
            ("poor / no media", BAND_COLOURS["poor"]),
            ("no data", BAND_COLOURS["none"]),
            ("speech", SPEECH_COLOUR),
            ("dropout", DROPOUT_COLOUR),
            ("warning", WARNING_COLOUR),
        )
    )
    warnings = (
        "<table><tr><th>warning</th><th>severity</th><th>role</th><th>raised</th>"
        f"<th>cleared</th><th>value</th><th>threshold</th></tr>{_warning_rows(report)}</table>"
        if report.warnings
        else "<p>No warnings were raised.</p>"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer"><link rel="icon" href="data:,">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f'<p class="meta">Started {_e(_when(report.started_at))}; '
        f"{_e('ended ' + _when(report.ended_at) if report.ended_at else 'not ended')} "
        f"({_e(ending)}); duration {_e(clock_text(report.duration_seconds))}.</p>"
        f'<p class="summary">{_e(clinician_summary(report))}</p>'
        f"<h2>Timeline</h2><figure>{render_timeline_svg(report)}"
        f'<figcaption class="legend">{legend}</figcaption></figure>'
        "<h2>Network and audio, per participant</h2><table><tr><th>role</th>"
        "<th>packets received / lost</th><th>jitter p50 / p95</th><th>RTT p50 / p95</th>"
        "<th>MOS min / mean</th><th>dropouts</th><th>in speech</th><th>speech (m:ss)</th>"
        f"<th>reconnects</th><th>ended</th></tr>{_leg_rows(report)}</table>"
        "<h2>Conversation</h2><table><tr><th>role</th><th>talk share</th><th>turns</th>"
        f"<th>mean turn</th><th>interruptions</th></tr>{_turn_rows(report)}</table>"
        f"<h2>Warnings</h2>{warnings}"
        f"<footer>Saved {_e(_when(report.checkpoint_at))} by qualmon. Measured numbers only: "
        "no audio, addresses or tokens are stored.</footer></body></html>"
    )
