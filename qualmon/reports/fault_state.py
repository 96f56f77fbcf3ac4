"""Whether the store's writes fail, since when and how often; the lines that say so."""

from __future__ import annotations

import logging
from collections.abc import Callable

from .faults import (
    STORE_ERRORS,
    STORE_LOGGER,
    STORE_OPS,
    FaultLog,
    StoreHealth,
    StoreOp,
    describe,
    fault_reason,
    out_of_space,
)
from .pending import PendingReports
from .pg_store import is_postgresql

log = logging.getLogger(STORE_LOGGER)


class FaultState:
    """The store is *degraded* from a write's storage fault until a write succeeds again.

    Counts every failed call by what it was doing, and logs a fault at most once a minute
    (`FaultLog`), with what waits in `pending`, which it only reads.
    """

    def __init__(self, path: str, pending: PendingReports, *, clock: Callable[[], float]) -> None:
        self.path = path
        "The store's target (a SQLite path, or a PostgreSQL URL: never logged)."
        self._pending = pending
        self._clock = clock
        self._reason: str | None = None
        self._fault_since = 0.0
        self._failures = 0
        self._fault_log = FaultLog()
        self._other_log = FaultLog()
        self.errors: dict[StoreOp, int] = dict.fromkeys(STORE_OPS, 0)

    @property
    def reason(self) -> str | None:
        """Why writes fail ('disk full', 'read-only', …); None while they succeed."""
        return self._reason

    @property
    def failures(self) -> int:
        """Failed write attempts in a row (0 while writes succeed)."""
        return self._failures

    def reason_of(self, exc: BaseException) -> str:
        # A PostgreSQL server's disk is not ours to look at: it says 53100 itself.
        local = not is_postgresql(self.path)
        return fault_reason(exc, out_of_space=lambda: local and out_of_space(self.path))

    def health(self) -> StoreHealth:
        return StoreHealth(
            reason=self._reason,
            pending=self._pending.counts(),
            max_pending=self._pending.max_reports,
            dropped=dict(self._pending.dropped),
            errors=dict(self.errors),
        )

    def read_failed(self, op: StoreOp, exc: BaseException) -> str:
        """A read (or purge) failed: count it, log it at most once a minute; its reason."""
        self.errors[op] += 1
        reason = self.reason_of(exc)
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
        return reason

    def refused(self, op: StoreOp, exc: BaseException) -> None:
        """A write failed for a reason no retry cures: count it and say it is dropped."""
        self.errors[op] += 1
        # A bug's message may quote data: its type only.
        what = describe(exc) if isinstance(exc, STORE_ERRORS) else type(exc).__name__
        log.error("report store refused a %s write (%s); it is dropped", op, what)

    def failed(self, op: StoreOp, exc: BaseException) -> None:
        """A write (or preparing the store) failed for a storage fault: degraded."""
        self.errors[op] += 1
        now = self._clock()
        reason = self.reason_of(exc)
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

    def recovered(self) -> None:
        """A write succeeded: no longer degraded."""
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
