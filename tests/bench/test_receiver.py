"""The bench's receiver child process, run the way `qualmon bench` runs it."""

from __future__ import annotations

import ast
import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

import qualmon
from qualmon.bench import receiver

from ..conftest import wait_for

# The subprocesses import the qualmon this test imported (a worktree, not the installed one).
SOURCE_ROOT = Path(qualmon.__file__).parents[1]


def test_the_bare_receiver_loads_none_of_qualmons_service() -> None:
    """Its CPU and RSS are the baseline: building it imports no service, config or sessions."""
    code = (
        "import sys; from qualmon.bench.receiver import _bare_app; _bare_app(); "
        "print(sorted(m for m in sys.modules if m.startswith('qualmon.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=SOURCE_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = ast.literal_eval(result.stdout)
    assert "qualmon.media.ice" in loaded
    assert not [m for m in loaded if m.startswith(("qualmon.service", "qualmon.config"))]


async def test_the_receiver_runs_as_a_module_and_reports_its_lag() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        receiver.__name__,
        "--serve-mode",
        "bare",
        "--port",
        str(port),
        cwd=SOURCE_ROOT,
        env={**os.environ, "QUALMON_SECRET": ""},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:

            async def healthy() -> bool:
                if proc.returncode is not None:
                    raise AssertionError(f"receiver exited {proc.returncode}")
                try:
                    async with http.get(url + "/healthz") as r:
                        return r.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_for(healthy, timeout=30, what="the receiver's /healthz")
            lag = await wait_for(lambda: _lag(http, url), what="lag samples")
            assert lag["p99"] >= lag["p50"] >= 0
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def _lag(http: aiohttp.ClientSession, url: str) -> dict[str, float] | None:
    async with http.get(url + "/bench/lag") as r:
        doc: dict[str, float] = await r.json()
    return doc if doc["n"] > 0 else None
