"""Hand the free memory glibc keeps back to the operating system, periodically.

Measured with `qualmon bench --soak`: with legs ending and sessions starting every few seconds,
Python's own heap stays flat but the process RSS climbs ~0.6 MB/min for half an hour. The
growth is free memory glibc's arenas retain after aiortc/av/libsrtp buffers of ended legs are
freed; `malloc_trim(0)` returns it. Elsewhere (musl, macOS) this is a no-op.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
from collections.abc import Callable
from functools import cache

log = logging.getLogger(__name__)


@cache
def _libc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


def malloc_trim() -> bool | None:
    """glibc's malloc_trim(0): True if memory went back to the OS, None where unsupported."""
    trim = _libc_trim()
    if trim is None:
        return None
    return bool(trim(0))


async def trim_periodically(interval_seconds: float, on_trim: Callable[[bool], None]) -> None:
    """Trim every `interval_seconds`, reporting each result, until cancelled.

    The call walks every arena and takes their locks; in a worker thread (ctypes drops the GIL)
    the event loop keeps receiving packets meanwhile.
    """
    if _libc_trim() is None:
        log.info("malloc_trim is not available here; memory is not trimmed")
        return
    while True:
        await asyncio.sleep(interval_seconds)
        released = await asyncio.to_thread(malloc_trim)
        on_trim(bool(released))


def freeze_startup_heap() -> int:
    """Collect once, then keep what the started process holds (modules, routes, settings)
    out of every later garbage collection; the number of objects frozen.

    A full collection walks every tracked object: at 250 legs it held the event loop ~120 ms
    (`qualmon bench --connect`), and about half of what it walked was there from the start
    and never becomes garbage. Only for a process's own start (`qualmon serve`): frozen
    objects are never collected, so a process that starts many apps (the tests) must not.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
