"""The timeline in words: the picture's text alternative, for screen readers and keyboards
(tooltips need a mouse). Runs of equal 5 s buckets become one row."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from html import escape

from ..core.msgid import N_
from ..l10n.localizer import Localizer
from .labels import PICTURE_NAMES, QUALITY_NAMES, ROLE_NAMES, named
from .model import BUCKET_SECONDS, SessionReport, TimelinePoint, quality_band, video_band
from .timeline_svg import clock_text

Stretch = tuple[str, float, float, str]
"(role, from seconds, to seconds, band)."


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def stretches(
    report: SessionReport, band_of: Callable[[TimelinePoint], str], points: Iterable[TimelinePoint]
) -> list[Stretch]:
    """Consecutive buckets of a role with the same band, merged; cut at the session's end."""
    out: list[Stretch] = []
    end = report.duration_seconds
    for p in sorted(points, key=lambda p: (report.roles.index(p.role), p.t_seconds)):
        band = band_of(p)
        stop = min(end, p.t_seconds + BUCKET_SECONDS)
        last = out[-1] if out else None
        if last is not None and last[0] == p.role and last[3] == band and last[2] >= p.t_seconds:
            out[-1] = (p.role, last[1], max(last[2], stop), band)
        else:
            out.append((p.role, p.t_seconds, stop, band))
    return out


def _table(caption: str, headers: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    body = "".join(
        f'<tr><th scope="row">{_e(row[0])}</th>'
        + "".join(f"<td>{_e(c)}</td>" for c in row[1:])
        + "</tr>"
        for row in rows
    )
    return (
        f"<table><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def render_timeline_table(report: SessionReport, loc: Localizer) -> str:
    """Network quality (and the picture, where there was video) over time, and each
    dropout, as tables inside a <details> the keyboard opens."""
    reported = [p for p in report.points if p.role in report.roles]
    who = loc.gettext(N_("Participant"))
    since, until = loc.gettext(N_("From")), loc.gettext(N_("To"))
    network = [
        (
            named(loc, ROLE_NAMES, role, ""),
            clock_text(t0),
            clock_text(t1),
            loc.gettext(QUALITY_NAMES[band]),
        )
        for role, t0, t1, band in stretches(report, quality_band, reported)
    ]
    parts = [
        _table(
            loc.gettext(N_("Network quality over time")),
            (who, since, until, loc.gettext(N_("Network quality"))),
            network,
        )
    ]
    video = [p for p in reported if p.video_frozen is not None]
    if video:
        rows = [
            (
                named(loc, ROLE_NAMES, role, ""),
                clock_text(t0),
                clock_text(t1),
                loc.gettext(PICTURE_NAMES[band]),
            )
            for role, t0, t1, band in stretches(report, video_band, video)
        ]
        parts.append(
            _table(
                loc.gettext(N_("Picture over time")),
                (who, since, until, loc.gettext(N_("Picture"))),
                rows,
            )
        )
    if report.dropouts:
        yes, no, unknown = (loc.gettext(w) for w in (N_("yes"), N_("no"), N_("not known")))
        dropouts = [
            (
                named(loc, ROLE_NAMES, d.role, ""),
                clock_text(d.t_seconds),
                loc.seconds(d.duration_seconds, digits=2),
                unknown if d.in_speech is None else yes if d.in_speech else no,
            )
            for d in sorted(report.dropouts, key=lambda d: d.t_seconds)
        ]
        parts.append(
            _table(
                loc.gettext(N_("Dropouts")),
                (
                    who,
                    loc.gettext(N_("At")),
                    loc.gettext(N_("Length")),
                    loc.gettext(N_("While speaking")),
                ),
                dropouts,
            )
        )
    summary = loc.gettext(N_("The timeline as tables"))
    return f'<details id="timeline-text"><summary>{_e(summary)}</summary>{"".join(parts)}</details>'
