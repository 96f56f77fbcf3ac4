"""A real `qualmon serve` process for tests: this checkout's code, its output kept in files."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from qualmon.service.auth import issue_token
from qualmon.sim.publisher import WhipError, WhipPublisher

from ..conftest import SECRET, wait_for
from ..privacy import leaks, store_bytes

CLI = (sys.executable, "-m", "qualmon.cli")
CHECKOUT = Path(__file__).resolve().parent.parent.parent
"The qualmon these tests belong to (a git worktree's, not the one the venv installed)."
EXIT_BUDGET_SECONDS = 10.0
DAC_CAPS = "dac_override,dac_read_search"
"What lets root ignore file permissions."


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def without_file_permission_override() -> tuple[str, ...] | None:
    """A command prefix under which file permissions bind this process's children (root
    ignores them unless it gives up CAP_DAC_OVERRIDE); None if that cannot be arranged."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    drop = ",".join("-" + cap for cap in DAC_CAPS.split(","))
    return (setpriv, f"--bounding-set={drop}", "--")


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
        warnings = [
            {"kind": kind, "role": role or None, "raised_at": raised, "cleared_at": cleared}
            for kind, role, raised, cleared in conn.execute(
                "SELECT kind, role, raised_at, cleared_at FROM warnings WHERE report_id = ?"
                " ORDER BY raised_at",
                (row[0],),
            )
        ]
        (points,) = conn.execute(
            "SELECT count(*) FROM timeline WHERE report_id = ?", (row[0],)
        ).fetchone()
    return {
        "checkpoint_at": row[1],
        "ended_at": row[2],
        "end_reason": row[3],
        "legs": legs,
        "warnings": warnings,
        "points": points,
    }


def has_media_checkpoint(db: Path, session_id: str, roles: tuple[str, ...]) -> bool:
    rows = stored_rows(db, session_id)
    return bool(rows and all(rows["legs"].get(r, {}).get("packets_received", 0) > 0 for r in roles))


@dataclass
class Server:
    """A `qualmon serve` subprocess; its stdout and stderr are copied into files through
    pipes (a file-size limit put on the server does not cut its log short)."""

    proc: asyncio.subprocess.Process
    url: str
    logs: list[Path]
    _copies: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def whip_url(self) -> str:
        return self.url + "/whip"

    async def wait(self) -> int:
        """Its exit code, once its output is all in the files."""
        code = await self.proc.wait()
        await asyncio.gather(*self._copies)
        return code

    def stderr(self) -> str:
        return self.logs[1].read_text(errors="replace")


async def _copy(stream: asyncio.StreamReader, path: Path) -> None:
    # Opened once per server, written a line at a time: not worth a thread.
    with open(path, "ab") as out:  # noqa: ASYNC230
        while line := await stream.readline():
            out.write(line)
            out.flush()


class Harness:
    """Starts servers on one store, publishes to them, remembers every token it used."""

    def __init__(self, tmp_path: Path, *, db_url: str | None = None) -> None:
        self.tmp = tmp_path
        self.db = tmp_path / "reports.db"
        self.db_url = db_url
        "A PostgreSQL URL the servers share instead of the SQLite file `db`."
        self.tokens: list[str] = []
        self.logs: list[Path] = []
        self.publishers: list[WhipPublisher] = []
        self.urls: list[str] = []
        "Every server's base URL: each advertised it in the store's instances table."
        self._runs = 0

    def token(self, scope: str, session: str | None = None, role: str | None = None) -> str:
        token = issue_token(SECRET, scope=scope, session=session, role=role, ttl_seconds=600)
        self.tokens.append(token)
        return token

    def admin(self) -> dict[str, str]:
        return {"Authorization": "Bearer " + self.token("admin")}

    @contextlib.asynccontextmanager
    async def serve(
        self, *, prefix: Sequence[str] = (), args: Sequence[str] = (), **env_extra: str
    ) -> AsyncIterator[Server]:
        """`qualmon serve *args` on a free port with this harness's store; `prefix` runs it
        under another command (see without_file_permission_override).

        SIGTERM begins a drain that waits for live legs: unless a test sets
        QUALMON_DRAIN_SECONDS itself, the drain is over at once, so SIGTERM tests exercise
        the shutdown path as before (legs end as `shutdown` within the exit budget)."""
        self._runs += 1
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUALMON_")}
        env["QUALMON_DRAIN_SECONDS"] = "0.001"
        env.update(
            QUALMON_SECRET=SECRET,
            QUALMON_DB=self.db_url or str(self.db),
            QUALMON_PORT=str(port),
            QUALMON_ICE_ADDRESSES="127.0.0.1",
            PYTHONPATH=os.pathsep.join(filter(None, [str(CHECKOUT), env.get("PYTHONPATH")])),
        )
        env.update(env_extra)
        out = self.tmp / f"serve{self._runs}.stdout"
        err = self.tmp / f"serve{self._runs}.stderr"
        self.logs += [out, err]
        proc = await asyncio.create_subprocess_exec(
            *prefix,
            *CLI,
            "serve",
            *args,
            env=env,
            cwd=self.tmp,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        copies = [
            asyncio.create_task(_copy(proc.stdout, out)),
            asyncio.create_task(_copy(proc.stderr, err)),
        ]
        server = Server(proc, f"http://127.0.0.1:{port}", [out, err], copies)
        self.urls.append(server.url)
        try:
            async with aiohttp.ClientSession() as http:

                async def healthy() -> bool:
                    if proc.returncode is not None:
                        await server.wait()
                        raise AssertionError(f"serve exited early:\n{server.stderr()}")
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
            await server.wait()

    async def publish(self, server: Server, session: str, role: str) -> WhipPublisher:
        publisher = WhipPublisher(url=server.whip_url, token=self.token("publish", session, role))
        self.publishers.append(publisher)
        await publisher.start()
        return publisher

    async def publish_retrying(
        self, server: Server, session: str, role: str, *, timeout: float = 30.0
    ) -> WhipPublisher:
        """Publish, trying again after a 503 (the session's owner is gone and its lease not
        yet run out) as a WHIP client honouring Retry-After would, for at most `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return await self.publish(server, session, role)
            except WhipError as exc:
                if exc.status != 503 or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.25)

    async def close_publishers(self) -> None:
        for publisher in self.publishers:
            await publisher.stop(delete=False)
        self.publishers.clear()

    def assert_nothing_leaked(self) -> None:
        """No SDP, address or token in the store or in anything the server printed."""
        assert leaks(store_bytes(self.db), self.tokens, own_urls=self.urls) == []
        for log in self.logs:
            # aiohttp's start-up line names the listening address the operator chose.
            text = b"\n".join(
                line
                for line in log.read_bytes().splitlines()
                if not line.startswith(b"Running on http://")
            )
            assert leaks(text, self.tokens) == [], (log.name, text.decode(errors="replace"))
