"""The report store for the event loop: reads on its thread, writes through a bounded
buffer that outlives storage faults."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .fault_state import FaultState
from .faults import (
    STORAGE_FAULTS,
    STORE_ERRORS,
    STORE_LOGGER,
    StoreHealth,
    StoreOp,
    StoreUnavailable,
)
from .model import Checkpoint, WarningRecord
from .pending import MIN_PENDING_REPORTS, PendingReports
from .sql_store import BaseReportStore
from .store_thread import StoreThread
from .store_writer import REOPEN_REASONS, StoreWriter, prepare_store, tell_interrupted
from .stores import open_store, store_label

log = logging.getLogger(STORE_LOGGER)

T = TypeVar("T")

READ_RETRY_AFTER_SECONDS = 10
"What a failed read tells clients (reads are not retried on a timer)."


CLUSTER_CLOSE_SECONDS = 1.0
"Closing the cluster's connection waits at most this long (a call may still hold it)."

STALL_SECONDS = 2.0
"A PostgreSQL call still running this long after its lock wait could have ended is cut: "
"a frozen server then degrades the store like a stopped one, and a shutdown still ends "
"within its 10 s."


def _open_unprepared(target: str) -> BaseReportStore:
    return open_store(target, prepare=False, stall_seconds=STALL_SECONDS)


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
        opener: Callable[[str], BaseReportStore] = _open_unprepared,
        instance_id: str = "",
    ) -> None:
        """`instance_id`: this instance's, whose previous run's claims do not keep its
        open reports from being marked interrupted at start."""
        self.path = path
        "A SQLite path or a PostgreSQL URL (`QUALMON_DB`): holds a password, never log it."
        self.label = store_label(path)
        "What logs and errors name instead: the path, or the PostgreSQL host."
        self._clock = clock
        self._thread = StoreThread(path, opener)
        # The cluster's heartbeats and claims get their own connection and thread: behind a
        # long report write (a purge, a lock wait) a heartbeat would miss its lease. An
        # in-memory SQLite database exists for one connection only: it shares the thread.
        self._cluster_thread = self._thread if path == ":memory:" else StoreThread(path, opener)
        self._cluster_opening = asyncio.Lock()
        self._cluster_reopen = False
        self._pending = PendingReports(max_pending)
        self._faults = FaultState(path, self._pending, clock=clock)
        self._prepare_store = functools.partial(prepare_store, instance_id=instance_id)
        self._writer = StoreWriter(
            self._thread,
            self._pending,
            self._faults,
            clock=clock,
            sleep=sleep,
            instance_id=instance_id,
        )

    @property
    def is_open(self) -> bool:
        return self._thread.is_open

    @property
    def errors(self) -> dict[StoreOp, int]:
        """Failed store calls since start, by what they were doing."""
        return self._faults.errors

    # -- life ----------------------------------------------------------------

    async def open(self) -> None:
        """Open the store and prepare it (WAL, migrations, leftovers marked interrupted).

        Failing to open at all raises. A store that opens but cannot be prepared because
        the disk refuses (read-only, full, locked) leaves the store degraded instead: the
        writer prepares it first thing once writes succeed again.
        """
        await self._thread.open()
        try:
            interrupted = await self._thread.run(self._prepare_store)
        except STORE_ERRORS as exc:
            if self._faults.reason_of(exc) not in STORAGE_FAULTS:
                await self._thread.close()
                raise
            self._faults.failed("open", exc)
        else:
            self._writer.prepared = True
            tell_interrupted(interrupted)
        self._writer.start()

    async def close(self) -> None:
        """Stop the writer, try once more to write what waits, then close; logs how many
        reports could not be saved."""
        if not self._thread.is_open:
            return
        if self._cluster_thread is not self._thread:
            # It may be stuck in a call to a frozen server (cut within seconds): no waiting.
            await self._cluster_thread.close(timeout_seconds=CLUSTER_CLOSE_SECONDS)
        await self._writer.stop()
        await self._writer.write_all()
        unsaved = self._pending.counts()
        if sum(unsaved.values()):
            dropped = sum(self._pending.dropped.values())
            log.error(
                "report store not writable (%s): %d report(s) could not be saved"
                " (%d final, %d checkpoint of a live session)%s",
                self._faults.reason,
                sum(unsaved.values()),
                unsaved["final"],
                unsaved["checkpoint"],
                f"; {dropped} dropped earlier" if dropped else "",
            )
        await self._thread.close()

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
        self._writer.wake()

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
        self._writer.wake()

    async def flush(self) -> None:
        """Wait until every write queued so far has landed, or until the store fails:
        then return at once (the writes wait in memory; see `held_back`)."""
        await self._writer.flush()

    def held_back(self, session_id: str) -> bool:
        """Writes fail and one of this session id waits in memory: a read now would miss
        it. (While writes succeed, those queued land within moments: never held back.)"""
        return self._faults.reason is not None and self._pending.has_session(session_id)

    def held_back_between(self, since: float | None, until: float | None) -> bool:
        """Writes fail and a report of a session started in [since, until) waits."""
        return self._faults.reason is not None and self._pending.has_started_between(since, until)

    # -- reads -----------------------------------------------------------------

    async def run(self, work: Callable[[BaseReportStore], T], *, op: StoreOp = "read") -> T:
        """Run `work` on the store's thread, after everything queued there before it.

        Raises StoreUnavailable (counted; logged once a minute at most, and not at all
        while writes fail, whose line says it) when the store refuses; writes belong in
        `save`/`record_warning`, which survive that.
        """
        try:
            return await self._thread.run(work)
        except STORE_ERRORS as exc:
            raise StoreUnavailable(self._faults.read_failed(op, exc)) from None

    async def run_cluster(self, work: Callable[[BaseReportStore], T]) -> T:
        """Run a cluster call (heartbeat, claim) on the cluster's own connection, opened
        at the first call; raises StoreUnavailable (counted as `cluster`, not logged: the
        caller says what it means) when the store refuses, or 'closed' once it is closed."""
        if not self._thread.is_open:
            raise StoreUnavailable("closed")
        # A connection opened while the file was read-only stays so: a fresh one first.
        reopen = self._cluster_reopen and self._cluster_thread is not self._thread

        def run(store: BaseReportStore) -> T:
            if reopen:
                store.reopen()
            return work(store)

        try:
            async with self._cluster_opening:
                if not self._cluster_thread.is_open:
                    await self._cluster_thread.open()
            result = await self._cluster_thread.run(run)
        except STORE_ERRORS as exc:
            # Counted here, told by the membership (its own line, once a minute at most).
            self._faults.errors["cluster"] += 1
            reason = self._faults.reason_of(exc)
            self._cluster_reopen = reason in REOPEN_REASONS
            raise StoreUnavailable(reason) from None
        self._cluster_reopen = False
        return result

    def health(self) -> StoreHealth:
        return self._faults.health()

    def retry_after_seconds(self) -> int:
        """For a 503: seconds until the writer tries again (reads: a fixed pause)."""
        next_attempt_at = self._writer.next_attempt_at
        if next_attempt_at is None:
            return READ_RETRY_AFTER_SECONDS
        return max(1, math.ceil(next_attempt_at - self._clock()))
