"""Numbers, units, dates and plurals as each locale writes them (Babel's CLDR data and the
catalogs' plural rules)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qualmon.l10n.catalogs import load_catalogs
from qualmon.reports.summary import clinician_summary

from .test_pseudo import stored

CATALOGS = load_catalogs()
NOV_25 = 1_795_613_517.0
"2026-11-25T13:31:57Z."


@pytest.mark.parametrize(
    ("locale", "percent", "ms", "mos", "date"),
    [
        ("en", "1.5%", "3.0 ms", "4.30", "November 25, 2026, 1:31:57\u202fPM UTC"),
        ("de", "1,5\u00a0%", "3,0 ms", "4,30", "25. November 2026, 13:31:57 UTC"),
        ("fr", "1,5\u00a0%", "3,0\u202fms", "4,30", "25 novembre 2026, 13:31:57 TU"),
        ("es", "1,5\u00a0%", "3,0 ms", "4,30", "25 de noviembre de 2026, 13:31:57 UTC"),
        ("pt_BR", "1,5%", "3,0 ms", "4,30", "25 de novembro de 2026 13:31:57 UTC"),
        ("nl", "1,5%", "3,0 ms", "4,30", "25 november 2026, 13:31:57 UTC"),
    ],
)
def test_formats_follow_the_locale(locale: str, percent: str, ms: str, mos: str, date: str) -> None:
    loc = CATALOGS.get(locale)
    assert loc.percent(0.015, digits=1) == percent
    assert loc.milliseconds(0.003) == ms
    assert loc.number(4.3, digits=2) == mos
    assert loc.datetime(NOV_25) == date
    assert loc.number(150210) in ("150,210", "150.210", "150\u202f210")


def test_plurals_follow_each_languages_rule() -> None:
    """French and Portuguese count 0 and 1 as one; English, German and Dutch count 0 as
    many; Babel's long unit names agree with the number."""
    said = {
        locale: CATALOGS.get(locale).ngettext(
            "{n} dropout while the client was speaking.",
            "{n} dropouts while the client was speaking.",
            0,
        )
        for locale in ("en", "de", "fr", "pt_BR", "nl")
    }
    assert said["en"] == "{n} dropouts while the client was speaking."
    assert said["fr"] == "{n} coupure pendant que le ou la patient·e parlait."
    assert said["pt_BR"] == "{n} queda enquanto o(a) paciente falava."
    assert said["nl"] == "{n} onderbrekingen terwijl de cliënt sprak."
    de = CATALOGS.get("de")
    assert de.duration(60) == "60 Sekunden" and de.duration(60 * 60) == "60 Minuten"
    assert CATALOGS.get("en").duration(1) == "1 second"


def test_the_summary_in_german_uses_german_numbers() -> None:
    summary = clinician_summary(stored(), CATALOGS.get("de"))
    assert summary.startswith("Sitzung von 10 Minuten; sie wurde regulär beendet.")
    assert "Gesprächsanteil Therapeut:in 59\u00a0%; Gesprächsanteil Klient:in 41\u00a0%." in summary


def test_under_one_percent_is_not_rounded_to_nothing() -> None:
    """A warning active for 3 s of a 10-minute session: "unter 1 %", not "0 %"."""
    base = stored()
    (first, *_) = base.warnings
    brief = replace(first, raised_at=base.started_at + 10, cleared_at=base.started_at + 13)
    summary = clinician_summary(replace(base, warnings=(brief,)), CATALOGS.get("de"))
    assert summary.endswith("1 Hinweis ausgelöst, aktiv während unter 1\u00a0% der Sitzung.")
