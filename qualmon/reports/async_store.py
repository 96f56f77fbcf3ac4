"""The report store for the event loop: every call runs, in order, on one worker thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from .model import WarningRecord
from .store import ReportStore

log = logging.getLogger(__name__)

T = TypeVar("T")


class AsyncReportStore:
    """The store for the event loop: every call runs, in order, on one worker thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._store: ReportStore | None = None

    @property
    def is_open(self) -> bool:
        return self._store is not None

    async def open(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="qualmon-store"
        )
        loop = asyncio.get_running_loop()
        try:
            self._store = await loop.run_in_executor(self._executor, ReportStore, self.path)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    def submit(self, work: Callable[[ReportStore], T]) -> concurrent.futures.Future[T]:
        """Queue `work` from synchronous code; failures are logged."""
        if self._executor is None or self._store is None:
            raise RuntimeError("report store is not open")
        store = self._store
        future = self._executor.submit(work, store)
        future.add_done_callback(_log_failure)
        return future

    async def run(self, work: Callable[[ReportStore], T]) -> T:
        return await asyncio.wrap_future(self.submit(work))

    def record_warning(
        self,
        *,
        session_id: str,
        session_started_at: float,
        kind: str,
        severity: str,
        role: str | None,
        raised_at: float,
        cleared_at: float | None = None,
        value: float | None = None,
        threshold: float | None = None,
    ) -> concurrent.futures.Future[None]:
        """For the warning engine: record a raised warning, or its clearing (same raised_at).

        `session_started_at` is Session.started_at; times are Unix epoch seconds. Returns
        at once; the write happens on the store's thread.
        """
        warning = WarningRecord(kind, severity, role, raised_at, cleared_at, value, threshold)
        if not self.is_open:
            # Late in shutdown: losing one warning row beats failing the caller's tick.
            log.warning("report store closed; a warning was not recorded")
            done: concurrent.futures.Future[None] = concurrent.futures.Future()
            done.set_result(None)
            return done
        return self.submit(lambda s: s.record_warning(session_id, session_started_at, warning))

    async def close(self) -> None:
        """Finish queued writes, then close."""
        executor, store = self._executor, self._store
        if executor is None or store is None:
            return
        self._store = None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(executor, store.close)
        executor.shutdown(wait=False)
        self._executor = None


def _log_failure(future: concurrent.futures.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        exc = future.exception()
        # The type and message only: SQLite errors carry no session data worth leaking.
        log.error("report store write failed: %s: %s", type(exc).__name__, exc)
