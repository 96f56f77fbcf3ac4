"""The therapist widget in real headless Chromium (Debian chromium, Playwright)."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from typing import Any

import pytest

from qualmon.core.warnings import WarningEvent
from qualmon.service.keys import warnings_key
from qualmon.sim.impairment import ImpairmentConfig

from ..conftest import ARTIFACTS, CHROMIUM_ARGS, Service, wait_for

pytestmark = pytest.mark.realtime

CHROMIUM = shutil.which("chromium")


@pytest.fixture
async def page() -> Any:
    if CHROMIUM is None:
        pytest.skip("Debian chromium is not installed")
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        page = await browser.new_page(viewport={"width": 440, "height": 360})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors  # type: ignore[attr-defined]
        yield page
        await browser.close()


async def test_widget_shows_and_removes_a_warning(
    service: Service, publishers: Any, page: Any
) -> None:
    """A raised warning's therapist text appears within 3 s; it goes when cleared."""
    publisher = await publishers(service, "wid", "client", impairment=ImpairmentConfig(seed=2))
    await publishers(service, "wid", "therapist")
    token = service.token("watch", "wid")
    await page.goto(f"{service.url}/widget?token={token}")
    # Locators, not wait_for_function: the widget's CSP forbids eval, as it should.
    await page.locator("#role-client .state.good").wait_for(timeout=10_000)
    assert await page.locator("#calm").is_visible()
    assert publisher.impairment is not None
    clean = publisher.impairment.config
    publisher.impairment.config = replace(clean, loss_ratio=0.15)
    runtime = service.app[warnings_key]

    def high_loss() -> WarningEvent | None:
        # 15 % loss may also bring low_mos; this test follows high_loss.
        return next((w for w in runtime.active("wid") if w.kind == "high_loss"), None)

    raised_at = await wait_for(
        lambda: time.monotonic() if high_loss() else None,
        timeout=8.0,
        what="high_loss raised on the server",
    )
    item = page.locator("#warnings li[data-kind='high_loss']")
    await item.wait_for(state="visible", timeout=3_000)
    shown_after = time.monotonic() - raised_at
    assert shown_after <= 3.0
    # The notice says its weight in words before the text (not by colour alone).
    text = await item.locator(".text").text_content()
    warning = high_loss()
    assert warning is not None and text == warning.therapist_text
    assert await item.locator(".severity").text_content() == "Notice: "
    assert not await page.locator("#calm").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "widget-warning.png"))
    publisher.impairment.config = clean
    await item.wait_for(state="detached", timeout=15_000)
    await page.locator("#calm").wait_for(state="visible", timeout=20_000)
    assert await page.get_attribute("#warnings", "aria-live") == "polite"
    assert page.errors == []  # type: ignore[attr-defined]


async def test_widget_marks_itself_stale(service: Service, publishers: Any, page: Any) -> None:
    """When the service stops answering, the widget says its information is not current;
    its "Reconnect now" button is reached and pressed from the keyboard."""
    await publishers(service, "st", "client")
    await page.goto(f"{service.url}/widget?token={service.token('watch', 'st')}")
    await page.locator("#status", has_text="Live").wait_for(timeout=10_000)
    # The service ends the stream and further connections fail: no more messages.
    await page.route("**/events*", lambda route: route.abort())
    runtime = service.app[warnings_key]
    runtime.close_streams(restart=False)
    await page.locator("#status.stale").wait_for(timeout=20_000)
    status = await page.text_content("#status")
    assert status is not None and "Not updated" in status
    await page.unroute("**/events*")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "retry"
    await page.keyboard.press("Enter")
    await page.locator("#status", has_text="Live").wait_for(timeout=10_000)
    assert not await page.locator("#retry").is_visible()
