"""The report store for the event loop: reads on its thread, writes through a bounded
buffer that outlives storage faults."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .faults import (
    REJECTED_ERRORS,
    STORAGE_FAULTS,
    STORE_ERRORS,
    STORE_OPS,
    FaultLog,
    StoreHealth,
    StoreOp,
    StoreUnavailable,
    describe,
    fault_reason,
    out_of_space,
    retry_delay,
)
from .model import Checkpoint, WarningRecord
from .pending import MIN_PENDING_REPORTS, Pending, PendingReports
from .store import BUSY_TIMEOUT_SECONDS, ReportStore

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_BUSY_TIMEOUT_SECONDS = 1.0
"A retry waits this long for another process's lock (a first attempt waits 5 s): retries "
"come again anyway, and a shutdown must not sit behind one."
READ_RETRY_AFTER_SECONDS = 10
"What a failed read tells clients (reads are not retried on a timer)."
REOPEN_REASONS = ("read-only", "cannot open its files")
"A connection opened while the file was read-only stays read-only: reopen before retrying."


def _open_unprepared(path: str) -> ReportStore:
    return ReportStore(path, prepare=False)


def _prepare(store: ReportStore) -> int:
    """WAL, migrations, then the reports an earlier run left open: how many were."""
    store.prepare()
    return store.mark_interrupted()


def _tell_interrupted(count: int) -> None:
    if count:
        log.warning("%d report(s) left open by an earlier run marked interrupted", count)


class _Failed(Exception):
    """A write failed for a storage fault, now recorded: retry later."""


class _Refused(Exception):
    """A write failed for a reason no retry cures (and not the storage's fault)."""


class AsyncReportStore:
    """The store for the event loop: every call runs, in order, on one worker thread.

    Writes (`save`, `record_warning`) return at once: they wait in a bounded buffer, one
    merged entry per session, and a writer task lands them oldest first. When a write
    fails the store is *degraded* (`health().reason`): writes stay in memory and the writer
    retries on a timer (1, 2, 4 … 30 s) until one succeeds.
    """

    def __init__(
        self,
        path: str,
        *,
        max_pending: int = MIN_PENDING_REPORTS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        opener: Callable[[str], ReportStore] = _open_unprepared,
    ) -> None:
        self.path = path
        self._clock = clock
        self._sleep = sleep
        self._opener = opener
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._store: ReportStore | None = None
        self._pending = PendingReports(max_pending)
        self._prepared = False
        self._writer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._reason: str | None = None
        self._fault_since = 0.0
        self._failures = 0
        self._next_attempt_at: float | None = None
        self._fault_log = FaultLog()
        self._other_log = FaultLog()
        self.errors: dict[StoreOp, int] = dict.fromkeys(STORE_OPS, 0)

    @property
    def is_open(self) -> bool:
        return self._store is not None

    # -- life ----------------------------------------------------------------

    async def open(self) -> None:
        """Open the store and prepare it (WAL, migrations, leftovers marked interrupted).

        Failing to open at all raises. A store that opens but cannot be prepared because
        the disk refuses (read-only, full, locked) leaves the store degraded instead: the
        writer prepares it first thing once writes succeed again.
        """
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
        try:
            interrupted = await self._on_thread(_prepare)
        except STORE_ERRORS as exc:
            if self._reason_of(exc) not in STORAGE_FAULTS:
                await self._close_connection()
                raise
            self._failed("open", exc)
        else:
            self._prepared = True
            _tell_interrupted(interrupted)
        self._writer = asyncio.create_task(self._write_loop(), name="qualmon-store-writer")

    async def close(self) -> None:
        """Stop the writer, try once more to write what waits, then close; logs how many
        reports could not be saved."""
        if self._store is None:
            return
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        self._pending.put_back()
        await self._write_all()
        unsaved = self._pending.counts()
        if sum(unsaved.values()):
            dropped = sum(self._pending.dropped.values())
            log.error(
                "report store not writable (%s): %d report(s) could not be saved"
                " (%d final, %d checkpoint of a live session)%s",
                self._reason,
                sum(unsaved.values()),
                unsaved["final"],
                unsaved["checkpoint"],
                f"; {dropped} dropped earlier" if dropped else "",
            )
        await self._close_connection()

    async def _close_connection(self) -> None:
        store, executor = self._store, self._executor
        self._store = self._executor = None
        if store is not None and executor is not None:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(*STORE_ERRORS):
                await loop.run_in_executor(executor, store.close)
        if executor is not None:
            executor.shutdown(wait=False)

    # -- writes ----------------------------------------------------------------

    def save(
        self,
        checkpoint: Checkpoint,
        *,
        final: bool = False,
        on_final_saved: Callable[[float], None] | None = None,
    ) -> None:
        """Queue a session's checkpoint (or its final state, `final`); returns at once.

        `on_final_saved` gets the session's degraded ratio once a final report landed.
        """
        if not self.is_open:
            log.warning("report store closed; a session report was not saved")
            return
        self._pending.add(
            checkpoint.session_id,
            checkpoint.started_at,
            checkpoint=checkpoint,
            final=final,
            on_final_saved=on_final_saved,
        )
        self._wake.set()

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
    ) -> None:
        """For the warning engine: record a raised warning, or its clearing (same raised_at).

        `session_started_at` is Session.started_at; times are Unix epoch seconds. Returns
        at once; the write happens on the store's thread (`flush()` waits for it).
        """
        if not self.is_open:
            # Late in shutdown: losing one warning row beats failing the caller's tick.
            log.warning("report store closed; a warning was not recorded")
            return
        warning = WarningRecord(kind, severity, role, raised_at, cleared_at, value, threshold)
        self._pending.add(session_id, session_started_at, warning=warning)
        self._wake.set()

    async def flush(self) -> None:
        """Wait until every write queued so far has landed, or until the store fails:
        then return at once (the writes wait in memory; see `held_back`)."""
        target = self._pending.last_seq
        while self._writer is not None and not self._writer.done() and self._reason is None:
            oldest = self._pending.oldest_seq()
            if oldest is None or oldest > target:
                return
            await self._changed.wait()

    def held_back(self, session_id: str) -> bool:
        """Writes fail and one of this session id waits in memory: a read now would miss
        it. (While writes succeed, those queued land within moments: never held back.)"""
        return self._reason is not None and self._pending.has_session(session_id)

    def held_back_between(self, since: float | None, until: float | None) -> bool:
        """Writes fail and a report of a session started in [since, until) waits."""
        return self._reason is not None and self._pending.has_started_between(since, until)

    # -- reads -----------------------------------------------------------------

    async def run(self, work: Callable[[ReportStore], T], *, op: StoreOp = "read") -> T:
        """Run `work` on the store's thread, after everything queued there before it.

        Raises StoreUnavailable (counted; logged once a minute at most, and not at all
        while writes fail, whose line says it) when the store refuses; writes belong in
        `save`/`record_warning`, which survive that.
        """
        try:
            return await self._on_thread(work)
        except STORE_ERRORS as exc:
            self.errors[op] += 1
            reason = self._reason_of(exc)
            # While writes fail, their line (once a minute) tells of this fault too.
            line = None if self._reason is not None else self._other_log.failed(self._clock())
            if line is not None:
                log.error(
                    "report store %s failed (%s): %s (%d failure(s) since the last line)",
                    op,
                    reason,
                    describe(exc),
                    line.failures,
                )
            raise StoreUnavailable(reason) from None

    def health(self) -> StoreHealth:
        return StoreHealth(
            reason=self._reason,
            pending=self._pending.counts(),
            max_pending=self._pending.max_reports,
            dropped=dict(self._pending.dropped),
            errors=dict(self.errors),
        )

    def retry_after_seconds(self) -> int:
        """For a 503: seconds until the writer tries again (reads: a fixed pause)."""
        if self._next_attempt_at is None:
            return READ_RETRY_AFTER_SECONDS
        return max(1, math.ceil(self._next_attempt_at - self._clock()))

    # -- the writer ------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            if self._reason is None:
                await self._wake.wait()
            else:
                delay = retry_delay(self._failures)
                self._next_attempt_at = self._clock() + delay
                await self._sleep(delay)
                self._next_attempt_at = None
            self._wake.clear()
            await self._write_all()

    async def _write_all(self) -> None:
        """Write what waits, oldest first, until nothing does or an attempt fails."""
        try:
            if not self._prepared:
                await self._prepare()
            while (entry := self._pending.take()) is not None:
                await self._write(entry)
        except _Failed:
            pass
        finally:
            self._notify()

    async def _prepare(self) -> None:
        interrupted = await self._attempt("open", _prepare)
        self._prepared = True
        _tell_interrupted(interrupted)

    async def _write(self, entry: Pending) -> None:
        op: StoreOp = entry.kind if entry.checkpoint is not None else "warning"
        warnings = tuple(entry.warnings.values())

        def write(store: ReportStore) -> float | None:
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

    async def _attempt(self, op: StoreOp, work: Callable[[ReportStore], T]) -> T:
        """Run a write. Raises _Failed (storage fault recorded: retry later) or _Refused
        (this write cannot succeed; the store is not to blame)."""
        retrying = self._reason is not None
        reopen = self._reason in REOPEN_REASONS

        def run(store: ReportStore) -> T:
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
            result = await self._on_thread(run)
        except Exception as exc:
            storage = isinstance(exc, STORE_ERRORS) and not isinstance(exc, REJECTED_ERRORS)
            if storage or op == "open":
                self._failed(op, exc)
                raise _Failed from None
            self.errors[op] += 1
            # A bug's message may quote data: its type only.
            what = describe(exc) if isinstance(exc, STORE_ERRORS) else type(exc).__name__
            log.error("report store refused a %s write (%s); it is dropped", op, what)
            raise _Refused from None
        self._recovered()
        return result

    def _failed(self, op: StoreOp, exc: BaseException) -> None:
        self.errors[op] += 1
        now = self._clock()
        reason = self._reason_of(exc)
        if self._reason is None:
            self._fault_since, self._failures = now, 0
        self._reason = reason
        self._failures += 1
        line = self._fault_log.failed(now)
        if line is None:
            return
        pending = len(self._pending)
        dropped = sum(self._pending.dropped.values())
        if line.first:
            log.error(
                "report store not writable (%s): %s; reports wait in memory (%d now, at most"
                " %d) and are retried",
                reason,
                describe(exc),
                pending,
                self._pending.max_reports,
            )
        else:
            log.error(
                "report store still not writable (%s) after %.0f s: %s; %d failed attempt(s)"
                " since the last line, %d report(s) waiting, %d dropped",
                reason,
                now - self._fault_since,
                describe(exc),
                line.failures,
                pending,
                dropped,
            )

    def _recovered(self) -> None:
        if self._reason is None:
            return
        reason, self._reason, self._failures = self._reason, None, 0
        if self._fault_log.recovered():
            log.warning(
                "report store writable again after %.0f s (%s); writing %d waiting report(s)",
                self._clock() - self._fault_since,
                reason,
                len(self._pending),
            )

    def _reason_of(self, exc: BaseException) -> str:
        return fault_reason(exc, out_of_space=lambda: out_of_space(self.path))

    def _notify(self) -> None:
        """Wake flushes: something landed or failed."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _on_thread(self, work: Callable[[ReportStore], T]) -> T:
        executor, store = self._executor, self._store
        if executor is None or store is None:
            raise StoreUnavailable("closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, work, store)
