"""A real Janus 1.1.2 (Debian's `janus`) for the tests: loopback only, free ports, its event
handler posting to a URL given at start.

Janus skips interfaces flagged loopback when it gathers ICE candidates; `lo_shim.c` (built
here with gcc into a temp dir, loaded with LD_PRELOAD) clears that flag, so a Janus limited
to 127.0.0.1 gathers a host candidate there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

HERE = Path(__file__).parent
JANUS = "/usr/bin/janus"
ROOM = 1234
ROOM_SECRET = "room-secret-for-tests"
ADMIN_KEY = "admin-key-for-tests"


def unavailable() -> str | None:
    """Why Janus cannot run here (one line), or None."""
    if not os.path.exists(JANUS):
        return "Debian package janus is not installed (make test installs it as root)"
    if shutil.which("gcc") is None:
        return "gcc is needed to build the loopback shim for Janus"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_range(count: int) -> tuple[int, int]:
    """`count` consecutive UDP ports that are free now (a start within the ephemeral-free
    band, checked port by port)."""
    for first in range(21000 + os.getpid() % 500 * 40, 60000, count):
        socks = []
        try:
            for port in range(first, first + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return first, first + count - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP range")


@dataclass
class Janus:
    url: str
    "The HTTP API, e.g. http://127.0.0.1:PORT/janus."
    process: asyncio.subprocess.Process
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _build_shim(folder: Path) -> Path:
    shim = folder / "lo_shim.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O2", "-o", str(shim), str(HERE / "lo_shim.c"), "-ldl"],
        check=True,
        capture_output=True,
    )
    return shim


def _write_config(folder: Path, values: dict[str, str]) -> None:
    for template in (HERE / "conf").glob("*.jcfg"):
        text = template.read_text()
        for name, value in values.items():
            text = text.replace("{" + name + "}", value)
        (folder / template.name).write_text(text)


@contextlib.asynccontextmanager
async def running_janus(
    *, backend: str, events_secret: str, http_port: int | None = None
) -> AsyncIterator[Janus]:
    """Janus started on free ports, its events posted to `backend`; stopped (and waited
    for) on exit. Start the receiver of `backend` before this and keep it until after."""
    with tempfile.TemporaryDirectory(prefix="qualmon-janus-") as tmp:
        folder = Path(tmp)
        shim = _build_shim(folder)
        conf = folder / "conf"
        conf.mkdir()
        http_port = http_port or free_port()
        first, last = free_udp_range(200)
        _write_config(
            conf,
            {
                "conf": str(conf),
                "rtp_ports": f"{first}-{last}",
                "backend": backend,
                "events_secret": events_secret,
                "admin_key": ADMIN_KEY,
                "room_secret": ROOM_SECRET,
                "http_port": str(http_port),
            },
        )
        log = folder / "janus.log"
        env = {**os.environ, "LD_PRELOAD": str(shim)}
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                JANUS, "-F", str(conf), "-C", str(conf / "janus.jcfg"), "-o",
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        janus = Janus(url=f"http://127.0.0.1:{http_port}/janus", process=process, log=log)
        try:
            await _wait_ready(janus)
            yield janus
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(process.wait(), 10)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def _wait_ready(janus: Janus, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            if janus.process.returncode is not None:
                raise RuntimeError(f"janus exited at start:\n{janus.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(janus.url + "/info") as r:
                    if r.status == 200:
                        return
            if loop.time() > deadline:
                raise RuntimeError(f"janus not ready after {timeout:g} s:\n{janus.log_tail()}")
            await asyncio.sleep(0.05)
