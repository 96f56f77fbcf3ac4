"""Closing a WHIP source is bounded, even when aiortc's close does not cooperate."""

from __future__ import annotations

import asyncio
import logging

import pytest

from qualmon.media.offer import validate_offer
from qualmon.media.whip_source import WhipSource, _within

from ..conftest import make_settings
from .test_offer import AIORTC_OFFER as OFFER


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


async def test_the_rtt_probe_loop_ends_with_its_source() -> None:
    """The probe loop checks that its source is open, so a cancellation swallowed inside
    asyncio.wait_for cannot keep it (and the peer it holds) alive after close."""
    feed = _Feed()
    source = WhipSource(
        feed, offer=validate_offer(OFFER), settings=make_settings(rtt_probe_interval_seconds=0.01)
    )
    probing = asyncio.ensure_future(source._probe_rtt())
    await asyncio.sleep(0.05)
    assert not probing.done()
    source._closed = True  # what close() sets first; no cancel() at all
    await asyncio.wait_for(probing, 5.0)
    await source.pc.close()


class _Feed:
    receiving = False  # never probes the (unconnected) peer

    def on_rtt(self, rtt_seconds: float | None) -> None:
        raise AssertionError("no probe without media")

    def session_time_of(self, rtp_timestamp: int) -> float | None:
        return None
