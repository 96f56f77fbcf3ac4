"""One locale's words and formats: its catalog's gettext, and Babel's numbers and dates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from babel import Locale
from babel.dates import format_datetime
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations
from babel.units import format_unit

from .locales import language_tag

_INTEGER_DIGIT = re.compile(r"0(?![0-9])")


@dataclass(frozen=True)
class Localizer:
    """Everything an output needs to speak one locale; the English one has no catalog."""

    locale: str
    "The catalog's name: `de`, `pt_BR`."
    translations: NullTranslations
    formats: Locale
    "Whose CLDR data numbers, units and dates follow (normally the same locale)."

    @property
    def tag(self) -> str:
        """BCP 47 (`pt-BR`): the `lang` attribute and Content-Language."""
        return language_tag(self.locale)

    # -- words -------------------------------------------------------------------------

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The form for `n` by the catalog's plural rule (French and Portuguese say 0 and 1
        alike, English and German do not)."""
        return self.translations.ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        """A short word whose translation depends on where it stands (`context`)."""
        return str(self.translations.pgettext(context, message))

    # -- numbers, units and dates ------------------------------------------------------

    def number(self, value: float, *, digits: int = 0) -> str:
        """A decimal with exactly `digits` fraction digits: 4.30, 4,30."""
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=self.formats)

    def percent(self, ratio: float, *, digits: int = 0) -> str:
        """A ratio as the locale writes percentages: 1.5%, 1,5 %, 1,5 %."""
        pattern = self.formats.percent_formats[None].pattern
        if digits:
            pattern = _INTEGER_DIGIT.sub("0." + "0" * digits, pattern, count=1)
        return format_percent(ratio, format=pattern, locale=self.formats)

    def milliseconds(self, seconds: float, *, digits: int = 1) -> str:
        """Seconds shown as milliseconds with their unit: 3.0 ms."""
        return self._unit(seconds * 1000, "duration-millisecond", digits=digits)

    def seconds(self, seconds: float, *, digits: int = 1) -> str:
        """Seconds with their short unit: 0.9 sec, 0,9 s."""
        return self._unit(seconds, "duration-second", digits=digits)

    def duration(self, seconds: float) -> str:
        """A session's length in words: 45 seconds, 50 minutes (whole ones, plural right)."""
        if seconds < 90:
            return format_unit(
                round(seconds), "duration-second", length="long", locale=self.formats
            )
        minutes = round(seconds / 60)
        return format_unit(minutes, "duration-minute", length="long", locale=self.formats)

    def datetime(self, epoch_seconds: float) -> str:
        """An instant in UTC, the zone named: 25. November 2026, 13:31:57 UTC."""
        when = datetime.fromtimestamp(epoch_seconds, UTC)
        return format_datetime(when, format="long", tzinfo=UTC, locale=self.formats)

    def _unit(self, value: float, unit: str, *, digits: int) -> str:
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_unit(value, unit, length="short", format=pattern, locale=self.formats)
