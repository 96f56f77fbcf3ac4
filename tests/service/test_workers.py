"""`qualmon serve --workers N` and `qualmon drain`, as real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from qualmon.service.workers import MAX_BACKOFF_SECONDS, backoff_seconds

from ..conftest import SECRET, wait_for
from .serving import (
    CHECKOUT,
    CLI,
    EXIT_BUDGET_SECONDS,
    Harness,
    Server,
    free_port,
    has_media_checkpoint,
    stored_rows,
)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    yield Harness(tmp_path)


def pid_of(instance: str) -> int:
    """Instance ids are host-pid."""
    return int(instance.rsplit("-", 1)[1])


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


async def instances_seen(
    server: Server, until: int, *, exclude: set[str] = frozenset()
) -> set[str]:  # type: ignore[assignment]
    """Instance ids answering /healthz over fresh connections (the kernel spreads each new
    connection over the workers), until `until` ids not in `exclude` were seen."""
    seen: set[str] = set()
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def more() -> bool:
            try:
                async with http.get(server.url + "/healthz") as r:
                    if r.status == 200:
                        seen.add(r.headers["Qualmon-Instance"])
            except aiohttp.ClientError:
                pass
            return len(seen - exclude) >= until

        await wait_for(more, timeout=60.0, interval=0.02, what=f"{until} workers answering")
    return seen - exclude


def drain_cli(url: str, secret: str = SECRET) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUALMON_")}
    env.update(QUALMON_SECRET=secret, PYTHONPATH=str(CHECKOUT))
    return subprocess.run(
        [*CLI, "drain", "--url", url], env=env, capture_output=True, text=True, timeout=60
    )


def test_backoff_doubles_to_a_ceiling() -> None:
    assert [backoff_seconds(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert backoff_seconds(50) == MAX_BACKOFF_SECONDS


@pytest.mark.parametrize("count", ["0", "65", "two", "٢"])
def test_workers_are_counted_1_to_64(count: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUALMON_")}
    env.update(QUALMON_SECRET=SECRET, PYTHONPATH=str(CHECKOUT))
    result = subprocess.run(
        [*CLI, "serve", "--workers", count], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "--workers must be 1..64" in result.stderr and "Traceback" not in result.stderr


async def test_two_workers_share_the_port_restart_and_stop(harness: Harness) -> None:
    """Both workers answer on the one port; a worker killed with SIGKILL is replaced; SIGTERM
    to the supervisor drains both and it exits 0 once they are gone."""
    async with harness.serve(args=("--workers", "2")) as server:
        first = await instances_seen(server, 2)
        assert len(first) == 2
        victim = pid_of(sorted(first)[0])
        os.kill(victim, signal.SIGKILL)
        [replacement] = await instances_seen(server, 1, exclude=frozenset(first))
        assert pid_of(replacement) != victim
        workers = {pid_of(i) for i in first | {replacement}} - {victim}
        await wait_for(
            lambda: "exited with SIGKILL" in server.stderr(), timeout=10.0, what="the crash logged"
        )
        server.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(server.wait(), EXIT_BUDGET_SECONDS + 20.0)
        assert code == 0, server.stderr()
        assert not any(alive(pid) for pid in workers)
    assert "Traceback" not in server.stderr()


async def test_qualmon_drain_drains_every_worker(harness: Harness) -> None:
    """`qualmon drain` reaches one worker; it passes the drain on, so all exit and the
    supervisor with them (exit 0). A wrong secret is refused (exit 1) and drains nothing."""
    async with harness.serve(args=("--workers", "2")) as server:
        workers = {pid_of(i) for i in await instances_seen(server, 2)}
        refused = await asyncio.to_thread(drain_cli, server.url, "w" * 40)
        assert refused.returncode == 1 and "401" in refused.stderr, refused.stderr
        assert server.proc.returncode is None
        result = await asyncio.to_thread(drain_cli, server.url)
        assert result.returncode == 0, result.stderr
        assert '"state": "draining"' in result.stdout
        code = await asyncio.wait_for(server.wait(), EXIT_BUDGET_SECONDS + 20.0)
        assert code == 0, server.stderr()
        assert not any(alive(pid) for pid in workers)


def test_qualmon_drain_with_nothing_listening_fails() -> None:
    result = drain_cli(f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert (
        result.stderr.startswith("qualmon drain: cannot reach") and "Traceback" not in result.stderr
    )


async def test_a_worker_configuration_error_stops_the_supervisor(tmp_path: Path) -> None:
    """A store the workers cannot open fails every start alike: exit 2, no restart loop."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUALMON_")}
    env.update(
        QUALMON_SECRET=SECRET,
        QUALMON_PORT=str(free_port()),
        QUALMON_DB=str(tmp_path / "missing" / "dir" / "q.db"),
        PYTHONPATH=str(CHECKOUT),
    )
    proc = await asyncio.create_subprocess_exec(
        *CLI, "serve", "--workers", "2", env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60.0)
    text = err.decode(errors="replace")
    assert proc.returncode == 2, text
    assert "configuration error: stopping" in text and "restarting" not in text


@pytest.mark.realtime
async def test_sigterm_to_the_supervisor_drains_a_live_leg_then_saves_it(
    harness: Harness,
) -> None:
    """A live leg on one of two workers: SIGTERM to the supervisor, the leg's worker keeps
    measuring until QUALMON_DRAIN_SECONDS, then saves the report (`shutdown`); exit 0."""
    try:
        async with harness.serve(args=("--workers", "2"), QUALMON_DRAIN_SECONDS="3") as server:
            await instances_seen(server, 2)
            await harness.publish(server, "kept", "client")
            await wait_for(
                lambda: has_media_checkpoint(harness.db, "kept", ("client",)),
                timeout=20.0,
                what="a checkpoint with media",
            )
            server.proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(server.wait(), 3.0 + EXIT_BUDGET_SECONDS + 20.0)
            assert code == 0, server.stderr()
    finally:
        await harness.close_publishers()
    assert "drain time is up: ending 1 live legs" in server.stderr()
    rows = stored_rows(harness.db, "kept")
    assert rows is not None and rows["end_reason"] == "shutdown", rows
    assert rows["legs"]["client"]["packets_received"] > 0
