"""The store's writer: reports wait in memory while the store fails, land when it recovers.

A real store (a SQLite file, a PostgreSQL database) that fails on command, a fake clock, and
a retry timer that fires only when the test says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from pathlib import Path

import pytest

from qualmon.reports.async_store import AsyncReportStore
from qualmon.reports.faults import StoreUnavailable
from qualmon.reports.model import Checkpoint, SessionReport, WarningRecord
from qualmon.reports.pg_store import PgReportStore, is_postgresql
from qualmon.reports.sql_store import BaseReportStore
from qualmon.reports.store import ReportStore

from ..backends import Backend
from ..conftest import wait_for
from ..fakes import FakeClock
from ..reportdata import checkpoint
from .sqlite_errors import full_disk_error, read_only_error

START = 1_790_000_000.0


class FailingStore(BaseReportStore):
    """A real store whose writes (and, if asked, reads) raise `fail` while it is set; mixed
    into each kind of store below."""

    def __init__(self, target: str) -> None:
        super().__init__(target, prepare=False)  # type: ignore[call-arg]
        self.fail: sqlite3.Error | None = None
        self.fail_reads = False
        self.refuse: set[str] = set()
        "Session ids whose writes raise IntegrityError (a write no retry can cure)."
        self.reopened = 0

    def _check(self) -> None:
        if self.fail is not None:
            raise self.fail

    # super() here is the concrete store mixed in after this class (FailingSqlite and
    # FailingPg below), which mypy cannot see from the abstract base.
    def prepare(self) -> int:
        self._check()
        return super().prepare()  # type: ignore[safe-super]

    def reopen(self) -> None:
        self.reopened += 1
        super().reopen()  # type: ignore[safe-super]

    def write_session(
        self,
        session_id: str,
        started_at: float,
        *,
        checkpoint: Checkpoint | None,
        warnings: Iterable[WarningRecord],
        final: bool,
    ) -> float | None:
        self._check()
        if session_id in self.refuse:
            raise sqlite3.IntegrityError("CHECK constraint failed")
        return super().write_session(
            session_id, started_at, checkpoint=checkpoint, warnings=warnings, final=final
        )

    def load(self, session_id: str, started_at: float | None = None) -> SessionReport | None:
        if self.fail_reads and self.fail is not None:
            raise self.fail
        return super().load(session_id, started_at)


class FailingSqlite(FailingStore, ReportStore):
    pass


class FailingPg(FailingStore, PgReportStore):
    pass


class Timer:
    """The writer's retry sleep, fired by hand: `delays` are the waits it asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._fire = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        await self._fire.wait()
        self._fire.clear()

    def fire(self) -> None:
        self._fire.set()


class Harness:
    """An AsyncReportStore over a FailingStore, on a fake clock and a hand-fired timer."""

    def __init__(self, target: str, clock: FakeClock, *, fail: sqlite3.Error | None) -> None:
        self.target = target
        self.clock = clock
        self.timer = Timer()
        self.stores: list[FailingStore] = []

        def opener(p: str) -> BaseReportStore:
            store = FailingPg(p) if is_postgresql(p) else FailingSqlite(p)
            store.fail = fail
            self.stores.append(store)
            return store

        self.store = AsyncReportStore(
            target, max_pending=3, clock=clock, sleep=self.timer.sleep, opener=opener
        )

    @property
    def db(self) -> FailingStore:
        return self.stores[-1]

    async def failures(self, n: int) -> None:
        """Wait until the writer has failed `n` attempts in a row (and sleeps on it)."""
        await wait_for(lambda: len(self.timer.delays) >= n, timeout=5.0, what=f"{n} failures")

    async def retry(self) -> None:
        """Fire the retry timer; wait until the attempt failed again or everything landed."""
        asked = len(self.timer.delays)
        self.timer.fire()
        await wait_for(
            lambda: len(self.timer.delays) > asked or self.store.health().writable,
            timeout=5.0,
            what="the retry",
        )
        await self.store.flush()


@contextlib.asynccontextmanager
async def running(
    backend: Backend, clock: FakeClock, *, fail: sqlite3.Error | None = None
) -> AsyncIterator[Harness]:
    h = Harness(backend.target, clock, fail=fail)
    await h.store.open()
    try:
        yield h
    finally:
        for store in h.stores:
            store.fail = None
        await h.store.close()


def stored(backend: Backend, session_id: str) -> tuple[float | None, str | None, int] | None:
    """(ended_at, end_reason, warning count) of the session's report, read as another
    process reads it."""
    rows = backend.rows(
        "SELECT report_id, ended_at, end_reason FROM reports WHERE session_id = ?",
        (session_id,),
    )
    if not rows:
        return None
    ((report_id, ended_at, end_reason),) = rows
    ((warnings,),) = backend.rows("SELECT count(*) FROM warnings WHERE report_id = ?", (report_id,))
    return ended_at, end_reason, warnings


def final(session_id: str = "S1") -> Checkpoint:
    return checkpoint(
        session_id,
        started_at=START,
        checkpoint_at=START + 60,
        ended_at=START + 60,
        end_reason="ended",
    )


def raise_warning(store: AsyncReportStore, session_id: str = "S1") -> None:
    store.record_warning(
        session_id=session_id,
        session_started_at=START,
        kind="high_loss",
        severity="warning",
        role="client",
        raised_at=START + 15,
        value=0.08,
        threshold=0.043,
    )


async def test_reports_wait_in_memory_and_land_when_the_store_recovers(
    backend: Backend, clock: FakeClock
) -> None:
    """A full disk: the final report and its warning wait (degraded, counted, retried at
    1, 2, 4 s); once the disk has room they land complete and the observer is told."""
    ratios: list[float] = []
    async with running(backend, clock) as h:
        h.db.fail = full_disk_error()
        raise_warning(h.store)
        h.store.save(final(), final=True, on_final_saved=ratios.append)
        await h.failures(1)
        health = h.store.health()
        assert (health.reason, health.writable) == ("disk full", False)
        assert health.pending == {"checkpoint": 0, "final": 1}
        assert health.errors == {
            "open": 0,
            "checkpoint": 0,
            "final": 1,
            "warning": 0,
            "purge": 0,
            "read": 0,
            "cluster": 0,
        }
        await asyncio.wait_for(h.store.flush(), 1.0)  # no waiting on a failing store
        assert h.store.held_back("S1") and h.store.held_back_between(START, START + 1)
        assert h.store.retry_after_seconds() == 1
        await h.retry()
        await h.retry()
        assert h.timer.delays == [1.0, 2.0, 4.0] and h.store.errors["final"] == 3
        assert stored(backend, "S1") is None and ratios == []

        h.db.fail = None
        await h.retry()
        health = h.store.health()
        assert health.writable and sum(health.pending.values()) == 0
        assert not h.store.held_back("S1")
        assert stored(backend, "S1") == (START + 60, "ended", 1)
        assert ratios == [pytest.approx(45 / 60)]  # the warning ran from 15 s to the end
        assert sum(health.dropped.values()) == 0


async def test_a_live_sessions_checkpoints_merge_while_waiting(
    backend: Backend, clock: FakeClock
) -> None:
    """Checkpoints queued during a fault land as one write holding all of them."""
    first = checkpoint(started_at=START)
    later = checkpoint(
        started_at=START,
        checkpoint_at=START + 70,
        points=(replace(first.points[-1], t_seconds=60.0),),
        speech_from=(("client", 2),),
        speech=(),
    )
    async with running(backend, clock) as h:
        h.db.fail = full_disk_error()
        h.store.save(first)
        await h.failures(1)
        h.store.save(later)
        assert h.store.health().pending == {"checkpoint": 1, "final": 0}
        h.db.fail = None
        await h.retry()
        report = await h.store.run(lambda s: s.load("S1"))
    assert report is not None and report.checkpoint_at == START + 70
    assert len(report.points) == len(first.points) + 1


async def test_one_log_line_a_minute_and_one_on_recovery(
    backend: Backend, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Attempts fail for three minutes: a line at the first, one a minute after, one when
    writes succeed again; never one per attempt."""
    caplog.set_level(logging.WARNING, logger="qualmon.reports.async_store")
    async with running(backend, clock) as h:
        h.db.fail = full_disk_error()
        h.store.save(final(), final=True)
        await h.failures(1)
        for _ in range(18):
            clock.advance(10.0)
            await h.retry()
        h.db.fail = None
        await h.retry()
    lines = [r.getMessage() for r in caplog.records]
    assert len(h.timer.delays) == 19
    assert len(lines) == 5, lines
    assert lines[0].startswith("report store not writable (disk full): SQLITE_FULL")
    assert "at most 3" in lines[0]
    assert [line.split(":")[0] for line in lines[1:4]] == [
        "report store still not writable (disk full) after 60 s",
        "report store still not writable (disk full) after 120 s",
        "report store still not writable (disk full) after 180 s",
    ]
    assert "6 failed attempt(s) since the last line, 1 report(s) waiting" in lines[1]
    assert lines[4] == (
        "report store writable again after 180 s (disk full); writing 1 waiting report(s)"
    )


async def test_a_store_that_cannot_be_prepared_starts_degraded(
    backend: Backend, clock: FakeClock, tmp_path: Path
) -> None:
    """Read-only at start: the service starts, reads work, writes wait; each retry opens a
    fresh connection (one opened read-only stays so), prepares, marks an earlier run's
    open report interrupted, then writes what waited."""
    seed = backend.open()
    seed.save(checkpoint("crashed", started_at=START - 3600))
    seed.close()
    async with running(backend, clock, fail=read_only_error(tmp_path / "ro.db")) as h:
        assert h.store.health().reason == "read-only" and h.store.errors["open"] == 1
        crashed = await h.store.run(lambda s: s.load("crashed"))
        assert crashed is not None and crashed.end_reason is None
        h.store.save(final(), final=True)
        await h.retry()
        assert h.db.reopened == 1 and h.store.errors["open"] == 2
        h.db.fail = None
        await h.retry()
        assert h.db.reopened == 2 and h.store.health().writable
        assert stored(backend, "crashed") == (START - 3600 + 60, "interrupted", 0)
        assert stored(backend, "S1") == (START + 60, "ended", 0)


async def test_the_bound_holds_while_waiting(backend: Backend, clock: FakeClock) -> None:
    """At most 3 here: a fourth session pushes out the oldest live checkpoint, counted."""
    async with running(backend, clock) as h:
        h.db.fail = full_disk_error()
        h.store.save(final("A"), final=True)
        await h.failures(1)
        h.store.save(checkpoint("B", started_at=START))
        h.store.save(checkpoint("C", started_at=START))
        h.store.save(final("D"), final=True)
        health = h.store.health()
        assert health.pending == {"checkpoint": 1, "final": 2}
        assert health.dropped == {"checkpoint": 1, "final": 0}
        assert not h.store.held_back("B") and h.store.held_back("C")
        h.db.fail = None
        await h.retry()
    assert [stored(backend, s) is not None for s in "ABCD"] == [True, False, True, True]


async def test_a_refused_write_is_dropped_and_the_others_land(
    backend: Backend, clock: FakeClock
) -> None:
    """A write the database refuses (a constraint) is not the disk's fault: it is dropped
    and counted, the store stays writable, later writes land."""
    async with running(backend, clock) as h:
        h.db.refuse = {"bad"}
        h.store.save(final("bad"), final=True)
        h.store.save(final("good"), final=True)
        # Waiting for a store that works is not being held back: reads go ahead.
        assert h.store.health().pending["final"] == 2 and not h.store.held_back("good")
        await h.store.flush()
        health = h.store.health()
        assert health.writable and health.dropped == {"checkpoint": 0, "final": 1}
        assert health.errors["final"] == 1 and h.timer.delays == []
    assert stored(backend, "bad") is None and stored(backend, "good") is not None


async def test_a_failed_read_is_store_unavailable(
    backend: Backend, clock: FakeClock, tmp_path: Path
) -> None:
    async with running(backend, clock) as h:
        h.db.fail, h.db.fail_reads = read_only_error(tmp_path / "ro.db"), True
        with pytest.raises(StoreUnavailable) as caught:
            await h.store.run(lambda s: s.load("S1"))
        assert caught.value.reason == "read-only"
        assert h.store.errors["read"] == 1 and h.store.health().writable


async def test_close_tries_once_more_then_tells_what_is_lost(
    backend: Backend, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """At exit: writes that still fail are told (how many, which kind); a store that
    recovered since the last retry gets everything."""
    async with running(backend, clock) as h:
        h.db.fail = full_disk_error()
        h.store.save(final("S1"), final=True)
        h.store.save(checkpoint("S2", started_at=START))
        await h.failures(1)
        await h.store.close()
    assert caplog.records[-1].getMessage() == (
        "report store not writable (disk full): 2 report(s) could not be saved"
        " (1 final, 1 checkpoint of a live session)"
    )
    assert stored(backend, "S1") is None

    async with running(backend, clock) as h:
        h.db.fail = full_disk_error()
        h.store.save(final("S3"), final=True)
        await h.failures(1)
        h.db.fail = None
        await h.store.close()
    assert stored(backend, "S3") == (START + 60, "ended", 0)
