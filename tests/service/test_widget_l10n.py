"""The widget in its reader's language, with a warning raised for real on a WHIP leg:
German for ?lang=de, French for Accept-Language: fr, and in the pseudo-locale nothing
English at all (the script's words and the streamed text included)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from qualmon.core.warning_texts import therapist_message
from qualmon.l10n.catalogs import load_localizer

from ..a11y.browser import chromium, new_page, screenshot
from ..a11y.warned import active, warn_on_legs
from ..conftest import Service, make_settings, run_service
from ..l10n.pseudo import catalogs_with_pseudo, english_outside_brackets

pytestmark = pytest.mark.realtime

HIGH_LOSS = therapist_message("high_loss", "client", cleared=False)
VISIBLE_JS = """() => {
  const texts = [document.title, document.body.innerText];
  for (const el of document.querySelectorAll('[aria-label], [title]')) {
    texts.push(el.getAttribute('aria-label') || '', el.getAttribute('title') || '');
  }
  return texts;
}"""
"Everything a reader sees or hears read out: rendered text, labels, titles."


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    """With the pseudo-locale among its catalogs (tests only)."""
    async with run_service(make_settings(), catalogs=catalogs_with_pseudo()) as running:
        yield running


async def test_a_leg_warning_in_the_readers_language(service: Service, publishers: Any) -> None:
    await warn_on_legs(service, publishers, "lw", critical=False)
    assert active(service, "lw", "high_loss") is not None
    token = service.token("watch", "lw")
    item = "#warnings li[data-kind='high_loss'] .text"
    async with chromium() as browser:
        page = await new_page(browser)
        await page.goto(f"{service.url}/widget?token={token}&lang=de")
        await page.locator(item).wait_for(timeout=10_000)
        assert await page.get_attribute("html", "lang") == "de"
        assert await page.locator(item).inner_text() == load_localizer("de").gettext(HIGH_LOSS)
        assert await page.locator("h1").inner_text() == "Verbindung"
        await page.locator("#role-client .label", has_text="Verbunden").wait_for(timeout=10_000)
        await screenshot(page, "widget-de-warning.png")

        page = await new_page(browser, locale="fr-FR")  # Accept-Language: fr-FR
        await page.goto(f"{service.url}/widget?token={token}")
        await page.locator(item).wait_for(timeout=10_000)
        assert await page.get_attribute("html", "lang") == "fr"
        assert await page.locator(item).inner_text() == load_localizer("fr").gettext(HIGH_LOSS)
        assert await page.locator(item).inner_text() != HIGH_LOSS

        page = await new_page(browser)
        await page.goto(f"{service.url}/widget?token={token}&lang=qps")
        await page.locator(item).wait_for(timeout=10_000)
        await page.locator("#role-client .state.good").wait_for(timeout=10_000)
        texts = await page.evaluate(VISIBLE_JS)
        assert any("⟦" in text for text in texts)
        leaks = {text: english_outside_brackets(text) for text in texts}
        assert {t: w for t, w in leaks.items() if w} == {}
        assert page.errors == []
