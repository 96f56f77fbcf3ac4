"""The report store, SQLite and PostgreSQL alike: migrations, checkpoints, interrupted
sessions, retention, privacy."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from qualmon.cluster.identity import advertise_url_of
from qualmon.config import ConfigError, Settings, settings_from_env
from qualmon.reports.async_store import AsyncReportStore
from qualmon.reports.model import SpeechSpan, TimelinePoint, WarningRecord
from qualmon.reports.sql_store import BaseReportStore as Store
from qualmon.reports.sql_store import migrations
from qualmon.service.keys import settings_key, store_key

from ..backends import Backend
from ..conftest import SECRET, Service, make_settings, run_service, wait_for
from ..privacy import leaks, store_bytes
from ..reportdata import checkpoint, points

DAY = 86400.0
NOW = 1_800_000_000.0
"Well after every checkpoint of reportdata (a lease and more)."


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "reports.db"


@pytest.fixture
def store(backend: Backend) -> Any:
    opened = backend.open()
    yield opened
    opened.close()


def test_migrations_are_idempotent(backend: Backend) -> None:
    """Opening a store twice applies each migration once; SQLite: WAL mode, the file is
    private."""
    dialect = "postgresql" if backend.name == "postgresql" else ""
    latest = migrations(dialect)[-1][0]
    first = backend.open()
    assert first.schema_version() == latest
    assert first.migrate() == 0
    first.close()
    second = backend.open()
    assert second.migrate() == 0
    second.close()
    assert backend.tables() == {
        "schema_version",
        "reports",
        "legs",
        "timeline",
        "speech",
        "dropouts",
        "warnings",
        "instances",
        "session_owners",
    }
    versions = [r[0] for r in backend.rows("SELECT version FROM schema_version")]
    assert versions == [v for v, _ in migrations(dialect)]
    if backend.name == "sqlite":
        assert backend.rows("PRAGMA journal_mode") == [("wal",)]
        assert Path(backend.target).stat().st_mode & 0o077 == 0


def test_both_dialects_have_the_same_migrations() -> None:
    """A migration added for one store and not the other fails here, not in production."""
    assert [v for v, _ in migrations()] == [v for v, _ in migrations("postgresql")]


async def test_stores_migrating_at_once_apply_each_migration_once(backend: Backend) -> None:
    """Several processes starting together on one empty store: each migration once."""
    opened = await asyncio.gather(*(asyncio.to_thread(backend.open) for _ in range(4)))
    for each in opened:
        each.close()
    versions = [r[0] for r in backend.rows("SELECT version FROM schema_version")]
    assert versions == sorted(set(versions)) and versions


def test_save_and_load_round_trip(store: Store) -> None:
    """A checkpoint loads back field for field."""
    cp = checkpoint()
    store.save(cp)
    report = store.load("S1")
    assert report is not None
    assert (report.session_id, report.started_at, report.checkpoint_at) == (
        "S1",
        cp.started_at,
        cp.checkpoint_at,
    )
    assert report.ended_at is None and report.end_reason is None
    assert report.roles == cp.roles
    assert set(report.legs) == set(cp.legs)
    assert report.turns == cp.turns
    assert set(report.points) == set(cp.points)
    assert set(report.speech) == set(cp.speech)
    assert report.dropouts == cp.dropouts
    assert report.warnings == ()
    assert store.load("unknown") is None


def test_later_checkpoints_replace_and_extend(store: Store) -> None:
    """Points are replaced by (role, t), speech from the given index on, dropouts entirely."""
    first = checkpoint()
    store.save(first)
    changed = replace(points("client", range(11, 12), bad=(11,))[0], dropouts=3)
    new = TimelinePoint("client", 60.0, 0.0, 0.002, 0.04, 4.3, True, False, 3)
    final = checkpoint(
        checkpoint_at=first.started_at + 65,
        ended_at=first.started_at + 65,
        end_reason="ended",
        points=(changed, new),
        speech_from=(("client", 1),),
        speech=(SpeechSpan("client", 1, 39.0, 58.0), SpeechSpan("client", 2, 60.0, 63.0)),
        dropouts=(*first.dropouts, replace(first.dropouts[0], t_seconds=62.0, in_speech=None)),
    )
    store.save(final)
    report = store.load("S1")
    assert report is not None
    assert report.end_reason == "ended" and report.ended_at == first.started_at + 65
    client = [p for p in report.points if p.role == "client"]
    assert len(client) == 13 and client[11] == changed and client[12] == new
    assert [(s.index, s.end_seconds) for s in report.speech if s.role == "client"] == [
        (0, 18.0),
        (1, 58.0),
        (2, 63.0),
    ]
    assert len([s for s in report.speech if s.role == "therapist"]) == 2
    assert [d.in_speech for d in report.dropouts] == [True, True, None]
    assert report.duration_seconds == 65


def test_a_reused_session_id_keeps_both_reports(store: Store) -> None:
    """The platform may reuse an id: each run is its own report, the newest is loaded."""
    store.save(checkpoint(started_at=1000.0, ended_at=1060.0, end_reason="ended"))
    store.save(checkpoint(started_at=2000.0))
    assert store.load("S1").started_at == 2000.0  # type: ignore[union-attr]
    assert store.load("S1", started_at=1000.0).end_reason == "ended"  # type: ignore[union-attr]
    assert len(store.list_reports()) == 2


def test_open_sessions_are_marked_interrupted(store: Store) -> None:
    """Left open by a crash: interrupted, ended at the last checkpoint, data kept."""
    live = checkpoint("crashed")
    store.save(live)
    store.save(checkpoint("done", ended_at=1_790_000_050.0, end_reason="ended"))
    assert store.mark_interrupted(now=NOW) == 1
    report = store.load("crashed")
    assert report is not None
    assert report.end_reason == "interrupted"
    assert report.ended_at == live.checkpoint_at
    assert set(report.legs) == set(live.legs) and set(report.points) == set(live.points)
    assert store.load("done").end_reason == "ended"  # type: ignore[union-attr]
    assert store.mark_interrupted(now=NOW) == 0


def test_a_checkpoint_after_interrupted_reopens_the_report(store: Store) -> None:
    """Another instance starting on a shared store marks a live report interrupted; that
    session's next checkpoint makes it live again (the README's promise)."""
    live = checkpoint("live")
    store.save(live)
    assert store.mark_interrupted(now=NOW) == 1
    store.save(replace(live, checkpoint_at=live.checkpoint_at + 10))
    report = store.load("live")
    assert report is not None and report.ended_at is None and report.end_reason is None


def test_purge_removes_exactly_the_old_reports(store: Store, backend: Backend) -> None:
    """Reports of sessions ended before the cut are gone with all their rows; others stay."""
    now = 1_800_000_000.0
    ages_days = {"d40": 40, "d31": 31, "d29": 29, "d1": 1}
    for sid, age in ages_days.items():
        end = now - age * DAY
        store.save(checkpoint(sid, started_at=end - 60, ended_at=end, end_reason="ended"))
        store.record_warning(
            sid,
            end - 60,
            WarningRecord("high_loss", "warning", "client", end - 30, end - 20, 0.1, 0.05),
        )
    store.save(checkpoint("still-open", started_at=now - 60 * DAY))  # live: never purged
    assert store.purge(now - 30 * DAY) == 2
    kept = {r.session_id for r in store.list_reports()}
    assert kept == {"d29", "d1", "still-open"}
    for table in ("legs", "timeline", "speech", "dropouts", "warnings"):
        orphans = backend.rows(
            f"SELECT count(*) FROM {table} WHERE report_id NOT IN (SELECT report_id FROM reports)"
        )
        assert orphans == [(0,)], table
    assert backend.rows("SELECT count(*) FROM warnings") == [(2,)]
    assert store.purge(now - 30 * DAY) == 0


def test_warnings_upsert_and_degraded_ratio(store: Store) -> None:
    """Raised then cleared is one row; overlapping warnings count once; open ones run to end."""
    start = 1_790_000_000.0
    # Raised before the first checkpoint: the report row is created and later merged.
    store.record_warning(
        "S1", start, WarningRecord("high_loss", "warning", "client", start + 10, None, 0.1, 0.05)
    )
    store.save(checkpoint(ended_at=start + 60, end_reason="ended"))
    store.record_warning(
        "S1",
        start,
        WarningRecord("high_loss", "warning", "client", start + 10, start + 20, 0.1, 0.05),
    )
    store.record_warning(
        "S1", start, WarningRecord("high_rtt", "warning", None, start + 15, start + 25, 0.5, 0.4)
    )
    store.record_warning(
        "S1", start, WarningRecord("mic_silent", "info", "therapist", start + 54, None, None, None)
    )
    report = store.load("S1")
    assert report is not None and len(report.legs) == 2
    assert [(w.kind, w.role, w.cleared_at) for w in report.warnings] == [
        ("high_loss", "client", start + 20),
        ("high_rtt", None, start + 25),
        ("mic_silent", "therapist", None),
    ]
    # [10, 25] and [54, 60] of 60 s
    assert store.degraded_ratio("S1", start) == pytest.approx(21 / 60)


def test_list_reports_filters_and_limits(store: Store) -> None:
    for i in range(5):
        store.save(checkpoint(f"S{i}", started_at=1000.0 + i * 100))
    listed = store.list_reports(since=1100.0, until=1400.0)
    assert [r.session_id for r in listed] == ["S3", "S2", "S1"]
    assert [r.session_id for r in store.list_reports(limit=2)] == ["S4", "S3"]


# -- a real session through the service ------------------------------------------


@pytest.fixture
def settings(db_path: Path) -> Settings:
    return make_settings(db_path=str(db_path))


@pytest.mark.realtime
async def test_store_holds_no_sdp_address_or_token(
    service: Service, publishers: Any, db_path: Path
) -> None:
    """After a full two-role session the database files contain only derived numbers."""
    started = [await publishers(service, "private", role) for role in ("therapist", "client")]

    def media_on_both() -> bool:
        slots = service.sessions.sessions["private"].slots.values()
        return all(s.leg is not None and s.leg.stats.packets_received > 100 for s in slots)

    await wait_for(media_on_both, timeout=10.0, what="media on both legs")
    for publisher in started:
        await publisher.stop()
    async with service.http.get(
        service.url + "/v1/sessions/private/report", headers=service.auth("admin")
    ) as r:
        assert r.status == 200
        assert (await r.json())["end_reason"] == "ended"
    tokens = [service.token("publish", "private", role) for role in ("therapist", "client")]
    tokens += [p._token for p in started]
    blob = store_bytes(db_path)
    assert b"private" in blob  # the scan reads the right file
    assert leaks(blob, tokens, own_urls=[advertise_url_of(service.app[settings_key])]) == []


async def test_service_purges_old_reports_at_start(backend: Backend) -> None:
    """The retention task runs at start: reports past retention_days go, newer ones stay."""
    now = time.time()
    store = backend.open()
    for sid, age_days in (("old", 8), ("new", 6)):
        end = now - age_days * DAY
        store.save(checkpoint(sid, started_at=end - 60, ended_at=end, end_reason="ended"))
    store.close()
    async with run_service(make_settings(db_path=backend.target, retention_days=7)) as service:
        store = service.app[store_key]
        await wait_for(
            lambda: store.run(lambda s: [r.session_id for r in s.list_reports()] == ["new"]),
            what="the old report purged",
        )


def test_retention_days_from_the_environment() -> None:
    env = {"QUALMON_SECRET": SECRET, "QUALMON_RETENTION_DAYS": "7"}
    assert settings_from_env(env).retention_days == 7.0
    assert settings_from_env({"QUALMON_SECRET": SECRET}).retention_days == 30.0
    with pytest.raises(ConfigError, match="QUALMON_RETENTION_DAYS"):
        settings_from_env({**env, "QUALMON_RETENTION_DAYS": "-1"})


async def test_async_store_records_warnings_for_the_engine() -> None:
    """The warning engine's entry point: raise, then clear; returns at once, lands in order
    (flush waits for it); after close a warning is let go without failing the caller."""
    store = AsyncReportStore(":memory:")
    await store.open()
    try:
        start = time.time()
        common = {"session_id": "S1", "session_started_at": start, "kind": "high_loss"}
        store.record_warning(**common, severity="warning", role="client", raised_at=start + 1)
        store.record_warning(
            **common, severity="warning", role="client", raised_at=start + 1, cleared_at=start + 4
        )
        await store.flush()
        assert store.health().pending == {"checkpoint": 0, "final": 0}
        report = await store.run(lambda s: s.load("S1"))
        assert report is not None
        assert [(w.kind, w.role, w.cleared_at) for w in report.warnings] == [
            ("high_loss", "client", start + 4)
        ]
    finally:
        await store.close()
    store.record_warning(**common, severity="warning", role=None, raised_at=start + 9)
    assert store.health().pending == {"checkpoint": 0, "final": 0}
