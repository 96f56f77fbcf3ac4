"""Stored reports through the real service: truth, access rules, the HTML page, the CLI;
those that hold for every store run on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from qualmon.config import Settings
from qualmon.core.instants import iso
from qualmon.reports.model import WarningRecord
from qualmon.service.keys import limiter_key, store_key, timeline_key
from qualmon.sim.impairment import ImpairmentConfig

from ..backends import Backend
from ..conftest import ARTIFACTS, CHROMIUM_ARGS, Service, make_settings, run_service, wait_for
from ..reportdata import checkpoint
from ..service.serving import free_port
from ..service.test_probe_ingest import post as post_sample
from ..service.test_probe_ingest import sample

STARTED = float(int(time.time()) - 3600)
"An hour ago: well within the retention the service purges by at start."
ODD_ID = "S<b>&\"'1"
"A session id full of HTML metacharacters: the page must show it as text."


SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
"For tests of what no store changes (real-time media, the browser): one run is enough."


@pytest.fixture
def settings(backend: Backend) -> Settings:
    return make_settings(db_path=backend.target)


@pytest.fixture
def stored(backend: Backend) -> Backend:
    """A store holding an ended 60 s session, one left open by a crash, and warnings."""
    store = backend.open()
    store.save(checkpoint("stored", started_at=STARTED, ended_at=STARTED + 60, end_reason="ended"))
    store.save(checkpoint(ODD_ID, started_at=STARTED, ended_at=STARTED + 60, end_reason="ended"))
    for sid in ("stored", ODD_ID):
        store.record_warning(
            sid,
            STARTED,
            WarningRecord("high_loss", "warning", "client", STARTED + 15, STARTED + 21, 0.08, 0.05),
        )
    store.save(checkpoint("crashed", started_at=STARTED + 100))
    store.close()
    return backend


async def get(service: Service, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with service.http.get(service.url + path, **kwargs) as r:
        body = await (r.json() if r.content_type == "application/json" else r.text())
        return r.status, body


# -- truth -------------------------------------------------------------------------


@pytest.mark.realtime
@SQLITE_ONLY
async def test_outage_report_matches_the_live_snapshot(service: Service, publishers: Any) -> None:
    """A 500 ms client outage: the stored report's totals equal the live API's final ones,
    and the dropout sits in the 5 s bucket where the outage happened."""
    therapist = await publishers(service, "outage", "therapist")
    client = await publishers(
        service, "outage", "client", impairment=ImpairmentConfig(outages=((7.0, 0.5),))
    )
    session = service.sessions.sessions["outage"]
    leg = session.slots["client"].leg
    assert leg is not None and client.impairment is not None
    await wait_for(lambda: leg.stats.dropouts, timeout=15.0, what="the outage's dropout")
    resumed_at = leg.stats.packets_received
    await wait_for(
        lambda: leg.stats.packets_received > resumed_at + 50, what="a second of media after it"
    )
    await therapist.stop()
    await client.stop()
    live = await service.session_json("outage")
    assert live["state"] == "ended"
    status, report = await get(service, "/v1/sessions/outage/report", headers=service.auth("admin"))
    assert status == 200, report
    assert report["end_reason"] == "ended" and report["state"] == "ended"
    assert report["roles"] == ["therapist", "client"]
    same = (
        "packets_received",
        "packets_lost",
        "loss_ratio",
        "dropouts",
        "dropout_seconds",
        "dropouts_in_speech",
        "dropout_in_speech_seconds",
        "speech_seconds",
        "reconnects",
        "end_reason",
    )
    for role in ("therapist", "client"):
        stored = report["legs"][role]
        assert {k: stored[k] for k in same} == {k: live["legs"][role][k] for k in same}, role
        assert 0 < stored["jitter_p50_seconds"] <= stored["jitter_p95_seconds"]
        assert 0 < stored["rtt_p50_seconds"] <= stored["rtt_p95_seconds"] < 0.05  # loopback
        assert 1.0 <= stored["mos_min"] <= stored["mos_mean"] <= 4.5
    assert report["turns"] == live["turns"]
    assert report["legs"]["client"]["dropouts"] == 1
    assert report["legs"]["client"]["mos_min"] < report["legs"]["therapist"]["mos_min"]

    # Where the outage was, on the session clock.
    origin = time.monotonic() - (time.time() - session.started_at)
    outage_at = client.impairment.installed_at + 7.0 - origin  # type: ignore[operator]
    (mark,) = report["dropouts"]["client"]
    assert mark["t_seconds"] == pytest.approx(outage_at, abs=0.2)
    assert mark["duration_seconds"] == pytest.approx(0.5, abs=0.04)
    assert report["dropouts"]["therapist"] == []
    bucket = int(outage_at // 5)
    points = {round(p["t_seconds"] / 5): p for p in report["timeline"]["points"]["client"]}
    assert points[bucket]["dropouts"] == 1
    assert all(p["dropouts"] == (1 if b >= bucket else 0) for b, p in points.items())
    assert any((points.get(b) or {}).get("recent_loss_ratio", 0) > 0 for b in (bucket, bucket + 1))
    assert all(p["dropouts"] == 0 for p in report["timeline"]["points"]["therapist"])
    assert report["speech"]["therapist"] and report["speech"]["client"]

    registry = service.metrics.registry
    assert registry.get_sample_value("qualmon_session_duration_seconds_count") == 1
    # The outage raised warnings (loss, dropouts) for part of the session.
    degraded = registry.get_sample_value("qualmon_session_degraded_ratio_sum")
    assert degraded is not None and 0.0 < degraded < 1.0


# -- access ------------------------------------------------------------------------


async def test_report_access_rules(stored: Backend, service: Service) -> None:
    """Watch token for the session or admin → 200; another session's or a publish token →
    403; none or invalid → 401; unknown session → 404, also for its own watch token."""
    for suffix in ("report", "report.html"):
        path = f"/v1/sessions/stored/{suffix}"
        assert (await get(service, path, headers=service.auth("admin")))[0] == 200
        assert (await get(service, path, headers=service.auth("watch", "stored")))[0] == 200
        token = service.token("watch", "stored")
        assert (await get(service, path, params={"token": token}))[0] == 200
        assert (await get(service, path, headers=service.auth("watch", "other")))[0] == 403
        publish = service.auth("publish", "stored", "client")
        assert (await get(service, path, headers=publish))[0] == 403
        assert (await get(service, path))[0] == 401
        assert (await get(service, path, headers={"Authorization": "Bearer nope"}))[0] == 401
        unknown = f"/v1/sessions/unknown/{suffix}"
        assert (await get(service, unknown, headers=service.auth("admin")))[0] == 404
        assert (await get(service, unknown, headers=service.auth("watch", "unknown")))[0] == 404


async def test_stored_report_json(stored: Backend, service: Service) -> None:
    """The JSON of a stored report, and a crash leftover marked interrupted at start."""
    status, doc = await get(service, "/v1/sessions/stored/report", headers=service.auth("admin"))
    assert status == 200
    assert doc["id"] == "stored" and doc["end_reason"] == "ended"
    assert doc["duration_seconds"] == 60.0
    assert doc["legs"]["client"]["dropouts_in_speech"] == 2
    assert doc["degraded_ratio"] == pytest.approx(6 / 60)
    assert doc["quality_degraded_ratio"] == pytest.approx(10 / 60)
    assert len(doc["timeline"]["points"]["client"]) == 12
    assert doc["warnings"][0]["kind"] == "high_loss"
    # Percentages as CLDR writes them in English (41%); German would say 41 %.
    assert "client talk share 41%" in doc["summary"]
    assert "2 dropouts while the client was speaking" in doc["summary"]
    assert "degraded for 17% of the session" in doc["summary"]
    status, crashed = await get(
        service, "/v1/sessions/crashed/report", headers=service.auth("admin")
    )
    assert status == 200
    assert crashed["end_reason"] == "interrupted"
    assert crashed["ended_at"] == crashed["checkpoint_at"]


async def test_report_list_is_admin_only_and_validated(stored: Backend, service: Service) -> None:
    status, doc = await get(service, "/v1/reports", headers=service.auth("admin"))
    assert status == 200
    assert {r["id"] for r in doc["reports"]} == {"stored", ODD_ID, "crashed"}
    status, doc = await get(
        service,
        "/v1/reports",
        params={"since": iso(STARTED + 90), "limit": "1"},
        headers=service.auth("admin"),
    )
    assert status == 200 and [r["id"] for r in doc["reports"]] == ["crashed"]
    assert (await get(service, "/v1/reports", headers=service.auth("watch", "stored")))[0] == 403
    assert (await get(service, "/v1/reports"))[0] == 401
    for bad in (
        {"since": "yesterday"},
        {"until": "2026-13-01"},
        {"limit": "0"},
        {"limit": "abc"},
        {"limit": "100000"},
        {"since": "2026-02-01", "until": "2026-01-01"},
    ):
        assert (await get(service, "/v1/reports", params=bad, headers=service.auth("admin")))[
            0
        ] == 400, bad


# -- the page in a real browser ----------------------------------------------------


@SQLITE_ONLY
async def test_html_report_renders_in_chromium(stored: Backend, service: Service) -> None:
    """No console errors, one SVG lane per role, marks drawn, the odd id shown as text."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium is not installed (Debian package `chromium`)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("playwright is not installed")
    token = service.token("watch", ODD_ID)
    url = f"{service.url}/v1/sessions/{quote(ODD_ID, safe='')}/report.html?token={token}"
    errors: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            response = await page.goto(url)
            assert response is not None and response.status == 200
            lanes = page.locator("svg g.lane")
            assert await lanes.count() == 2
            roles = [await lanes.nth(i).get_attribute("data-role") for i in range(2)]
            assert roles == ["therapist", "client"]
            client = page.locator('svg g.lane[data-role="client"]')
            assert await client.locator(".dropout").count() == 2
            assert await client.locator(".warning").count() == 1
            assert await client.locator("rect.quality.fair, rect.quality.poor").count() == 2
            assert await client.locator("rect.speech").count() == 2
            assert await page.locator("h1").inner_text() == f"Session report: {ODD_ID}"
            assert await page.locator("h1 b").count() == 0
            summary = await page.locator(".summary").inner_text()
            assert "2 dropouts while the client was speaking" in summary
            await page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            await browser.close()
    assert errors == []
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


# -- the command line --------------------------------------------------------------


def run_cli(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUALMON_")}
    env["QUALMON_DB"] = db
    return subprocess.run(
        [sys.executable, "-m", "qualmon.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_report_prints_the_summary(stored: Backend) -> None:
    """`qualmon report ID` prints the plain summary; --json the API's document."""
    result = run_cli("report", "stored", db=stored.target)
    assert result.returncode == 0, result.stderr
    assert "Session stored: ended" in result.stdout
    assert "2 dropouts while the client was speaking" in result.stdout
    assert "client" in result.stdout and "therapist" in result.stdout
    result = run_cli("report", "stored", "--json", db=stored.target)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["id"] == "stored" and doc["legs"]["client"]["dropouts"] == 2
    missing = run_cli("report", "nobody", db=stored.target)
    assert missing.returncode == 1 and "nobody" in missing.stderr


def test_cli_report_speaks_the_asked_language(stored: Backend) -> None:
    """--lang (else QUALMON_LOCALE) for the clinician summary; a language without a catalog
    is exit 2 before the store is opened."""
    result = run_cli("report", "stored", "--lang", "de", db=stored.target)
    assert result.returncode == 0, result.stderr
    assert "2 Aussetzer, während die Klient:in sprach." in result.stdout
    result = run_cli("report", "stored", "--json", "--lang", "fr", db=stored.target)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["summary"].startswith("Séance de 60\u00a0secondes")
    result = run_cli("report", "stored", "--lang", "ja", db=stored.target)
    assert result.returncode == 2 and "no catalog for 'ja'" in result.stderr


def test_cli_report_names_a_missing_sqlite_store(tmp_path: Path) -> None:
    nowhere = run_cli("report", "stored", db=str(tmp_path / "absent.db"))
    assert nowhere.returncode == 2 and "absent.db" in nowhere.stderr
    assert not (tmp_path / "absent.db").exists()


def test_cli_on_an_unreachable_postgresql_names_the_host_not_the_password() -> None:
    """A server that is not there: exit 2 and one line naming the host; the URL's password
    is printed nowhere."""
    secret = "pw-" + "z" * 20
    dsn = f"postgresql://qualmon:{secret}@127.0.0.1:{free_port()}/reports"
    for args in (("report", "stored"), ("purge", "--before", "2020-01-01")):
        result = run_cli(*args, db=dsn)
        assert result.returncode == 2, result
        assert "cannot open the report store PostgreSQL at 127.0.0.1" in result.stderr
        assert secret not in result.stderr + result.stdout


def test_cli_purge_removes_before_a_date(stored: Backend) -> None:
    """Only reports of sessions ended before the date go; the count is printed."""
    result = run_cli("purge", "--before", "2020-01-01", db=stored.target)
    assert result.returncode == 0, result.stderr
    assert "removed 0 reports" in result.stdout
    # Both 60 s sessions ended at STARTED + 60; the open one is never purged.
    result = run_cli("purge", "--before", str(iso(STARTED + 90)), db=stored.target)
    assert result.returncode == 0, result.stderr
    assert "removed 2 reports" in result.stdout
    store = stored.open()
    assert [r.session_id for r in store.list_reports()] == ["crashed"]
    store.close()
    bad = run_cli("purge", "--before", "last week", db=stored.target)
    assert bad.returncode == 2 and "--before" in bad.stderr


# -- validation and the warning timeline -------------------------------------------


async def test_report_list_limit_takes_ascii_digits_only(service: Service) -> None:
    """Digits int() refuses ('²') or cannot be bothered with (5000 of them) → 400, not 500."""
    for bad in ("²", "1²", "٣", "+5", " 5", "1" * 5000, "0" * 5 + "1"):
        status, body = await get(
            service, "/v1/reports", params={"limit": bad}, headers=service.auth("admin")
        )
        assert status == 400, (bad[:10], body)
        assert "limit must be an integer" in body
    status, _ = await get(
        service, "/v1/reports", params={"limit": "0100"}, headers=service.auth("admin")
    )
    assert status == 200


async def test_warning_open_at_the_end_is_stored_with_its_own_time(backend: Backend) -> None:
    """A warning still raised when its session ends: stored at the event's time, open, and
    forgotten by the timeline once the session is over."""
    settings = make_settings(db_path=backend.target, lost_after_seconds=3.0)
    async with run_service(settings) as service:
        service.app[limiter_key].min_interval_seconds = 0.0
        token = service.token("publish", "open", "client")
        for i in range(3):
            status, text, _ = await post_sample(
                service, "open", sample(i, audible_per_interval=4800), token=token
            )
            assert status == 204, text

        async def raised() -> list[dict[str, Any]]:
            doc = await service.session_json("open")
            return [w for w in doc["warnings"] if w["kind"] == "audible_concealment"]

        (live,) = await wait_for(raised, timeout=5.0, what="audible_concealment raised")
        timeline = service.app[timeline_key]
        assert list(timeline.raised) == [("open", "audible_concealment", "client")]

        async def ended() -> bool:
            return (await service.session_json("open"))["state"] == "ended"

        await wait_for(ended, timeout=8.0, what="the probe-only session ended")
        await wait_for(lambda: not timeline.raised, timeout=2.0, what="the timeline forgot it")
        report = await service.app[store_key].run(lambda s: s.load("open"))
        assert report is not None
        (stored,) = [w for w in report.warnings if w.kind == "audible_concealment"]
        assert iso(stored.raised_at) == live["at"]  # the report and the stream agree
        assert stored.cleared_at is None
