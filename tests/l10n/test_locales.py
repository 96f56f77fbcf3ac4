"""Which catalog a reader gets: tags, Accept-Language, the order of wishes."""

from __future__ import annotations

import pytest

from qualmon.l10n.locales import (
    LOCALES,
    accept_language,
    exact_locale,
    is_language_tag,
    language_tag,
    match_locale,
    negotiate,
)


@pytest.mark.parametrize(
    ("tag", "locale"),
    [
        ("de", "de"),
        ("DE", "de"),
        ("de-AT", "de"),
        ("de_CH", "de"),
        ("pt", "pt_BR"),
        ("pt-BR", "pt_BR"),
        ("pt-PT", "pt_BR"),
        ("en-GB", "en"),
        ("fr-CA", "fr"),
        ("es-419", "es"),
        ("nl-BE", "nl"),
        ("ja", None),
        ("zh-Hant-TW", None),
    ],
)
def test_a_tag_finds_its_language(tag: str, locale: str | None) -> None:
    """Same language and region first, else the same language (Portuguese is Brazil's)."""
    assert match_locale(tag) == locale


def test_exact_names_a_catalog_and_nothing_near_it() -> None:
    assert exact_locale("pt-br") == "pt_BR" and exact_locale("NL") == "nl"
    assert exact_locale("pt") is None and exact_locale("de-AT") is None


@pytest.mark.parametrize(
    "text", ["", "x", "<script>", "de;q=1", "d e", "de--AT", "ｄｅ", "e\u0301n", "a" * 40, "1de"]
)
def test_what_is_no_language_tag(text: str) -> None:
    assert not is_language_tag(text)
    assert match_locale(text) is None


def test_accept_language_by_quality_then_order() -> None:
    header = "fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5"
    assert accept_language(header) == ["fr-CH", "fr", "en", "de"]
    assert accept_language("de;q=0.5, nl") == ["nl", "de"]
    assert accept_language("de;q=0, nl;q=1.0") == ["nl"]  # q=0: not acceptable
    assert accept_language("de;q=2, nl;level=1, es") == ["es"]  # malformed entries left out
    assert accept_language("") == []
    assert accept_language("de," * 10_000) == ["de"] * 32  # bounded, never parsed at length


def test_negotiate_takes_the_first_wish_a_catalog_speaks() -> None:
    assert negotiate(["ja", None, "de-AT", "fr"], default="en") == "de"
    assert negotiate([None, "ja"], default="nl") == "nl"
    assert negotiate(["qps"], default="en", available=("en", "qps")) == "qps"


def test_language_tags_for_html() -> None:
    assert [language_tag(locale) for locale in LOCALES] == ["en", "de", "fr", "es", "pt-BR", "nl"]
