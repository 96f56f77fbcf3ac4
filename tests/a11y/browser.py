"""Headless Debian Chromium for the language and accessibility tests, and axe-core in it."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from ..conftest import ARTIFACTS, CHROMIUM_ARGS

AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
"Installed by `make test` (npm ci in tests/a11y, the version package-lock.json pins)."


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A browser; the test is skipped, with the reason, where Chromium or Playwright is not."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("Debian chromium is not installed (make system-deps)")
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            await browser.close()


async def new_page(
    browser: Any,
    *,
    scheme: str = "light",
    locale: str | None = None,
    reduced_motion: str = "no-preference",
    viewport: tuple[int, int] = (440, 420),
) -> Any:
    """A page in a fresh context: colour scheme, Accept-Language (`locale`), motion; the
    pages' CSP is bypassed so axe can be injected (it allows no script of ours)."""
    options: dict[str, Any] = {
        "color_scheme": scheme,
        "reduced_motion": reduced_motion,
        "viewport": {"width": viewport[0], "height": viewport[1]},
        "bypass_csp": True,
    }
    if locale is not None:
        options["locale"] = locale
    context = await browser.new_context(**options)
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    return page


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations for the page as it is now (all rules axe runs by default:
    WCAG 2.0/2.1 A and AA and best practices)."""
    if not AXE.exists():
        pytest.skip(f"axe-core is not installed at {AXE}: run `make test` (npm ci)")
    await page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    violations: list[dict[str, Any]] = result["violations"]
    return violations


def readable(violations: list[dict[str, Any]]) -> str:
    """One paragraph per violation: rule, impact, what to fix, and where."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"][:5]:
            summary = (node.get("failureSummary") or "").replace("\n", " / ")
            lines.append(f"    {' '.join(map(str, node['target']))}: {summary}")
    return "\n".join(lines)


async def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / name), full_page=True)
