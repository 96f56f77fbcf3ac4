"""The store's connection and the one thread it lives on: every call runs there, in order."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable
from typing import TypeVar

from .faults import STORE_ERRORS, StoreUnavailable
from .sql_store import BaseReportStore

T = TypeVar("T")


class StoreThread:
    """A BaseReportStore opened on, and only ever used from, one worker thread."""

    def __init__(self, path: str, opener: Callable[[str], BaseReportStore]) -> None:
        self.path = path
        "A SQLite path or a PostgreSQL URL (holds a password: never logged)."
        self._opener = opener
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._store: BaseReportStore | None = None

    @property
    def is_open(self) -> bool:
        return self._store is not None

    async def open(self) -> None:
        """Start the thread and open the store on it; raises (leaving no thread) if the
        store cannot be opened at all."""
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="qualmon-store"
        )
        loop = asyncio.get_running_loop()
        try:
            self._store = await loop.run_in_executor(self._executor, self._opener, self.path)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def run(self, work: Callable[[BaseReportStore], T]) -> T:
        """Run `work` on the thread, after everything queued there before it; raises
        StoreUnavailable('closed') once the store is closed."""
        executor, store = self._executor, self._store
        if executor is None or store is None:
            raise StoreUnavailable("closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, work, store)

    async def close(self, *, timeout_seconds: float | None = None) -> None:
        """Close the connection, ignoring a storage error doing so, and let the thread go;
        with `timeout_seconds`, stop waiting for a call still running after that long (the
        thread closes the connection once that call returns)."""
        store, executor = self._store, self._executor
        self._store = self._executor = None
        if store is not None and executor is not None:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(TimeoutError, *STORE_ERRORS):
                closing = loop.run_in_executor(executor, store.close)
                # Its outcome may come after we stopped waiting: retrieved, not logged.
                closing.add_done_callback(lambda f: f.cancelled() or f.exception())
                await asyncio.wait_for(asyncio.shield(closing), timeout_seconds)
        if executor is not None:
            executor.shutdown(wait=False)
