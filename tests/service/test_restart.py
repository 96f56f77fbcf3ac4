"""Restart safety: reports saved on SIGTERM, crash leftovers marked interrupted on start."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
import pytest

from qualmon.config import Settings
from qualmon.service.auth import issue_token
from qualmon.sim.publisher import WhipPublisher

from ..conftest import SECRET, Service, make_settings, wait_for
from ..privacy import leaks, store_bytes

pytestmark = pytest.mark.realtime

CLI = (sys.executable, "-m", "qualmon.cli")
EXIT_BUDGET_SECONDS = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stored_rows(db: Path, session_id: str) -> dict[str, Any] | None:
    """The session's report row and per-role packet counts, read as another process would."""
    if not db.exists():
        return None
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        row = conn.execute(
            "SELECT report_id, checkpoint_at, ended_at, end_reason FROM reports"
            " WHERE session_id = ? ORDER BY started_at DESC LIMIT 1",
            (session_id,),
        ).fetchone()
        if row is None:
            return None
        legs = {
            role: {"packets_received": received, "end_reason": reason}
            for role, received, reason in conn.execute(
                "SELECT role, packets_received, end_reason FROM legs WHERE report_id = ?",
                (row[0],),
            )
        }
    return {"checkpoint_at": row[1], "ended_at": row[2], "end_reason": row[3], "legs": legs}


def has_media_checkpoint(db: Path, session_id: str, roles: tuple[str, ...]) -> bool:
    rows = stored_rows(db, session_id)
    return bool(rows and all(rows["legs"].get(r, {}).get("packets_received", 0) > 0 for r in roles))


def writable(path: Path) -> BinaryIO:
    # A local file opened once per process start; not worth a thread.
    return open(path, "wb")


@dataclass
class Server:
    """A `qualmon serve` subprocess with its output in files."""

    proc: asyncio.subprocess.Process
    url: str
    logs: list[Path]

    @property
    def whip_url(self) -> str:
        return self.url + "/whip"


class Harness:
    """Starts servers on one store, publishes to them, remembers every token it used."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.db = tmp_path / "reports.db"
        self.tokens: list[str] = []
        self.logs: list[Path] = []
        self.publishers: list[WhipPublisher] = []
        self._runs = 0

    def token(self, scope: str, session: str | None = None, role: str | None = None) -> str:
        token = issue_token(SECRET, scope=scope, session=session, role=role, ttl_seconds=600)
        self.tokens.append(token)
        return token

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[Server]:
        self._runs += 1
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUALMON_")}
        env.update(
            QUALMON_SECRET=SECRET,
            QUALMON_DB=str(self.db),
            QUALMON_PORT=str(port),
            QUALMON_ICE_ADDRESSES="127.0.0.1",
        )
        out = self.tmp / f"serve{self._runs}.stdout"
        err = self.tmp / f"serve{self._runs}.stderr"
        self.logs += [out, err]
        with writable(out) as stdout, writable(err) as stderr:
            proc = await asyncio.create_subprocess_exec(
                *CLI, "serve", env=env, cwd=self.tmp, stdout=stdout, stderr=stderr
            )
        server = Server(proc, f"http://127.0.0.1:{port}", [out, err])
        try:
            async with aiohttp.ClientSession() as http:

                async def healthy() -> bool:
                    if proc.returncode is not None:
                        raise AssertionError(f"serve exited early:\n{err.read_text()}")
                    try:
                        async with http.get(server.url + "/healthz") as r:
                            return r.status == 200
                    except aiohttp.ClientError:
                        return False

                await wait_for(healthy, timeout=30.0, what="qualmon serve to answer /healthz")
            yield server
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    async def publish(self, server: Server, session: str, role: str) -> WhipPublisher:
        publisher = WhipPublisher(url=server.whip_url, token=self.token("publish", session, role))
        self.publishers.append(publisher)
        await publisher.start()
        return publisher

    async def close_publishers(self) -> None:
        for publisher in self.publishers:
            await publisher.stop(delete=False)
        self.publishers.clear()

    def assert_nothing_leaked(self) -> None:
        """No SDP, address or token in the store or in anything the server printed."""
        assert leaks(store_bytes(self.db), self.tokens) == []
        for log in self.logs:
            # aiohttp's start-up line names the listening address the operator chose.
            text = b"\n".join(
                line
                for line in log.read_bytes().splitlines()
                if not line.startswith(b"Running on http://")
            )
            assert leaks(text, self.tokens) == [], (log.name, text.decode(errors="replace"))


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
        code = await asyncio.wait_for(server.proc.wait(), EXIT_BUDGET_SECONDS)
        assert code == 0, server.logs[1].read_text()
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
        await server.proc.wait()
    last = stored_rows(harness.db, "crashing")  # what the dead process left: its last checkpoint
    assert last is not None and last["ended_at"] is None
    await harness.close_publishers()

    async with harness.serve() as server, aiohttp.ClientSession() as http:
        admin = {"Authorization": "Bearer " + harness.token("admin")}
        async with http.get(server.url + "/v1/sessions/crashing/report", headers=admin) as r:
            assert r.status == 200, await r.text()
            report = await r.json()
        assert report["end_reason"] == "interrupted" and report["state"] == "ended"
        assert report["ended_at"] == report["checkpoint_at"]
        client = report["legs"]["client"]
        assert client["packets_received"] == last["legs"]["client"]["packets_received"]
        assert client["end_reason"] is None  # it never ended: the process died under it
        server.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.proc.wait(), EXIT_BUDGET_SECONDS) == 0
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
