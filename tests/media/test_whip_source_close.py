"""Closing a WHIP source is bounded, even when aiortc's close does not cooperate."""

from __future__ import annotations

import asyncio
import logging

import pytest

from qualmon.media.whip_source import _within


async def test_work_that_finishes_in_time_is_awaited() -> None:
    """Within the bound: awaited to the end, nothing logged."""
    work = asyncio.ensure_future(asyncio.sleep(0.01, result="done"))
    await _within(work, 5.0, "quick work")
    assert work.done() and work.result() == "done"


async def test_stubborn_work_is_left_behind(caplog: pytest.LogCaptureFixture) -> None:
    """Work that ignores its cancellation for a while does not hold the caller: the wait
    ends at the bound, the work is cancelled and left to finish on its own."""
    released = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await released.wait()  # as aiortc's close can, awaiting past a cancellation

    work = asyncio.ensure_future(stubborn())
    with caplog.at_level(logging.WARNING):
        await asyncio.wait_for(_within(work, 0.05, "stubborn work"), 5.0)
    assert not work.done()
    assert "stubborn work did not finish" in caplog.text
    released.set()
    await asyncio.wait({work}, timeout=5.0)
    assert work.done()


async def test_a_failure_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise RuntimeError("inside aiortc")

    with caplog.at_level(logging.ERROR):
        await _within(asyncio.ensure_future(broken()), 5.0, "broken work")
    assert "broken work failed: RuntimeError" in caplog.text
