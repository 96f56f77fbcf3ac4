"""Restart safety: reports saved on SIGTERM, crash leftovers marked interrupted on start."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from qualmon.config import Settings
from qualmon.core.instants import iso

from ..conftest import Service, make_settings, wait_for
from .serving import EXIT_BUDGET_SECONDS, Harness, has_media_checkpoint, stored_rows

pytestmark = pytest.mark.realtime


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(tmp_path)
    try:
        yield h
    finally:
        await h.close_publishers()


async def test_sigterm_saves_every_report_and_exits(harness: Harness) -> None:
    """Two live sessions, SIGTERM: exit 0 within 10 s, both reports ended as `shutdown`."""
    sessions = {"first": ("therapist", "client"), "second": ("client",)}
    async with harness.serve() as server:
        for session, roles in sessions.items():
            for role in roles:
                await harness.publish(server, session, role)
        for session, roles in sessions.items():
            await wait_for(
                lambda s=session, r=roles: has_media_checkpoint(harness.db, s, r),
                timeout=10.0,
                what=f"a checkpoint of {session} with media",
            )
        server.proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = await asyncio.wait_for(server.wait(), EXIT_BUDGET_SECONDS)
        assert code == 0, server.stderr()
        assert time.monotonic() - started < EXIT_BUDGET_SECONDS
    for session, roles in sessions.items():
        rows = stored_rows(harness.db, session)
        assert rows is not None
        assert rows["end_reason"] == "shutdown" and rows["ended_at"] is not None, rows
        assert set(rows["legs"]) == set(roles)
        for leg in rows["legs"].values():
            assert leg["end_reason"] == "shutdown" and leg["packets_received"] > 0
    harness.assert_nothing_leaked()


async def test_kill_9_then_restart_marks_the_session_interrupted(harness: Harness) -> None:
    """A crash mid-session: on the next start the report is `interrupted`, ending at its last
    checkpoint with that checkpoint's numbers."""
    async with harness.serve() as server:
        await harness.publish(server, "crashing", "client")
        await wait_for(
            lambda: has_media_checkpoint(harness.db, "crashing", ("client",)),
            timeout=10.0,
            what="a checkpoint with media",
        )
        server.proc.kill()
        await server.wait()
    last = stored_rows(harness.db, "crashing")  # what the dead process left: its last checkpoint
    assert last is not None and last["ended_at"] is None
    await harness.close_publishers()

    async with harness.serve() as server, aiohttp.ClientSession() as http:
        admin = {"Authorization": "Bearer " + harness.token("admin")}

        async def interrupted() -> dict[str, Any] | None:
            async with http.get(server.url + "/v1/sessions/crashing/report", headers=admin) as r:
                assert r.status == 200, await r.text()
                doc: dict[str, Any] = await r.json()
            return doc if doc["end_reason"] == "interrupted" else None

        # The dead process's lease (6 s) may outlive the restart: its report is marked at
        # start, or by the next sweep after the lease ran out (every 10 s).
        report = await wait_for(interrupted, timeout=40.0, what="the report marked interrupted")
        assert report["state"] == "ended"
        assert report["ended_at"] == report["checkpoint_at"]
        client = report["legs"]["client"]
        assert client["packets_received"] == last["legs"]["client"]["packets_received"]
        assert client["end_reason"] is None  # it never ended: the process died under it
        server.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.wait(), EXIT_BUDGET_SECONDS) == 0
    harness.assert_nothing_leaked()


# -- in process: what on_shutdown does before the server goes away ----------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(db_path=str(tmp_path / "reports.db"))


async def test_shutdown_saves_reports_before_cleanup_and_refuses_offers(
    service: Service, publishers: Any, tmp_path: Path
) -> None:
    """on_shutdown closes the legs and writes every final report; a WHIP POST arriving
    meanwhile gets 503 with Retry-After."""
    for session in ("one", "two"):
        await publishers(service, session, "client")
    await wait_for(
        lambda: all(
            leg.stats.packets_received > 20 for leg in service.sessions.legs_by_resource.values()
        ),
        what="media on both legs",
    )
    await service.app.shutdown()
    for session in ("one", "two"):
        rows = stored_rows(tmp_path / "reports.db", session)
        assert rows is not None and rows["end_reason"] == "shutdown", rows
    async with service.http.post(
        service.whip_url,
        data="v=0\r\n",
        headers={
            "Content-Type": "application/sdp",
            "Authorization": "Bearer " + service.token("publish", "late", "client"),
        },
    ) as r:
        assert r.status == 503
        assert int(r.headers["Retry-After"]) > 0


# -- a session cut off by a dead instance goes on where its participants reconnect --------


def _stored_speech(db: Path, session_id: str) -> dict[str, list[tuple[float, float]]]:
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        rows = conn.execute(
            "SELECT s.role, s.start_seconds, s.end_seconds FROM speech s"
            " JOIN reports r USING (report_id) WHERE r.session_id = ? ORDER BY s.role, s.idx",
            (session_id,),
        ).fetchall()
    speech: dict[str, list[tuple[float, float]]] = {}
    for role, start, end in rows:
        speech.setdefault(role, []).append((start, end))
    return speech


def _report_starts(db: Path, session_id: str) -> list[float]:
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        rows = conn.execute(
            "SELECT started_at FROM reports WHERE session_id = ?", (session_id,)
        ).fetchall()
    return [r[0] for r in rows]


async def test_kill_9_then_reconnect_elsewhere_continues_the_report(harness: Harness) -> None:
    """The instance measuring a session is killed; both participants reconnect to the next
    one (same store). The session goes on under its report: same start, the first part's
    totals and speech carried over, the move counted as one reconnect per role, one report."""
    roles = ("therapist", "client")
    async with harness.serve() as server:
        for role in roles:
            await harness.publish(server, "moving", role)
        await wait_for(
            lambda: (
                has_media_checkpoint(harness.db, "moving", roles)
                and set(_stored_speech(harness.db, "moving")) == set(roles)
            ),
            timeout=40.0,
            what="a checkpoint with media and both roles' speech",
        )
        server.proc.kill()
        await server.wait()
    first = stored_rows(harness.db, "moving")
    first_speech = _stored_speech(harness.db, "moving")
    (started_at,) = _report_starts(harness.db, "moving")
    assert first is not None and first["ended_at"] is None
    await harness.close_publishers()

    async with harness.serve() as server, aiohttp.ClientSession() as http:
        admin = {"Authorization": "Bearer " + harness.token("admin")}
        # The dead instance still owns the session until its lease runs out (6 s): until
        # then an offer is answered 503 + Retry-After, and a client tries again.
        publishers = [await harness.publish_retrying(server, "moving", role) for role in roles]

        async def session() -> dict[str, Any]:
            async with http.get(server.url + "/v1/sessions/moving", headers=admin) as r:
                assert r.status == 200, await r.text()
                body: dict[str, Any] = await r.json()
                return body

        def grown(doc: dict[str, Any]) -> bool:
            return all(
                doc["legs"][role]["packets_received"] > first["legs"][role]["packets_received"] + 50
                for role in roles
            )

        live = await wait_for(
            lambda: _if(session(), grown), timeout=20.0, what="media on the continued session"
        )
        assert live["started_at"] == iso(started_at)  # the report's start, not the move's
        for role in roles:
            assert live["legs"][role]["reconnects"] == 1
        for publisher in publishers:
            await publisher.stop(delete=True)
        async with http.get(server.url + "/v1/sessions/moving/report", headers=admin) as r:
            assert r.status == 200, await r.text()
            report = await r.json()
        server.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.wait(), EXIT_BUDGET_SECONDS) == 0
    assert _report_starts(harness.db, "moving") == [started_at]  # one report, not two
    assert report["end_reason"] == "ended", report
    final_speech = _stored_speech(harness.db, "moving")
    for role in roles:
        leg = report["legs"][role]
        assert leg["packets_received"] > first["legs"][role]["packets_received"] + 50
        assert leg["reconnects"] == 1
        # The first part's speech is kept as it was stored, and the second part adds to it.
        kept = final_speech[role][: len(first_speech[role])]
        assert kept == first_speech[role]
        assert len(final_speech[role]) > len(first_speech[role])
    harness.assert_nothing_leaked()


async def _if(value: Awaitable[dict[str, Any]], test: Callable[[dict[str, Any]], bool]) -> Any:
    doc = await value
    return doc if test(doc) else None
