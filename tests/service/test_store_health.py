"""/readyz, /metrics and report reads while the report store fails (in process, no media)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from qualmon.config import Settings
from qualmon.reports.store import ReportStore
from qualmon.service.keys import store_key

from ..conftest import Service, make_settings, wait_for
from ..reports.sqlite_errors import full_disk_error, read_only_error

START = 1_790_000_000.0


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(db_path=str(tmp_path / "reports.db"))


class Faults:
    """Makes the real store's writes or reads raise a real SQLite error while set."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.write: sqlite3.Error | None = None
        self.read: sqlite3.Error | None = None
        write_session, load = ReportStore.write_session, ReportStore.load

        def failing_write(store: ReportStore, *args: Any, **kwargs: Any) -> float | None:
            if self.write is not None:
                raise self.write
            return write_session(store, *args, **kwargs)

        def failing_load(store: ReportStore, *args: Any, **kwargs: Any) -> Any:
            if self.read is not None:
                raise self.read
            return load(store, *args, **kwargs)

        monkeypatch.setattr(ReportStore, "write_session", failing_write)
        monkeypatch.setattr(ReportStore, "load", failing_load)


async def answer(service: Service, path: str) -> tuple[int, str, str | None]:
    async with service.http.get(service.url + path, headers=service.auth("admin")) as r:
        return r.status, await r.text(), r.headers.get("Retry-After")


def sample(service: Service, name: str, **labels: str) -> float | None:
    return service.metrics.registry.get_sample_value(name, labels)


async def test_a_full_disk_degrades_readiness_and_holds_reads(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes fail: /readyz 200 `degraded: …` (503 still wins when shutting down), the
    store's metrics say so, reads that would miss the waiting report answer 503 +
    Retry-After; once writes succeed the report is there and /readyz is `ready`."""
    faults = Faults(monkeypatch)
    faults.write = full_disk_error()
    service.app[store_key].record_warning(
        session_id="S1",
        session_started_at=START,
        kind="high_loss",
        severity="warning",
        role="client",
        raised_at=START + 5,
    )

    async def degraded() -> bool:
        return await answer(service, "/readyz") == (
            200,
            "degraded: report store not writable (disk full)\n",
            None,
        )

    await wait_for(degraded, what="/readyz degraded")
    assert sample(service, "qualmon_store_errors_total", op="warning") == 1
    assert sample(service, "qualmon_store_writable") == 0
    assert sample(service, "qualmon_store_pending_reports", kind="checkpoint") == 1
    assert sample(service, "qualmon_store_pending_reports", kind="final") == 0
    assert sample(service, "qualmon_store_pending_reports_max") == 200
    assert sample(service, "qualmon_store_reports_dropped_total", kind="final") == 0
    for path in ("/v1/sessions/S1/report", "/v1/sessions/S1/report.html", "/v1/reports"):
        status, text, retry_after = await answer(service, path)
        assert (status, text) == (
            503,
            "report not saved yet: report store not writable (disk full)\n",
        ), path
        assert retry_after is not None and int(retry_after) >= 1
    # A window the waiting report is not in can be listed.
    status, _, _ = await answer(service, "/v1/reports?since=2027-01-01")
    assert status == 200
    service.sessions.accepting = False
    assert (await answer(service, "/readyz"))[:2] == (503, "shutting down\n")
    service.sessions.accepting = True

    faults.write = None

    async def ready() -> bool:
        return await answer(service, "/readyz") == (200, "ready\n", None)

    await wait_for(ready, what="/readyz ready again")
    status, text, _ = await answer(service, "/v1/sessions/S1/report")
    assert status == 200, text
    assert sample(service, "qualmon_store_writable") == 1
    assert sample(service, "qualmon_store_pending_reports", kind="checkpoint") == 0


async def test_an_unreadable_store_answers_503_not_500(
    service: Service, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    faults = Faults(monkeypatch)
    faults.read = read_only_error(tmp_path / "other.db")
    status, text, retry_after = await answer(service, "/v1/sessions/S1/report")
    assert (status, text) == (503, "report store cannot be read (read-only)\n")
    assert retry_after == "10"
    assert sample(service, "qualmon_store_errors_total", op="read") == 1
    assert (await answer(service, "/readyz"))[:2] == (200, "ready\n")  # writes still work
