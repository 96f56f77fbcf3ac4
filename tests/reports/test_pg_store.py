"""The PostgreSQL store in a running service: reports written and read back through the
API, the database going down mid-session and coming back, its errors named, and the
password of its URL in no log line."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest

from qualmon.reports.faults import fault_reason
from qualmon.reports.pg_store import PgReportStore
from qualmon.service.keys import limiter_key

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


async def test_database_down_mid_session(
    own_cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    """The database stops while a session runs: measuring goes on, /readyz is degraded,
    report reads answer 503 with Retry-After, errors are counted; once it is back the
    waiting final report lands complete and /readyz is ready."""
    caplog.set_level(logging.INFO)
    dsn = own_cluster.create_database("reports")
    settings = make_settings(db_path=dsn, lost_after_seconds=3.0)
    async with run_service(settings) as service:
        service.app[limiter_key].min_interval_seconds = 0.0
        registry = service.metrics.registry
        await probe(service, "down", 0, 3)
        status, _, _ = await get(service, "/v1/sessions/down/report")
        assert status == 200
        assert await get(service, "/readyz") == (200, "ready\n", None)

        own_cluster.stop()
        # Asking for the report writes a fresh checkpoint (at most one a second), which
        # fails; a read meanwhile may fail too: 503 either way, never a 500.
        not_saved = "report not saved yet: report store not writable (database unreachable)\n"

        async def refused() -> str | None:
            status, text, retry_after = await get(service, "/v1/sessions/down/report")
            assert status == 503 and text in (
                not_saved,
                "report store cannot be read (database unreachable)\n",
            ), (status, text)
            return retry_after if text == not_saved else None

        retry_after = await wait_for(refused, what="the report refused as not saved yet")
        assert retry_after is not None and int(retry_after) >= 1
        assert await get(service, "/readyz") == (
            200,
            "degraded: report store not writable (database unreachable)\n",
            None,
        )
        assert registry.get_sample_value("qualmon_store_writable") == 0
        errors = registry.get_sample_value("qualmon_store_errors_total", {"op": "checkpoint"})
        assert errors is not None and errors >= 1
        # Measuring goes on.
        before = await samples_measured(service, "down")
        await probe(service, "down", 3, 3)
        assert await samples_measured(service, "down") == before + 3

        await wait_for(ended(service, "down"), timeout=10.0, what="the session ended")

        def final_waits() -> bool:
            pending = registry.get_sample_value("qualmon_store_pending_reports", {"kind": "final"})
            return pending == 1

        await wait_for(final_waits, timeout=10.0, what="its final report waiting")
        status, _, _ = await get(service, "/v1/reports")
        assert status == 503

        own_cluster.start()

        async def ready() -> bool:
            return await get(service, "/readyz") == (200, "ready\n", None)

        # Retries back off 1, 2, 4 … 30 s: one comes within 40 s of the restart.
        await wait_for(ready, timeout=40.0, what="/readyz ready again")
        status, report, _ = await get(service, "/v1/sessions/down/report")
        assert status == 200, report
        assert report["state"] == "ended" and report["end_reason"] is not None
        assert registry.get_sample_value("qualmon_store_pending_reports", {"kind": "final"}) == 0
        dropped = registry.get_sample_value(
            "qualmon_store_reports_dropped_total", {"kind": "final"}
        )
        assert dropped == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "qualmon.reports.async_store"]
    assert any("report store not writable (database unreachable)" in line for line in lines)
    assert any("report store writable again" in line for line in lines)
    assert own_cluster.password not in caplog.text


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
