"""Which locales qualmon speaks, and how a reader's wishes become one of them."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from babel.core import parse_locale

LOCALES: tuple[str, ...] = ("en", "de", "fr", "es", "pt_BR", "nl")
"Every locale with a catalog (en is the source language: message ids are English)."
SOURCE_LOCALE = "en"
DEFAULT_LOCALE = "en"
"QUALMON_LOCALE's default."
MAX_TAG_CHARS = 35
"RFC 5646 advises implementations to take language tags of at least 35 characters."
MAX_ACCEPT_LANGUAGE_CHARS = 1000
MAX_ACCEPT_LANGUAGE_ITEMS = 32
"A browser sends a handful; anything longer is cut rather than parsed at length."

_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")
_QUALITY = re.compile(r"q=(0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)")


def is_language_tag(text: str) -> bool:
    """A BCP 47 tag (`de`, `pt-BR`) or a POSIX-style name (`pt_BR`), as far as locales go."""
    if len(text) > MAX_TAG_CHARS or _TAG.fullmatch(text) is None:
        return False
    try:
        parse_locale(text.replace("-", "_"))
    except ValueError:
        return False
    return True


def _language_and_region(tag: str) -> tuple[str, str | None]:
    # (language, territory, script, variant[, modifier]): the first two are what counts.
    parts = parse_locale(tag.replace("-", "_"))
    language, region = parts[0], parts[1]
    return language.lower(), region.upper() if region else None


def exact_locale(tag: str, available: Collection[str] = LOCALES) -> str | None:
    """The available locale `tag` names exactly (case, and `-` or `_`, aside), else None."""
    if not is_language_tag(tag):
        return None
    wanted = _language_and_region(tag)
    return next((a for a in available if _language_and_region(a) == wanted), None)


def match_locale(tag: str, available: Collection[str] = LOCALES) -> str | None:
    """The available locale a language tag asks for: the same language and region, else the
    same language (`de-AT` → de, `pt` → pt_BR, `en-GB` → en); None if none speaks it."""
    exact = exact_locale(tag, available)
    if exact is not None or not is_language_tag(tag):
        return exact
    language, _ = _language_and_region(tag)
    same = [a for a in available if _language_and_region(a)[0] == language]
    # The one without a region first (the language's general catalog), else the first.
    return min(same, key=lambda a: _language_and_region(a)[1] is not None, default=None)


def accept_language(header: str) -> list[str]:
    """The tags of an Accept-Language header, most wanted first (RFC 9110 12.5.4); `*`,
    malformed entries and q=0 left out."""
    weighted: list[tuple[float, int, str]] = []
    items = header[:MAX_ACCEPT_LANGUAGE_CHARS].split(",")[:MAX_ACCEPT_LANGUAGE_ITEMS]
    for index, item in enumerate(items):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip()
        quality = 1.0
        if params:
            found = _QUALITY.fullmatch(params.strip().replace(" ", ""))
            if found is None:
                continue
            quality = float(found[1])
        if quality > 0 and tag != "*" and is_language_tag(tag):
            weighted.append((-quality, index, tag))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate(
    wishes: Iterable[str | None], *, default: str, available: Collection[str] = LOCALES
) -> str:
    """The first wish some catalog speaks (each a tag or None, in order of precedence),
    else `default`."""
    for wish in wishes:
        if wish:
            found = match_locale(wish, available)
            if found is not None:
                return found
    return default


def language_tag(locale: str) -> str:
    """The BCP 47 form of a locale name, for `lang` attributes and Content-Language."""
    return locale.replace("_", "-")
