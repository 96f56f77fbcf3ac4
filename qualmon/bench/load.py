"""Live legs for the API-scale benches, held by a process of their own.

`python -m qualmon.bench.load --url URL --legs N --prefix P` (token secret in QUALMON_SECRET)
publishes N WHIP legs, two per session (`P-0` therapist, `P-0` client, `P-1` …), each sending
Opus DTX: one 3-byte packet of silence every 400 ms with the RTP timestamp moved on by 400 ms,
as a silent participant's browser does (2.5 packets a second instead of 50: 250 full-rate
legs and their publishers would not fit on a 2-core machine). qualmon's no-media timers see
a packet every 0.4 s, well inside `stall_after_seconds` (2 s). It prints one JSON line once
every leg is up (`{"connected": n, "failed": m, "seconds": t}`), then holds them until
SIGTERM or its parent's exit. Its own process, so that its CPU is apart from the receiver's
and from the connects the bench times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass

import aiohttp

from ..media.ice import use_host_addresses
from ..service.auth import issue_token
from ..sim.audio import DTX_EVERY_PACKETS, EncodedAudioTrack, dtx_packets
from ..sim.publisher import WhipError, WhipPublisher
from .pipeline import ROLES
from .procfs import cpu_seconds

READY_TIMEOUT_SECONDS = 900.0


def dtx_publisher(
    url: str, secret: str, session: str, role: str, http: aiohttp.ClientSession
) -> WhipPublisher:
    """A WHIP publisher of a silent participant with DTX (module doc)."""
    token = issue_token(secret, scope="publish", session=session, role=role, ttl_seconds=86400)
    track = EncodedAudioTrack(dtx_packets(), every_packets=DTX_EVERY_PACKETS)
    return WhipPublisher(url=url + "/whip", token=token, track=track, http=http)


async def hold(url: str, secret: str, legs: int, prefix: str, concurrency: int) -> None:
    publishers: list[WhipPublisher] = []
    failed = 0
    gate = asyncio.Semaphore(concurrency)
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def one(i: int) -> None:
            nonlocal failed
            async with gate:
                publisher = dtx_publisher(url, secret, f"{prefix}-{i // 2}", ROLES[i % 2], http)
                publishers.append(publisher)
                try:
                    await publisher.start(timeout_seconds=60.0)
                except (WhipError, aiohttp.ClientError, OSError):
                    failed += 1

        await asyncio.gather(*(one(i) for i in range(legs)))
        connected = sum(1 for p in publishers if p.pc.connectionState == "connected")
        line = {"connected": connected, "failed": failed, "seconds": time.monotonic() - started}
        print(json.dumps(line), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        parent = os.getppid()
        while not stop.is_set() and os.getppid() == parent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
        # The receiver goes with the bench; closing is all a leg needs here.
        await asyncio.gather(*(p.pc.close() for p in publishers), return_exceptions=True)


@dataclass
class LoadProcess:
    """A running load process (the parent's view)."""

    proc: asyncio.subprocess.Process
    connected: int
    failed: int
    connect_seconds: float

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30.0)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def start_load(
    url: str, secret: str, legs: int, prefix: str, *, concurrency: int = 4
) -> LoadProcess:
    """Start a load process and wait until it holds its legs (or gave up on some)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        "--url",
        url,
        "--legs",
        str(legs),
        "--prefix",
        prefix,
        "--concurrency",
        str(concurrency),
        env={**os.environ, "QUALMON_SECRET": secret},  # not in argv, where ps shows it
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        if proc.stdout is None:
            raise RuntimeError("load process without stdout")
        line = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT_SECONDS)
        if not line:
            raise RuntimeError("load process exited before its legs were up")
        doc = json.loads(line)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        raise
    return LoadProcess(proc, int(doc["connected"]), int(doc["failed"]), float(doc["seconds"]))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m qualmon.bench.load")
    parser.add_argument("--url", required=True)
    parser.add_argument("--legs", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    use_host_addresses(["127.0.0.1"])
    secret = os.environ.get("QUALMON_SECRET", "")
    asyncio.run(hold(args.url, secret, args.legs, args.prefix, args.concurrency))


if __name__ == "__main__":
    main()
