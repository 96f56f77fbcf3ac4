"""axe-core finds nothing to fix on the widget while it shows warnings (a critical one in
the assertive region, another in the polite one), in English and German, light and dark;
motion only for readers who have not asked for less."""

from __future__ import annotations

from typing import Any

import pytest

from qualmon.config import Settings

from ..conftest import Service, make_settings
from .browser import axe_violations, chromium, new_page, readable, screenshot
from .warned import warn_on_legs

pytestmark = pytest.mark.realtime


@pytest.fixture
def settings() -> Settings:
    # The therapist's silent leg must stay (media_stopped) rather than end as lost at 20 s.
    return make_settings(lost_after_seconds=300.0)


async def test_the_widget_with_warnings_has_no_axe_violations(
    service: Service, publishers: Any
) -> None:
    await warn_on_legs(service, publishers, "ax")
    token = service.token("watch", "ax")
    async with chromium() as browser:
        for lang in ("en", "de"):
            for scheme in ("light", "dark"):
                page = await new_page(browser, scheme=scheme)
                await page.goto(f"{service.url}/widget?token={token}&lang={lang}")
                critical = page.locator("#critical li[data-kind='media_stopped']")
                await critical.wait_for(timeout=10_000)
                await page.locator("#warnings li[data-kind='high_loss']").wait_for(timeout=10_000)
                await page.locator("#role-client .state.good").wait_for(timeout=10_000)
                assert await page.get_attribute("html", "lang") == lang
                assert await page.get_attribute("#critical", "aria-live") == "assertive"
                assert await page.get_attribute("#warnings", "aria-live") == "polite"
                # Not by colour alone: each notice says how urgent it is, in words and icon.
                severity = (await critical.locator(".severity").inner_text()).strip()
                assert severity in ("Urgent:", "Dringend:")
                assert await critical.locator(".icon svg").count() == 1
                violations = await axe_violations(page)
                await screenshot(page, f"widget-{lang}-{scheme}.png")
                assert violations == [], f"{lang}, {scheme}:\n{readable(violations)}"
                assert page.errors == []


async def test_the_widget_moves_only_for_readers_who_allow_motion(
    service: Service, publishers: Any
) -> None:
    await warn_on_legs(service, publishers, "mo", critical=False)
    token = service.token("watch", "mo")
    async with chromium() as browser:
        for motion, animation in (("no-preference", "appear"), ("reduce", "none")):
            page = await new_page(browser, reduced_motion=motion)
            await page.goto(f"{service.url}/widget?token={token}")
            item = page.locator("#warnings li[data-kind='high_loss']")
            await item.wait_for(timeout=10_000)
            name = await item.evaluate("li => getComputedStyle(li).animationName")
            assert name == animation, motion
