"""The compiled message catalogs (`locales/<locale>/LC_MESSAGES/qualmon.mo`), loaded once."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

from babel import Locale
from babel.support import NullTranslations, Translations

from .locales import LOCALES, SOURCE_LOCALE
from .localizer import Localizer

DOMAIN = "qualmon"
LOCALES_DIR = Path(__file__).resolve().parent / "locales"
"Where the .po sources and their compiled .mo files live (package data)."


class CatalogError(RuntimeError):
    """A catalog qualmon needs cannot be loaded; the message says how to make it."""


def catalog_path(locale: str, directory: Path = LOCALES_DIR, suffix: str = ".mo") -> Path:
    return directory / locale / "LC_MESSAGES" / (DOMAIN + suffix)


def load_localizer(locale: str, directory: Path = LOCALES_DIR) -> Localizer:
    """One locale's compiled catalog; CatalogError if it is missing or unreadable.

    Never English in its place: a therapist who asked for German must not silently get
    English because a build step was skipped.
    """
    formats = Locale.parse(locale)
    if locale == SOURCE_LOCALE:
        return Localizer(locale, NullTranslations(), formats)
    path = catalog_path(locale, directory)
    try:
        with path.open("rb") as file:
            translations = Translations(file, domain=DOMAIN)
    except OSError as exc:
        raise CatalogError(
            f"message catalog {path} cannot be read ({exc.strerror or exc}): compile the "
            "catalogs with `make catalogs` (or `python -m qualmon.l10n.compile`)"
        ) from None
    return Localizer(locale, translations, formats)


class Catalogs:
    """A Localizer per locale qualmon speaks."""

    def __init__(self, localizers: Mapping[str, Localizer]) -> None:
        if not localizers:
            raise CatalogError("no catalogs")
        self._by_locale = dict(localizers)

    @property
    def locales(self) -> tuple[str, ...]:
        return tuple(self._by_locale)

    @property
    def localizers(self) -> Mapping[str, Localizer]:
        return dict(self._by_locale)

    def __contains__(self, locale: object) -> bool:
        return locale in self._by_locale

    def get(self, locale: str) -> Localizer:
        """The locale's Localizer; KeyError for one without a catalog (negotiate first)."""
        return self._by_locale[locale]


def load_catalogs(locales: Collection[str] = LOCALES, directory: Path | None = None) -> Catalogs:
    """Every locale's catalog (from LOCALES_DIR unless `directory`), or CatalogError naming
    the first that is missing."""
    where = directory or LOCALES_DIR
    return Catalogs({locale: load_localizer(locale, where) for locale in locales})


def english() -> Localizer:
    """The source language, which needs no catalog (for outputs that have no reader's wish:
    the terminal, tests of the English wording)."""
    return load_localizer(SOURCE_LOCALE)
