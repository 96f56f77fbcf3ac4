"""The drain flag of one instance (kept apart from the routes so `keys.py` can name it)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class DrainState:
    """Whether this instance drains, until when, and who wants to know."""

    def __init__(
        self,
        drain_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.drain_seconds = drain_seconds
        self.draining = False
        "True from the drain's start to the process's end; never goes back."
        self.deadline: float | None = None
        "Monotonic seconds after which live legs are ended as `shutdown`."
        self.deadline_at: float | None = None
        "The same instant in Unix seconds, for answers."
        self.signalled = False
        "A signal has asked for the drain (a later signal cuts it short)."
        self.on_drain: list[Callable[[], None]] = []
        "Called once each when the drain begins (the membership's `set_draining`)."
        self.started = asyncio.Event()
        self.finished = asyncio.Event()
        "Set when legs are done or time is up: `qualmon serve` then shuts down."
        self._clock = clock
        self._wall_clock = wall_clock

    def start(self) -> bool:
        """Begin the drain; False (and nothing changes) if it had begun already."""
        if self.draining:
            return False
        self.draining = True
        self.deadline = self._clock() + self.drain_seconds
        self.deadline_at = self._wall_clock() + self.drain_seconds
        for callback in self.on_drain:
            try:
                callback()
            except Exception:
                log.exception("drain callback %r failed", callback)
        self.started.set()
        return True

    def on_signal(self) -> str:
        """SIGTERM/SIGINT: the first begins a drain; one after a signal-begun drain ends it
        now (reports are still saved by the shutdown). A drain begun by the API carries on
        at the first signal: `serve --workers` forwards one to every worker."""
        if self.signalled:
            self.finished.set()
            return "stopping now"
        self.signalled = True
        self.start()
        return "draining"

    def seconds_left(self) -> float:
        if self.deadline is None:
            return self.drain_seconds
        return max(0.0, self.deadline - self._clock())
