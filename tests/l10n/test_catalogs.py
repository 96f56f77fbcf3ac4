"""The catalogs are complete and current: every message qualmon shows is in every .po,
translated, not fuzzy, with its placeholders; the template and the compiled files match."""

from __future__ import annotations

import re
import shutil
import tokenize
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from qualmon.config import ConfigError
from qualmon.l10n.catalogs import LOCALES_DIR, CatalogError, catalog_path, load_localizer
from qualmon.l10n.compile import compile_catalogs, mo_bytes
from qualmon.l10n.locales import LOCALES, SOURCE_LOCALE
from qualmon.service.app import create_app

from ..conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = [locale for locale in LOCALES if locale != SOURCE_LOCALE]
PLACEHOLDER = re.compile(r"\{(\w*)[^{}]*\}")
MessageId = str | tuple[str, ...]


def extracted() -> set[MessageId]:
    """What `make pot` extracts from the source now (babel.cfg: every module of qualmon)."""
    found: set[MessageId] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT / "qualmon"), method_map=[("**.py", "python")]
    ):
        found.add(message)
    return found


def read(path: Path) -> Catalog:
    with path.open("rb") as file:
        return read_po(file)


def ids(catalog: Catalog) -> set[MessageId]:
    return {m.id for m in catalog if m.id}


def test_the_template_holds_every_message_the_source_has() -> None:
    """qualmon.pot is current: run `make pot` after changing a therapist-facing text."""
    assert ids(read(LOCALES_DIR / "qualmon.pot")) == extracted()


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_catalog_is_complete(locale: str) -> None:
    """Every message translated (each plural form), none fuzzy, none missing or left over,
    and each translation keeps its message's placeholders."""
    catalog = read(catalog_path(locale, suffix=".po"))
    assert not catalog.fuzzy, f"{locale}: the catalog header is fuzzy"
    assert ids(catalog) == extracted(), f"{locale}: run `make pot` and translate"
    forms = get_plural(locale).num_plurals
    assert catalog.num_plurals == forms
    problems = []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        singular = message.id[0] if isinstance(message.id, tuple) else message.id
        if message.fuzzy:
            problems.append(f"fuzzy: {singular!r}")
        if not all(strings) or (isinstance(message.id, tuple) and len(strings) != forms):
            problems.append(f"untranslated: {singular!r}")
        ids_ = message.id if isinstance(message.id, tuple) else (message.id,)
        wanted = set().union(*(PLACEHOLDER.findall(i) for i in ids_))
        for string in strings:
            if set(PLACEHOLDER.findall(string)) != wanted:
                problems.append(f"placeholders of {singular!r}: {string!r}")
    assert problems == [], f"{locale}:\n" + "\n".join(problems)


@pytest.mark.parametrize("locale", TRANSLATED)
def test_compiled_catalogs_are_what_the_sources_compile_to(locale: str) -> None:
    """The .mo the service loads is the .po as it is now (`make catalogs` after editing)."""
    po = catalog_path(locale, suffix=".po")
    assert catalog_path(locale).read_bytes() == mo_bytes(po)


def test_a_missing_catalog_stops_the_start(tmp_path: Path) -> None:
    """No silent English: a catalog that was not compiled is an error that says how to make
    it, and the app refuses to start (a ConfigError: `qualmon serve` exits 2)."""
    with pytest.raises(CatalogError, match="make catalogs"):
        load_localizer("de", tmp_path)
    shutil.copytree(LOCALES_DIR, tmp_path / "locales")
    (tmp_path / "locales" / "fr" / "LC_MESSAGES" / "qualmon.mo").unlink()
    with pytest.raises(CatalogError, match="fr"):
        load_localizer("fr", tmp_path / "locales")
    assert load_localizer("de", tmp_path / "locales").gettext("Summary") == "Zusammenfassung"
    assert compile_catalogs(tmp_path / "locales") == [
        tmp_path / "locales" / "fr" / "LC_MESSAGES" / "qualmon.mo"
    ]
    assert load_localizer("fr", tmp_path / "locales").gettext("Summary") == "Résumé"


def test_the_app_refuses_to_start_without_its_catalogs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qualmon.l10n.catalogs as catalogs

    monkeypatch.setattr(catalogs, "LOCALES_DIR", tmp_path)  # a tree never compiled
    with pytest.raises(ConfigError, match="cannot be read"):
        create_app(make_settings())


def test_no_message_hides_inside_an_f_string() -> None:
    """Extraction cannot see N_("…") or gettext("…") written inside an f-string's braces."""
    marked = re.compile(r"\b(N_|gettext|ngettext|pgettext)\(\s*['\"]")
    offenders = []
    for path in sorted((ROOT / "qualmon").rglob("*.py")):
        with path.open("rb") as file:
            for token in tokenize.tokenize(file.readline):
                if token.type == tokenize.STRING and re.match(r"^[rbuRBU]*[fF]", token.string):
                    if marked.search(token.string):
                        offenders.append(f"{path.relative_to(ROOT)}:{token.start[0]}")
    assert offenders == []
