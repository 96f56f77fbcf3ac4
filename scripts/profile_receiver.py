"""Profile the bench receiver under load: py-spy's collapsed stacks of one receiver mode.

`python scripts/profile_receiver.py MODE LEGS SECONDS OUT.txt` starts the bench receiver
(`qualmon.bench.receiver`) in MODE (bare, network, qualmon), publishes LEGS legs of
pre-encoded Opus to it as `qualmon bench` does, waits for the warm-up and then samples the
receiver with `py-spy record --format raw` (collapsed stacks) for
SECONDS (`qualmon bench --connect --profile`'s recorder, Python frames only).
`scripts/top_frames.py OUT.txt` summarises the file.
"""

from __future__ import annotations

import asyncio
import secrets
import sys

import aiohttp

from qualmon.bench.connect import py_spy
from qualmon.bench.pipeline import WARMUP_SECONDS, publish_legs, spawn_receiver, wait_healthy
from qualmon.bench.procfs import free_port
from qualmon.sim.audio import speech_like_packets
from qualmon.sim.publisher import WhipPublisher


async def main(mode: str, legs: int, seconds: float, out: str) -> None:
    port, secret = free_port(), secrets.token_hex(32)
    proc = await spawn_receiver(mode, port, secret)
    url = f"http://127.0.0.1:{port}"
    publishers: list[WhipPublisher] = []
    try:
        async with aiohttp.ClientSession() as http:
            await wait_healthy(http, url, proc)
            await publish_legs(http, url, secret, legs, publishers, packets=speech_like_packets())
            await asyncio.sleep(WARMUP_SECONDS)
            spy = await py_spy(proc.pid, out, seconds)  # as `qualmon bench --connect --profile`
            if spy is None:
                raise SystemExit("py-spy not found")
            await spy.wait()
            for p in publishers:
                await p.stop()
    finally:
        for p in publishers:
            await p.pc.close()
        proc.terminate()
        await proc.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]))
