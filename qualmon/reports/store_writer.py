"""The store's writer: a task that lands waiting reports oldest first and, while writes
fail, retries on a timer (1, 2, 4 … 30 s)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .fault_state import FaultState
from .faults import REJECTED_ERRORS, STORE_ERRORS, STORE_LOGGER, StoreOp, retry_delay
from .pending import Pending, PendingReports
from .sql_store import BUSY_TIMEOUT_SECONDS, BaseReportStore
from .store_thread import StoreThread

log = logging.getLogger(STORE_LOGGER)

T = TypeVar("T")

RETRY_BUSY_TIMEOUT_SECONDS = 1.0
"A retry waits this long for another process's lock (a first attempt waits 5 s): retries "
"come again anyway, and a shutdown must not sit behind one."
REOPEN_REASONS = ("read-only", "cannot open its files")
"A connection opened while the file was read-only stays read-only: reopen before retrying."


def prepare_store(store: BaseReportStore, *, instance_id: str = "") -> int:
    """WAL, migrations, then the reports an earlier run left open (and no live instance
    answers for; `instance_id`: this one, starting): how many were."""
    store.prepare()
    return store.mark_interrupted(now=time.time(), starting_instance=instance_id)


def tell_interrupted(count: int) -> None:
    if count:
        log.warning("%d report(s) left open by an earlier run marked interrupted", count)


class _Failed(Exception):
    """A write failed for a storage fault, now recorded: retry later."""


class _Refused(Exception):
    """A write failed for a reason no retry cures (and not the storage's fault)."""


class StoreWriter:
    """Takes entries from `pending` one at a time and writes each on the store's thread.

    A storage fault degrades `faults` and puts the entry back first; the next attempt
    comes on a timer. A write refused for itself is dropped, so it cannot hold up the rest.
    """

    def __init__(
        self,
        thread: StoreThread,
        pending: PendingReports,
        faults: FaultState,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        instance_id: str = "",
    ) -> None:
        self._thread = thread
        self._prepare_store = functools.partial(prepare_store, instance_id=instance_id)
        self._pending = pending
        self._faults = faults
        self._clock = clock
        self._sleep = sleep
        self.prepared = False
        "The store is prepared (WAL, migrations); until it is, the writer prepares first."
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._next_attempt_at: float | None = None

    @property
    def next_attempt_at(self) -> float | None:
        """When the next retry comes (by the clock); None while writes succeed."""
        return self._next_attempt_at

    def start(self) -> None:
        self._task = asyncio.create_task(self._write_loop(), name="qualmon-store-writer")

    async def stop(self) -> None:
        """Cancel the task; an entry it was writing goes back first."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._pending.put_back()

    def wake(self) -> None:
        """Something was queued: write it (unless waiting out a fault)."""
        self._wake.set()

    async def flush(self) -> None:
        """Wait until every write queued so far has landed, or until the store fails."""
        target = self._pending.last_seq
        while self._task is not None and not self._task.done() and self._faults.reason is None:
            oldest = self._pending.oldest_seq()
            if oldest is None or oldest > target:
                return
            await self._changed.wait()

    async def write_all(self) -> None:
        """Write what waits, oldest first, until nothing does or an attempt fails."""
        try:
            if not self.prepared:
                await self._prepare()
            while (entry := self._pending.take()) is not None:
                await self._write(entry)
        except _Failed:
            pass
        finally:
            self._notify()

    async def _write_loop(self) -> None:
        while True:
            if self._faults.reason is None:
                await self._wake.wait()
            else:
                delay = retry_delay(self._faults.failures)
                self._next_attempt_at = self._clock() + delay
                await self._sleep(delay)
                self._next_attempt_at = None
            self._wake.clear()
            await self.write_all()

    async def _prepare(self) -> None:
        interrupted = await self._attempt("open", self._prepare_store)
        self.prepared = True
        tell_interrupted(interrupted)

    async def _write(self, entry: Pending) -> None:
        op: StoreOp = entry.kind if entry.checkpoint is not None else "warning"
        warnings = tuple(entry.warnings.values())

        def write(store: BaseReportStore) -> float | None:
            return store.write_session(
                entry.session_id,
                entry.started_at,
                checkpoint=entry.checkpoint,
                warnings=warnings,
                final=entry.final,
            )

        try:
            ratio = await self._attempt(op, write)
        except _Refused:
            # Retrying cannot help and would hold up every other session: drop it.
            self._pending.written()
            self._pending.dropped[entry.kind] += 1
            return
        except BaseException:
            self._pending.put_back()
            raise
        self._pending.written()
        if ratio is not None and entry.on_final_saved is not None:
            try:
                entry.on_final_saved(ratio)
            except Exception as exc:  # an observer's bug must not stop the writer
                log.error("after a final report was saved: %s", type(exc).__name__)

    async def _attempt(self, op: StoreOp, work: Callable[[BaseReportStore], T]) -> T:
        """Run a write. Raises _Failed (storage fault recorded: retry later) or _Refused
        (this write cannot succeed; the store is not to blame)."""
        retrying = self._faults.reason is not None
        reopen = self._faults.reason in REOPEN_REASONS

        def run(store: BaseReportStore) -> T:
            if not retrying:
                return work(store)
            if reopen:
                store.reopen()
            store.set_busy_timeout(RETRY_BUSY_TIMEOUT_SECONDS)
            try:
                return work(store)
            finally:
                with contextlib.suppress(*STORE_ERRORS):
                    store.set_busy_timeout(BUSY_TIMEOUT_SECONDS)

        try:
            result = await self._thread.run(run)
        except Exception as exc:
            storage = isinstance(exc, STORE_ERRORS) and not isinstance(exc, REJECTED_ERRORS)
            if storage or op == "open":
                self._faults.failed(op, exc)
                raise _Failed from None
            self._faults.refused(op, exc)
            raise _Refused from None
        self._faults.recovered()
        return result

    def _notify(self) -> None:
        """Wake flushes: something landed or failed."""
        self._changed.set()
        self._changed = asyncio.Event()
