"""The pseudo-locale proves no therapist-facing text bypasses the catalogs: the report page,
the clinician summary, the widget page and every warning text, rendered in it, show no
English outside ⟦…⟧ (numbers and dates come from Babel in another script)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from qualmon.core.warnings import DEFAULT_RULES, WarningEvent
from qualmon.reports.document import report_json
from qualmon.reports.html import render_report_html
from qualmon.reports.model import DropoutMark, SessionReport, WarningRecord
from qualmon.reports.summary import clinician_summary
from qualmon.service.views import warning_json
from qualmon.service.widget_page import render_widget

from ..reportdata import checkpoint
from .pseudo import CLOSE, OPEN, english_outside_brackets, pseudo_localizer, visible_texts

LOC = pseudo_localizer()
SESSION = "42"
"A session id without letters: ids are data, shown as they are."


def stored(**overrides: object) -> SessionReport:
    """A report that shows every part of the page: ended, both roles, video on the client,
    dropouts in and out of speech, warnings of every kind and severity, one still open."""
    base = checkpoint(SESSION, started_at=1_790_000_000.0, ended_at=1_790_000_600.0, seconds=600)
    points = tuple(
        replace(p, video_fps_min=12.0 if i % 3 else 30.0, video_frozen=i % 5 == 0, stalled=i == 2)
        if p.role == "client"
        else p
        for i, p in enumerate(base.points)
    )
    start = base.started_at
    warnings = tuple(
        WarningRecord(
            rule.kind,
            rule.severity,
            None if rule.scope == "session" else "client",
            start + 10 * n,
            None if n == 0 else start + 10 * n + 5,
            0.5,
            rule.threshold,
        )
        for n, rule in enumerate(DEFAULT_RULES)
    )
    dropouts = (*base.dropouts, DropoutMark("therapist", 30.0, 0.2, None))
    report = SessionReport(
        session_id=SESSION,
        started_at=start,
        checkpoint_at=base.checkpoint_at,
        ended_at=base.ended_at,
        end_reason="ended",
        roles=base.roles,
        legs=tuple(replace(leg, end_reason="closed") for leg in base.legs),
        turns=base.turns,
        points=points,
        speech=base.speech,
        dropouts=dropouts,
        warnings=warnings,
    )
    return replace(report, **overrides)  # type: ignore[arg-type]


def assert_translated(texts: list[str], where: str) -> None:
    leaks = {text: english_outside_brackets(text) for text in texts}
    leaks = {text: words for text, words in leaks.items() if words}
    assert leaks == {}, f"{where}: English outside the catalog: {leaks}"


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"ended_at": None, "end_reason": None},
        {"end_reason": "interrupted", "warnings": ()},
        {"end_reason": "lost", "dropouts": ()},
        {"end_reason": "shutdown"},
    ],
)
def test_the_report_page_shows_only_translated_words(changes: dict[str, object]) -> None:
    """Headings, tables, legend, tooltips, the timeline's title, description and tables,
    the summary and the footer; `lang` is the catalog's."""
    page = render_report_html(stored(**changes), LOC)
    assert '<html lang="qps">' in page
    found = visible_texts(page)
    assert len(found.texts) > 40
    assert_translated(found.texts, "report.html")


def test_the_clinician_summary_is_translated_whatever_it_says() -> None:
    """Every sentence the summary may say: endings, shares, dropouts (one and many), pictures,
    warnings; in the report JSON too."""
    variants = [
        stored(),
        stored(end_reason="lost"),
        stored(end_reason=None, ended_at=None),
        stored(warnings=stored().warnings[:1]),
        stored(legs=tuple(replace(leg, dropouts_in_speech=1) for leg in stored().legs)),
        stored(legs=tuple(replace(leg, dropouts_in_speech=0) for leg in stored().legs)),
        stored(points=()),
    ]
    summaries = [clinician_summary(report, LOC) for report in variants]
    assert_translated(summaries, "summary")
    assert all(s.count(OPEN) >= 2 for s in summaries)
    assert report_json(variants[0], LOC)["summary"] == summaries[0]


def test_every_warning_text_is_translated() -> None:
    """Each kind, raised and cleared, about the client, the therapist's own side, or the
    session, as the event streams and the webhook send it."""
    texts = []
    for rule in DEFAULT_RULES:
        for role in ("client", "therapist", None):
            for kind in ("raised", "cleared"):
                event = WarningEvent(kind, rule.kind, rule.severity, role, 1.0, 0.5, 0.0, "", "")  # type: ignore[arg-type]
                doc = warning_json(event, LOC)
                assert doc["locale"] == "qps"
                texts.append(doc["therapist_text"])
                assert doc["therapist_text"].startswith(OPEN)
                assert doc["therapist_text"].endswith(CLOSE)
    assert_translated(texts, "warning texts")


def test_the_widget_page_and_its_script_words_are_translated() -> None:
    """The page's own words, what it says to screen readers, and every word its script may
    show (carried as JSON in the page)."""
    page = render_widget(LOC, SESSION)
    assert '<html lang="qps">' in page
    found = visible_texts(page)
    assert_translated(found.texts, "widget")
    (words,) = [json.loads(data) for attrs, data in found.scripts if attrs.get("id") == "texts"]
    flat = [v for v in words.values() if isinstance(v, str)] + list(words["severity"].values())
    assert len(flat) > 10
    assert all(w.startswith(OPEN) and w.endswith(CLOSE) for w in flat), flat
