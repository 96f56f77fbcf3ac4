"""Storage faults survived by a real `qualmon serve`: a locked, read-only or full store.

Each test publishes a WHIP leg, induces the fault, checks that measuring, warnings and
/metrics go on while /readyz says `degraded` and report reads answer 503, then lifts the
fault and checks the report that waited in memory lands complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from qualmon.reports.pending import MIN_PENDING_REPORTS
from qualmon.reports.store import ReportStore
from qualmon.sim.audio import EncodedAudioTrack
from qualmon.sim.publisher import WhipPublisher

from ..conftest import wait_for
from ..reportdata import checkpoint
from .serving import (
    EXIT_BUDGET_SECONDS,
    Harness,
    Server,
    has_media_checkpoint,
    stored_rows,
    without_file_permission_override,
)

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(180)]

RECOVERY_SECONDS = 60.0
"Retries back off to 30 s apart; one taken after the fault is lifted lands within this."


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(tmp_path)
    try:
        yield h
    finally:
        await h.close_publishers()
        for path in (tmp_path, h.db):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(path, 0o700 if path.is_dir() else 0o600)


@dataclass
class Client:
    """What an operator, a load balancer and Prometheus see of one server."""

    http: aiohttp.ClientSession
    server: Server
    harness: Harness

    async def readyz(self) -> tuple[int, str]:
        async with self.http.get(self.server.url + "/readyz") as r:
            return r.status, await r.text()

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        async with self.http.get(self.server.url + "/metrics") as r:
            assert r.status == 200
            text = await r.text()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    async def metric(self, name: str, **labels: str) -> float:
        return (await self.metrics())[(name, tuple(sorted(labels.items())))]

    async def get(self, path: str) -> tuple[int, str, aiohttp.typedefs.LooseHeaders]:
        async with self.http.get(self.server.url + path, headers=self.harness.admin()) as r:
            return r.status, await r.text(), r.headers

    async def session(self, session_id: str) -> dict[str, Any]:
        async with self.http.get(
            f"{self.server.url}/v1/sessions/{session_id}", headers=self.harness.admin()
        ) as r:
            assert r.status == 200, await r.text()
            doc: dict[str, Any] = await r.json()
            return doc

    async def packets(self, session_id: str, role: str = "client") -> int:
        return int((await self.session(session_id))["legs"][role]["packets_received"])

    async def still_measured(self, session_id: str) -> None:
        """The leg's packet count keeps rising, and /metrics with it."""
        before = await self.packets(session_id)
        exported = await self.metric("qualmon_rtp_packets_received_total", role="client")

        async def rising() -> bool:
            return await self.packets(session_id) > before + 50

        await wait_for(rising, timeout=10.0, what="more packets measured")
        assert await self.metric("qualmon_rtp_packets_received_total", role="client") > exported

    async def degraded(self, reason: str, *, timeout: float = 30.0) -> None:
        expected = (200, f"degraded: report store not writable ({reason})\n")

        async def says_so() -> bool:
            return await self.readyz() == expected

        await wait_for(says_so, timeout=timeout, what=f"/readyz to say {expected[1]!r}")

    async def ready(self, *, timeout: float = RECOVERY_SECONDS) -> None:
        async def says_so() -> bool:
            return await self.readyz() == (200, "ready\n")

        await wait_for(says_so, timeout=timeout, what="/readyz back to ready")

    async def report_refused(self, session_id: str) -> None:
        """Ask for the report until the fresh checkpoint that asking writes (at most one a
        second) fails and the answer is 503: the fault is met without waiting for the
        next periodic checkpoint."""

        async def refused() -> bool:
            status, _, _ = await self.get(f"/v1/sessions/{session_id}/report")
            return status == 503

        await wait_for(refused, timeout=30.0, what="the report refused")

    async def reads_wait_for(self, session_id: str, reason: str) -> None:
        """The session's report and the list answer 503 + Retry-After, naming the fault."""
        for path in (f"/v1/sessions/{session_id}/report", "/v1/reports"):
            status, text, headers = await self.get(path)
            assert status == 503, (path, status, text)
            assert text == f"report not saved yet: report store not writable ({reason})\n"
            assert int(headers["Retry-After"]) >= 1

    async def ended_and_waiting(self, publisher: WhipPublisher, session_id: str) -> int:
        """End the session (DELETE); its final report waits in memory. Its packet count."""
        await publisher.stop()

        async def ended() -> bool:
            return (await self.session(session_id))["state"] == "ended"

        await wait_for(ended, timeout=15.0, what="the session to end")

        async def final_waits() -> bool:
            return await self.metric("qualmon_store_pending_reports", kind="final") == 1

        await wait_for(final_waits, timeout=15.0, what="its final report waiting")
        return await self.packets(session_id)

    async def report_landed(self, session_id: str, packets: int) -> None:
        """The final report that waited is stored complete: ended, every packet counted,
        the leg's end; the report route serves it."""
        rows = stored_rows(self.harness.db, session_id)
        assert rows is not None and rows["end_reason"] == "ended", rows
        assert rows["ended_at"] is not None and rows["points"] > 0
        assert rows["legs"]["client"] == {"packets_received": packets, "end_reason": "closed"}
        status, text, _ = await self.get(f"/v1/sessions/{session_id}/report")
        assert status == 200, text
        assert await self.metric("qualmon_store_pending_reports", kind="final") == 0
        assert await self.metric("qualmon_store_writable") == 1
        assert await self.metric("qualmon_store_reports_dropped_total", kind="final") == 0


@contextlib.asynccontextmanager
async def client(harness: Harness, server: Server) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as http:
        yield Client(http, server, harness)


async def stop(server: Server) -> str:
    """SIGTERM: exits 0 within the budget; returns what it printed on stderr."""
    server.proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(server.wait(), EXIT_BUDGET_SECONDS)
    assert code == 0, server.stderr()
    return server.stderr()


def fault_lines(stderr: str, reason: str) -> tuple[int, int, int]:
    """(first lines, reminders, recovery lines) the server logged about the fault; the
    store logged nothing else (not a line per failed write, read or purge)."""
    lines = [line for line in stderr.splitlines() if "qualmon.reports.async_store:" in line]
    counts = (
        sum(f"report store not writable ({reason}): SQLITE_" in line for line in lines),
        sum(f"report store still not writable ({reason})" in line for line in lines),
        sum("report store writable again after" in line for line in lines),
    )
    assert sum(counts) == len(lines), lines
    return counts


@contextlib.contextmanager
def exclusive_lock(db: Path) -> Iterator[None]:
    """Another process's `BEGIN EXCLUSIVE` on the store: every writer waits, then fails."""
    holder = sqlite3.connect(db, isolation_level=None, timeout=10)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


async def test_a_locked_store(harness: Harness) -> None:
    """Locked by another process: measuring and warnings go on, /readyz is degraded, the
    report waits; once the lock is gone it lands complete, warning timeline included."""
    async with harness.serve() as server, client(harness, server) as c:
        publisher = await harness.publish(server, "locked", "client")
        await wait_for(
            lambda: has_media_checkpoint(harness.db, "locked", ("client",)),
            what="a checkpoint with media",
        )
        assert await c.readyz() == (200, "ready\n")
        locked_at = time.monotonic()
        with exclusive_lock(harness.db):
            # A checkpoint waits 5 s for the lock, then fails.
            await c.report_refused("locked")
            await c.degraded("locked by another process", timeout=5.0)
            await c.reads_wait_for("locked", "locked by another process")
            assert await c.metric("qualmon_store_errors_total", op="checkpoint") >= 1
            assert await c.metric("qualmon_store_writable") == 0
            assert await c.metric("qualmon_store_pending_reports", kind="checkpoint") == 1
            await c.still_measured("locked")
            # Warnings still raise and clear: the publisher goes quiet for a while.
            track = publisher.track
            assert isinstance(track, EncodedAudioTrack)
            track.pause()

            async def warned() -> bool:
                warnings = (await c.session("locked"))["warnings"]
                return any(w["kind"] == "media_stopped" for w in warnings)

            async def cleared() -> bool:
                return not await warned()

            await wait_for(warned, timeout=10.0, what="media_stopped raised")
            track.resume()
            await wait_for(cleared, timeout=10.0, what="media_stopped cleared")
            await c.still_measured("locked")
            packets = await c.ended_and_waiting(publisher, "locked")
            await c.reads_wait_for("locked", "locked by another process")
            before = stored_rows(harness.db, "locked")
            assert before is not None and before["ended_at"] is None
        await c.ready()
        fault_seconds = time.monotonic() - locked_at
        await c.report_landed("locked", packets)
        rows = stored_rows(harness.db, "locked")
        assert rows is not None
        (stopped,) = [w for w in rows["warnings"] if w["kind"] == "media_stopped"]
        assert stopped["cleared_at"] is not None and stopped["cleared_at"] > stopped["raised_at"]
        stderr = await stop(server)
    first, reminders, recovered = fault_lines(stderr, "locked by another process")
    assert (first, recovered) == (1, 1), stderr
    assert reminders <= fault_seconds // 60, stderr
    harness.assert_nothing_leaked()


def store_files(db: Path) -> list[Path]:
    return [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]


@pytest.mark.parametrize("made_read_only", ["file", "directory"])
async def test_a_read_only_store(harness: Harness, made_read_only: str) -> None:
    """The store is read-only when the service starts (the file: reads still work; its
    directory: nothing can be read either). It starts anyway, measures, degraded; once the
    permissions are back the report that waited lands complete."""
    prefix = without_file_permission_override()
    if prefix is None:
        pytest.skip("running as root without setpriv: file permissions would not bind")
    seed = ReportStore(str(harness.db))
    seed.save(checkpoint("before", ended_at=1_790_000_060.0, end_reason="ended"))
    seed.close()
    if made_read_only == "file":
        harness.db.chmod(0o400)
    else:
        harness.tmp.chmod(0o500)
    async with harness.serve(prefix=prefix) as server, client(harness, server) as c:
        publisher = await harness.publish(server, "fresh", "client")
        await c.degraded("read-only")
        assert await c.metric("qualmon_store_writable") == 0
        errors = await c.metric("qualmon_store_errors_total", op="open") + await c.metric(
            "qualmon_store_errors_total", op="checkpoint"
        )
        assert errors >= 1
        status, text, headers = await c.get("/v1/sessions/before/report")
        if made_read_only == "file":
            assert status == 200, text
        else:
            assert (status, text) == (503, "report store cannot be read (read-only)\n")
            assert int(headers["Retry-After"]) >= 1
            assert await c.metric("qualmon_store_errors_total", op="read") >= 1
        await c.still_measured("fresh")
        assert (await c.session("fresh"))["state"] == "live"  # the live JSON still works
        packets = await c.ended_and_waiting(publisher, "fresh")
        await c.reads_wait_for("fresh", "read-only")
        fixed_at = time.monotonic()
        harness.tmp.chmod(0o700)
        for path in store_files(harness.db):  # SQLite made its -wal and -shm read-only too
            path.chmod(0o600)
        await c.ready()
        assert time.monotonic() - fixed_at < RECOVERY_SECONDS
        await c.report_landed("fresh", packets)
        stderr = await stop(server)
    first, _, recovered = fault_lines(stderr, "read-only")
    assert (first, recovered) == (1, 1), stderr
    harness.assert_nothing_leaked()


PRLIMIT = shutil.which("prlimit")
needs_prlimit = pytest.mark.skipif(PRLIMIT is None, reason="prlimit (util-linux) not installed")


def file_size_limit(pid: int, soft: str) -> None:
    """`prlimit --fsize=SOFT:` on a running process: its writes past SOFT bytes fail with
    EFBIG (Python ignores SIGXFSZ), as on a full disk. The hard limit stays as it was, so
    the soft one can be raised back."""
    assert PRLIMIT is not None
    subprocess.run([PRLIMIT, "--pid", str(pid), f"--fsize={soft}:"], check=True, timeout=10)


@needs_prlimit
async def test_a_full_disk(harness: Harness) -> None:
    """No room to write (a 1-byte file-size limit on the server): measuring goes on,
    degraded, the report waits; with room again it lands complete."""
    async with harness.serve() as server, client(harness, server) as c:
        publisher = await harness.publish(server, "full", "client")
        await wait_for(
            lambda: has_media_checkpoint(harness.db, "full", ("client",)),
            what="a checkpoint with media",
        )
        file_size_limit(server.proc.pid, "1")
        await c.report_refused("full")
        await c.degraded("disk full", timeout=5.0)
        assert await c.metric("qualmon_store_errors_total", op="checkpoint") >= 1
        assert await c.metric("qualmon_store_pending_reports_max") == MIN_PENDING_REPORTS
        await c.still_measured("full")
        packets = await c.ended_and_waiting(publisher, "full")
        await c.reads_wait_for("full", "disk full")
        file_size_limit(server.proc.pid, "unlimited")
        await c.ready()
        await c.report_landed("full", packets)
        stderr = await stop(server)
    first, _, recovered = fault_lines(stderr, "disk full")
    assert (first, recovered) == (1, 1), stderr
    harness.assert_nothing_leaked()


@needs_prlimit
async def test_sigterm_on_a_full_disk_says_what_was_lost(harness: Harness) -> None:
    """Still no room at SIGTERM: the service exits 0 within its budget and says how many
    reports it could not save; the store keeps the last checkpoint it wrote (the next
    start marks it interrupted)."""
    async with harness.serve() as server, client(harness, server) as c:
        await harness.publish(server, "doomed", "client")
        await wait_for(
            lambda: has_media_checkpoint(harness.db, "doomed", ("client",)),
            what="a checkpoint with media",
        )
        file_size_limit(server.proc.pid, "1")
        await c.report_refused("doomed")
        await c.degraded("disk full", timeout=5.0)
        await c.still_measured("doomed")
        stderr = await stop(server)
    assert (
        "report store not writable (disk full): 1 report(s) could not be saved"
        " (1 final, 0 checkpoint of a live session)"
    ) in stderr
    rows = stored_rows(harness.db, "doomed")
    assert rows is not None and rows["ended_at"] is None and rows["end_reason"] is None
    harness.assert_nothing_leaked()
