"""axe-core finds nothing to fix on the report page, in English and German, light and dark;
and the timeline's text alternative opens from the keyboard."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from qualmon.config import Settings
from qualmon.reports.model import WarningRecord

from ..backends import Backend
from ..conftest import Service, make_settings
from ..reportdata import checkpoint
from .browser import axe_violations, chromium, new_page, readable, screenshot

STARTED = float(int(time.time()) - 3600)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(db_path=str(tmp_path / "reports.db"))


@pytest.fixture
def backend(settings: Settings) -> Backend:
    return Backend("sqlite", settings.db_path)


@pytest.fixture
async def stored(backend: Backend, service: Service) -> str:
    """An ended session with dropouts and a warning, saved in the service's store."""
    store = backend.open()
    store.save(checkpoint("a11y", started_at=STARTED, ended_at=STARTED + 60, end_reason="ended"))
    store.record_warning(
        "a11y",
        STARTED,
        WarningRecord("high_loss", "warning", "client", STARTED + 15, STARTED + 21, 0.08, 0.05),
    )
    store.close()
    return "a11y"


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_the_report_page_has_no_axe_violations(
    service: Service, stored: str, lang: str
) -> None:
    token = service.token("watch", stored)
    url = f"{service.url}/v1/sessions/{stored}/report.html?token={token}&lang={lang}"
    async with chromium() as browser:
        for scheme in ("light", "dark"):
            page = await new_page(browser, scheme=scheme, viewport=(1100, 900))
            response = await page.goto(url)
            assert response is not None and response.status == 200
            assert await page.get_attribute("html", "lang") == lang
            details = page.locator("details#timeline-text")
            await details.locator("summary").click()  # the closed tables are checked too
            assert await details.get_attribute("open") is not None
            violations = await axe_violations(page)
            await screenshot(page, f"report-{lang}-{scheme}.png")
            assert violations == [], f"{lang}, {scheme}:\n{readable(violations)}"
            assert page.errors == []


async def test_the_timeline_table_opens_from_the_keyboard(service: Service, stored: str) -> None:
    """Tooltips need a mouse; the same facts are a Tab and an Enter away."""
    token = service.token("watch", stored)
    async with chromium() as browser:
        page = await new_page(browser, viewport=(1100, 900))
        await page.goto(f"{service.url}/v1/sessions/{stored}/report.html?token={token}")
        table = page.locator("details#timeline-text table").first
        assert not await table.is_visible()
        await page.keyboard.press("Tab")
        focused = await page.evaluate("document.activeElement.outerHTML")
        assert focused.startswith("<summary"), focused
        await page.keyboard.press("Enter")
        await table.wait_for(state="visible", timeout=5_000)
        caption = await table.locator("caption").inner_text()
        assert caption == "Network quality over time"
        rows = await table.locator("tbody tr").count()
        assert rows >= 4  # each role: good, then the bad buckets, then good again
