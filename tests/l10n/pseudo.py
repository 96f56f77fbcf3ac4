"""A pseudo-locale made in tests, never shipped: every message of the template, accented and
bracketed, so any English a page shows outside ⟦…⟧ bypassed the catalogs."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from qualmon.l10n.catalogs import LOCALES_DIR, Catalogs, load_catalogs
from qualmon.l10n.localizer import Localizer

PSEUDO = "qps"
"A private-use language subtag (BCP 47 reserves qaa–qtz): no real language."
FORMATS = Locale.parse("ru")
"Numbers, units and dates in another script, so what Babel writes is no English either."
OPEN, CLOSE = "⟦", "⟧"
_LETTERS = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "àƀçđéƒĝĥîĵķĺɱñöþɋŕšţûṽŵẋýžÀƁÇĐÉƑĜĤÎĴĶĹṀÑÖÞɊŔŠŢÛṼŴẊÝŽ",
)
_PLACEHOLDER = re.compile(r"(\{\w+\})")
ALLOWED_ASCII_WORDS = {"UTC"}
"What may stand outside brackets in ASCII letters: the time zone Babel names."


def pseudo(text: str) -> str:
    """`text` accented and bracketed; {placeholders} kept as they are."""
    parts = _PLACEHOLDER.split(text)
    return (
        OPEN
        + "".join(p if _PLACEHOLDER.fullmatch(p) else p.translate(_LETTERS) for p in parts)
        + CLOSE
    )


def pseudo_localizer() -> Localizer:
    """The pseudo-locale's Localizer, built from the committed template (qualmon.pot)."""
    with (LOCALES_DIR / "qualmon.pot").open("rb") as file:
        template = read_po(file)
    catalog = Catalog(locale="en", domain="qualmon")
    for message in template:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            catalog.add(message.id, tuple(pseudo(i) for i in message.id))
        else:
            catalog.add(message.id, pseudo(message.id))
    mo = io.BytesIO()
    write_mo(mo, catalog)
    mo.seek(0)
    return Localizer(PSEUDO, Translations(mo, domain="qualmon"), FORMATS)


def catalogs_with_pseudo() -> Catalogs:
    """The shipped catalogs plus the pseudo-locale."""
    return Catalogs({**load_catalogs().localizers, PSEUDO: pseudo_localizer()})


def english_outside_brackets(text: str) -> list[str]:
    """ASCII words (2+ letters) not inside ⟦…⟧: text that bypassed the catalog."""
    outside = re.sub(f"{OPEN}[^{CLOSE}]*{CLOSE}", " ", text)
    return [w for w in re.findall(r"[A-Za-z]{2,}", outside) if w not in ALLOWED_ASCII_WORDS]


class VisibleText(HTMLParser):
    """Every text a reader can meet in a page: element text (not script or style), and the
    attributes browsers show or read out (title, aria-label, alt, placeholder)."""

    SHOWN_ATTRIBUTES = ("title", "aria-label", "alt", "placeholder")

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._in: list[str] = []
        self._attrs: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in.append(tag)
        self._attrs = dict(attrs)
        self.texts += [v for k, v in attrs if k in self.SHOWN_ATTRIBUTES and v]

    def handle_endtag(self, tag: str) -> None:
        if tag in self._in:
            while self._in and self._in.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "script":
            self.scripts.append((self._attrs, data))
        elif not (self._in and self._in[-1] == "style") and data.strip():
            self.texts.append(data.strip())


def visible_texts(page: str) -> VisibleText:
    parser = VisibleText()
    parser.feed(page)
    parser.close()
    return parser
