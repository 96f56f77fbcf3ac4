"""The HTML session report: a self-contained page in the reader's language, with a
server-rendered SVG timeline and its text alternative."""

from __future__ import annotations

from html import escape

from ..core.msgid import N_
from ..l10n.localizer import Localizer
from .labels import (
    LEG_ENDINGS,
    REPORT_ENDINGS,
    ROLE_NAMES,
    SEVERITY_NAMES,
    STILL_LIVE,
    WARNING_NAMES,
    WHOLE_SESSION,
    named,
)
from .model import SessionReport
from .summary import clinician_summary
from .timeline_svg import (
    BAND_FILLS,
    DROPOUT_COLOUR,
    SPEECH_COLOUR,
    WARNING_COLOUR,
    clock_text,
    maybe,
    render_timeline_svg,
)
from .timeline_table import render_timeline_table

HEADINGS: dict[str, str] = {
    "summary": N_("Summary"),
    "timeline": N_("Timeline"),
    "legs": N_("Network and audio, per participant"),
    "conversation": N_("Conversation"),
    "warnings": N_("Warnings"),
}
NO_WARNINGS = N_("No warnings were raised.")
# Inline only: the page must work offline and under a CSP that forbids every fetch.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _row(cells: tuple[str, ...]) -> str:
    """A table row whose first cell names the participant (a row header)."""
    return (
        f'<tr><th scope="row">{_e(cells[0])}</th>'
        + "".join(f"<td>{_e(c)}</td>" for c in cells[1:])
        + "</tr>"
    )


def _head(loc: Localizer, *names: str) -> str:
    return (
        "<thead><tr>"
        + "".join(f'<th scope="col">{_e(loc.gettext(n))}</th>' for n in names)
        + "</tr></thead>"
    )


def _leg_rows(report: SessionReport, loc: Localizer) -> str:
    rows = []
    ms = loc.milliseconds
    for leg in report.legs:
        cells = (
            named(loc, ROLE_NAMES, leg.role, ""),
            f"{loc.number(leg.packets_received)} / {loc.number(leg.packets_lost)} "
            f"({loc.percent(leg.loss_ratio, digits=1)})",
            f"{maybe(leg.jitter_p50_seconds, ms)} / {maybe(leg.jitter_p95_seconds, ms)}",
            f"{maybe(leg.rtt_p50_seconds, ms)} / {maybe(leg.rtt_p95_seconds, ms)}",
            f"{maybe(leg.mos_min, lambda v: loc.number(v, digits=2))} / "
            f"{maybe(leg.mos_mean, lambda v: loc.number(v, digits=2))}",
            f"{loc.number(leg.dropouts)} ({loc.seconds(leg.dropout_seconds)})",
            f"{loc.number(leg.dropouts_in_speech)} ({loc.seconds(leg.dropout_in_speech_seconds)})",
            clock_text(leg.speech_seconds),
            loc.number(leg.reconnects),
            named(loc, LEG_ENDINGS, leg.end_reason, STILL_LIVE),
        )
        rows.append(_row(cells))
    return "".join(rows)


def _turn_rows(report: SessionReport, loc: Localizer) -> str:
    turns = report.turns
    rows = []

    def count(name: str, role: str) -> str:
        return maybe((turns.get(name) or {}).get(role), loc.number)

    for role in report.roles:
        cells = (
            named(loc, ROLE_NAMES, role, ""),
            maybe((turns.get("talk_share") or {}).get(role), lambda v: loc.percent(v, digits=1)),
            count("turn_count", role),
            maybe((turns.get("mean_turn_seconds") or {}).get(role), loc.seconds),
            count("interruptions", role),
        )
        rows.append(_row(cells))
    return "".join(rows)


def _warning_rows(report: SessionReport, loc: Localizer) -> str:
    rows = []
    for warn in report.warnings:
        cleared = (
            clock_text(warn.cleared_at - report.started_at)
            if warn.cleared_at
            else loc.gettext(N_("not cleared"))
        )
        cells = (
            named(loc, WARNING_NAMES, warn.kind, ""),
            named(loc, SEVERITY_NAMES, warn.severity, ""),
            named(loc, ROLE_NAMES, warn.role, WHOLE_SESSION),
            clock_text(warn.raised_at - report.started_at),
            cleared,
            maybe(warn.value, lambda v: loc.number(v, digits=3)),
            maybe(warn.threshold, lambda v: loc.number(v, digits=3)),
        )
        rows.append(_row(cells))
    return "".join(rows)


STYLE = """
:root{color-scheme:light dark;--fg:#1b1b1b;--muted:#4d4d4d;--bg:#fff;--note:#f3f6fa;
--accent:#3f6fb5;--line:#d6d6d6;--th:#f2f2f2;--track:#fafafa;--axis:#555;--focus:#1b4fbf}
@media (prefers-color-scheme:dark){:root{--fg:#e8e8e8;--muted:#bdbdbd;--bg:#16181c;
--note:#222836;--accent:#8fb0e8;--line:#3c3f46;--th:#23262d;--track:#1f2228;--axis:#aaa;
--focus:#9cc0ff}}
body{font:15px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg);margin:24px;
max-width:1000px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:24px 0 8px}
.meta{color:var(--muted);margin:0 0 12px} .summary{font-size:17px;background:var(--note);
padding:12px 16px;border-left:4px solid var(--accent);margin:0}
table{border-collapse:collapse;font-size:14px;margin:0 0 12px}
th,td{padding:4px 10px;text-align:left;border-bottom:1px solid var(--line)}
td{white-space:nowrap}
thead th{background:var(--th)} tbody th{font-weight:600}
caption{text-align:left;font-weight:600;padding:8px 0 4px}
figure{margin:0;overflow-x:auto}
svg text{font:12px system-ui,sans-serif;fill:var(--fg)} svg .role{font-weight:600;font-size:13px}
svg .row{fill:var(--muted);font-size:11px} svg .track{fill:var(--track);stroke:var(--line)}
svg .tick{stroke:var(--axis)}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;margin-top:6px}
.legend svg{vertical-align:-1px;margin-right:4px}
details{margin:10px 0} summary{cursor:pointer;color:var(--accent);font-weight:600}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
footer{margin-top:28px;color:var(--muted);font-size:13px}
@media (prefers-reduced-motion:reduce){*{scroll-behavior:auto!important}}
"""


def _legend(loc: Localizer) -> str:
    items = (
        (N_("good"), BAND_FILLS["good"]),
        (N_("fair"), BAND_FILLS["fair"]),
        (N_("poor / no media"), BAND_FILLS["poor"]),
        (N_("no data"), BAND_FILLS["none"]),
        (N_("speech"), SPEECH_COLOUR),
        (N_("dropout"), DROPOUT_COLOUR),
        (N_("warning"), WARNING_COLOUR),
    )
    # Swatches are pictures of the fills, hidden from screen readers: the word says it.
    return "".join(
        '<span><svg width="12" height="12" aria-hidden="true" focusable="false">'
        f'<rect width="12" height="12" fill="{fill}"/></svg>{_e(loc.gettext(label))}</span>'
        for label, fill in items
    )


def _meta(report: SessionReport, loc: Localizer) -> str:
    duration = clock_text(report.duration_seconds)
    started = loc.datetime(report.started_at)
    if report.ended_at is None:
        text = loc.gettext(N_("Started {start}; not ended yet; {duration} so far."))
        return text.format(start=started, duration=duration)
    how = named(loc, REPORT_ENDINGS, report.end_reason, STILL_LIVE)
    text = loc.gettext(N_("Started {start}; ended {end} ({how}); duration {duration}."))
    return text.format(start=started, end=loc.datetime(report.ended_at), how=how, duration=duration)


def render_report_html(report: SessionReport, loc: Localizer) -> str:
    """The whole page in `loc`'s language; every interpolated string is escaped."""
    title = loc.gettext(N_("Session report: {session}")).format(session=report.session_id)
    warnings = (
        "<table>"
        + _head(
            loc,
            N_("Warning"),
            N_("Severity"),
            N_("Participant"),
            N_("Raised"),
            N_("Cleared"),
            N_("Value"),
            N_("Threshold"),
        )
        + f"<tbody>{_warning_rows(report, loc)}</tbody></table>"
        if report.warnings
        else f"<p>{_e(loc.gettext(NO_WARNINGS))}</p>"
    )
    saved = loc.gettext(
        N_(
            "Saved {when} by qualmon. Measured numbers only: no audio, addresses or tokens "
            "are stored."
        )
    ).format(when=loc.datetime(report.checkpoint_at))
    heading = {key: _e(loc.gettext(text)) for key, text in HEADINGS.items()}
    return (
        f'<!DOCTYPE html><html lang="{_e(loc.tag)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        '<meta name="referrer" content="no-referrer"><link rel="icon" href="data:,">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{_e(title)}</h1>"
        f'<p class="meta">{_e(_meta(report, loc))}</p></header><main>'
        f"<h2>{heading['summary']}</h2>"
        f'<p class="summary">{_e(clinician_summary(report, loc))}</p>'
        f"<h2>{heading['timeline']}</h2>"
        f"<figure>{render_timeline_svg(report, loc)}"
        f'<figcaption class="legend">{_legend(loc)}</figcaption></figure>'
        f"{render_timeline_table(report, loc)}"
        f"<h2>{heading['legs']}</h2><table>"
        + _head(
            loc,
            N_("Participant"),
            N_("Packets received / lost"),
            N_("Jitter p50 / p95"),
            N_("RTT p50 / p95"),
            N_("MOS min / mean"),
            N_("Dropouts"),
            N_("In speech"),
            N_("Speech (m:ss)"),
            N_("Reconnects"),
            N_("Ended"),
        )
        + f"<tbody>{_leg_rows(report, loc)}</tbody></table>"
        f"<h2>{heading['conversation']}</h2><table>"
        + _head(
            loc,
            N_("Participant"),
            N_("Talk share"),
            N_("Turns"),
            N_("Mean turn"),
            N_("Interruptions"),
        )
        + f"<tbody>{_turn_rows(report, loc)}</tbody></table>"
        f"<h2>{heading['warnings']}</h2>{warnings}"
        f"</main><footer>{_e(saved)}</footer></body></html>"
    )
