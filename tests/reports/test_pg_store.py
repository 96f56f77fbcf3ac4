"""The PostgreSQL store in a running service: reports written and read back through the
API, the database going down mid-session and coming back, its errors named, and the
password of its URL in no log line."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest

from qualmon.reports.faults import fault_reason
from qualmon.reports.pg_store import PgReportStore
from qualmon.service.keys import limiter_key, store_key

from ..conftest import Service, make_settings, run_service, wait_for
from ..pg import Cluster, cluster_or_skip
from ..reportdata import checkpoint
from ..service.serving import free_port
from ..service.test_probe_ingest import post as post_sample
from ..service.test_probe_ingest import sample

pytestmark = pytest.mark.timeout(180)


def never() -> bool:
    return False


async def get(service: Service, path: str) -> tuple[int, Any, str | None]:
    async with service.http.get(service.url + path, headers=service.auth("admin")) as r:
        body = await (r.json() if r.content_type == "application/json" else r.text())
        return r.status, body, r.headers.get("Retry-After")


async def probe(service: Service, session_id: str, first: int, count: int) -> None:
    """`count` stats samples of the session's client, numbered from `first`: each measured."""
    token = service.token("publish", session_id, "client")
    for i in range(first, first + count):
        status, text, _ = await post_sample(service, session_id, sample(i), token=token)
        assert status == 204, text


async def samples_measured(service: Service, session_id: str) -> int:
    doc = await service.session_json(session_id)
    return int(doc["legs"]["client"]["heard"]["samples"])


def ended(service: Service, session_id: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return bool((await service.session_json(session_id))["state"] == "ended")

    return check


async def test_a_session_report_written_and_read_back(
    pg_dsn: str, pg_cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    """A probe-fed session on a PostgreSQL store: its live checkpoint and final report are
    served by the report routes and listed; nothing logged names the URL's password."""
    caplog.set_level(logging.DEBUG)
    settings = make_settings(db_path=pg_dsn, lost_after_seconds=3.0)
    async with run_service(settings) as service:
        service.app[limiter_key].min_interval_seconds = 0.0
        await probe(service, "pg1", 0, 3)
        status, live, _ = await get(service, "/v1/sessions/pg1/report")
        assert status == 200, live
        assert live["state"] == "live" and live["live"]["id"] == "pg1"

        await wait_for(ended(service, "pg1"), timeout=10.0, what="the probe-only session ended")

        async def final() -> Any:
            status, doc, _ = await get(service, "/v1/sessions/pg1/report")
            return doc if status == 200 and doc["state"] == "ended" else None

        report = await wait_for(final, what="the final report")
        assert report["end_reason"] is not None and report["ended_at"] is not None
        status, listed, _ = await get(service, "/v1/reports")
        assert status == 200 and [r["id"] for r in listed["reports"]] == ["pg1"]
        status, html, _ = await get(service, "/v1/sessions/pg1/report.html")
        assert status == 200 and "pg1" in html
    # Read by another process, as an operator would.
    store = PgReportStore(pg_dsn)
    stored = store.load("pg1")
    store.close()
    assert stored is not None and stored.end_reason == report["end_reason"]
    assert pg_cluster.password not in caplog.text


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A cluster of its own, so stopping it disturbs no other test."""
    with cluster_or_skip() as cluster:
        yield cluster


NOT_SAVED = "report not saved yet: report store not writable (database unreachable)\n"
DEGRADED = (200, "degraded: report store not writable (database unreachable)\n", None)


def pending_finals(service: Service) -> float | None:
    return service.metrics.registry.get_sample_value(
        "qualmon_store_pending_reports", {"kind": "final"}
    )


async def goes_degraded(service: Service, session_id: str) -> None:
    """After the database stopped: asking for the report writes a fresh checkpoint (at most
    one a second), which fails, and the answer is 503 + Retry-After (a read meanwhile may
    fail too: 503 either way, never a 500); /readyz degraded; the failure counted."""

    async def refused() -> str | None:
        status, text, retry_after = await get(service, f"/v1/sessions/{session_id}/report")
        assert status == 503 and text in (
            NOT_SAVED,
            "report store cannot be read (database unreachable)\n",
        ), (status, text)
        return retry_after if text == NOT_SAVED else None

    retry_after = await wait_for(refused, what="the report refused as not saved yet")
    assert int(retry_after) >= 1
    assert await get(service, "/readyz") == DEGRADED
    registry = service.metrics.registry
    assert registry.get_sample_value("qualmon_store_writable") == 0
    writes = ("checkpoint", "final", "warning")
    errors = [registry.get_sample_value("qualmon_store_errors_total", {"op": op}) for op in writes]
    assert sum(e or 0 for e in errors) >= 1


async def final_waits(service: Service, session_id: str) -> None:
    """The session ended while the database is down: its final report waits in memory."""
    await wait_for(ended(service, session_id), timeout=15.0, what="the session ended")
    # >= 1: while an attempt is in flight, writes queued meanwhile wait beside it.
    await wait_for(
        lambda: (pending_finals(service) or 0) >= 1, timeout=15.0, what="the final waiting"
    )
    assert (await get(service, "/v1/reports"))[:2] == (503, NOT_SAVED)


async def lands_when_back(service: Service, session_id: str) -> Any:
    """The database runs again: /readyz ready once a retry succeeds; the final report
    that waited is served; nothing dropped. The report."""

    async def ready() -> bool:
        return await get(service, "/readyz") == (200, "ready\n", None)

    # Retries back off 1, 2, 4 … 30 s: one comes within 40 s of the restart.
    await wait_for(ready, timeout=40.0, what="/readyz ready again")
    status, report, _ = await get(service, f"/v1/sessions/{session_id}/report")
    assert status == 200, report
    assert report["state"] == "ended" and report["end_reason"] is not None
    assert pending_finals(service) == 0
    dropped = service.metrics.registry.get_sample_value(
        "qualmon_store_reports_dropped_total", {"kind": "final"}
    )
    assert dropped == 0
    return report


def told_once(caplog: pytest.LogCaptureFixture, cluster: Cluster) -> None:
    """One line when writes began failing, one when they succeeded again; no password."""
    lines = [r.getMessage() for r in caplog.records if r.name == "qualmon.reports.async_store"]
    assert sum("report store not writable (database unreachable)" in x for x in lines) == 1
    assert sum("report store writable again" in x for x in lines) == 1
    assert cluster.password not in caplog.text


@contextlib.asynccontextmanager
async def probed_service(cluster: Cluster, session_id: str) -> AsyncIterator[Service]:
    """A service on a fresh database of `cluster`, with a probe-fed session whose report
    has been written (sessions end 3 s after their last sample)."""
    dsn = cluster.create_database("reports")
    async with run_service(make_settings(db_path=dsn, lost_after_seconds=3.0)) as service:
        service.app[limiter_key].min_interval_seconds = 0.0
        await probe(service, session_id, 0, 3)
        assert (await get(service, f"/v1/sessions/{session_id}/report"))[0] == 200
        yield service


@pytest.mark.slow
async def test_database_down_mid_session(
    own_cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    """The database stops while a probe-fed session runs: samples are still measured,
    /readyz is degraded, report reads answer 503 with Retry-After, errors are counted; once
    it is back the waiting final report lands and /readyz is ready."""
    caplog.set_level(logging.INFO)
    async with probed_service(own_cluster, "down") as service:
        assert await get(service, "/readyz") == (200, "ready\n", None)
        own_cluster.stop()
        await goes_degraded(service, "down")
        before = await samples_measured(service, "down")
        await probe(service, "down", 3, 3)
        assert await samples_measured(service, "down") == before + 3
        await final_waits(service, "down")
        own_cluster.start()
        await lands_when_back(service, "down")
    told_once(caplog, own_cluster)


@pytest.mark.realtime
async def test_database_down_under_a_whip_leg(
    own_cluster: Cluster, publishers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A real WHIP leg while the database is down: its packets are still measured; after
    the database is back its final report holds every packet the live API counted."""
    caplog.set_level(logging.INFO)
    dsn = own_cluster.create_database("reports")
    async with run_service(make_settings(db_path=dsn)) as service:
        publisher = await publishers(service, "whip", "client")

        async def packets() -> int:
            doc = await service.session_json("whip")
            return int(doc["legs"]["client"]["packets_received"])

        await wait_for(lambda: service.app[store_key].health().writable, what="writable")
        first: int = await wait_for(packets, what="media")
        own_cluster.stop()
        await goes_degraded(service, "whip")

        async def rising() -> bool:
            return await packets() > first + 100

        await wait_for(rising, timeout=10.0, what="more packets measured")
        await publisher.stop()
        await final_waits(service, "whip")
        counted = await packets()
        own_cluster.start()
        report = await lands_when_back(service, "whip")
        assert report["end_reason"] == "ended"
        assert report["legs"]["client"]["packets_received"] == counted
        assert report["legs"]["client"]["end_reason"] == "closed"
    told_once(caplog, own_cluster)


@pytest.mark.slow
async def test_a_frozen_database(own_cluster: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    """The server hangs without closing its connections (SIGSTOP): calls are cut after
    their deadline, so the store degrades as if the server were down, reads answer 503
    instead of hanging, and the report lands once the server runs again."""
    caplog.set_level(logging.INFO)
    async with probed_service(own_cluster, "frozen") as service:
        own_cluster.freeze()
        try:
            await goes_degraded(service, "frozen")
            await probe(service, "frozen", 3, 3)
            await final_waits(service, "frozen")
        finally:
            own_cluster.thaw()
        await lands_when_back(service, "frozen")
    told_once(caplog, own_cluster)


@pytest.mark.slow
async def test_shutdown_on_a_frozen_database_ends_in_time(own_cluster: Cluster) -> None:
    """Frozen while the service stops: the last write attempt is cut, the app closes
    within the 10 s SIGTERM budget."""
    async with probed_service(own_cluster, "late"):
        own_cluster.freeze()
        stopping = time.monotonic()
    try:
        assert time.monotonic() - stopping < 10.0
    finally:
        own_cluster.thaw()


async def test_a_database_down_at_start_delays_only_the_writes(
    pg_cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens at the URL when the service starts: it starts degraded (as on a
    read-only SQLite file) instead of refusing to start; the password is never logged."""
    secret = "pw-" + "q" * 20
    dsn = f"postgresql://qualmon:{secret}@127.0.0.1:{free_port()}/reports"
    async with run_service(make_settings(db_path=dsn)) as service:
        status, text, _ = await get(service, "/readyz")
        assert (status, text) == (
            200,
            "degraded: report store not writable (database unreachable)\n",
        )
    assert secret not in caplog.text


def test_settings_do_not_show_the_url() -> None:
    """Settings printed in a traceback or a debugger keep the URL's password to themselves."""
    settings = make_settings(db_path="postgresql://qualmon:hunter2-secret@db.internal/reports")
    assert "hunter2-secret" not in repr(settings)


def test_postgresql_errors_are_named_for_readyz(pg_dsn: str) -> None:
    """Real psycopg errors of the faults a PostgreSQL store meets, in /readyz's words."""
    with pytest.raises(psycopg.Error) as refused:
        psycopg.connect(f"postgresql://x@127.0.0.1:{free_port()}/x", connect_timeout=5)
    assert fault_reason(refused.value, out_of_space=never) == "database unreachable"
    store = PgReportStore(pg_dsn)
    store.save(checkpoint())
    with psycopg.connect(pg_dsn, autocommit=True) as holder, holder.transaction():
        holder.execute("LOCK TABLE reports IN ACCESS EXCLUSIVE MODE")
        store.set_busy_timeout(0.2)
        with pytest.raises(psycopg.Error) as locked:
            store.save(checkpoint())
    assert fault_reason(locked.value, out_of_space=never) == "locked by another process"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = on")
        with pytest.raises(psycopg.Error) as read_only:
            conn.execute("DELETE FROM reports")
    assert fault_reason(read_only.value, out_of_space=never) == "read-only"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as refused_write:
            conn.execute("UPDATE reports SET end_reason = 'bogus'")
    assert fault_reason(refused_write.value, out_of_space=never) == "write refused"
    store.close()
