"""Profile the bench receiver under load: py-spy's collapsed stacks of one receiver mode.

`python scripts/profile_receiver.py MODE LEGS SECONDS OUT.txt` starts the bench receiver
(`qualmon.bench.receiver`) in MODE (bare, network, qualmon), publishes LEGS legs of
pre-encoded Opus to it as `qualmon bench` does, waits for the warm-up and then samples the
receiver with `py-spy record --format raw` (collapsed stacks, native frames included) for
SECONDS. `scripts/top_frames.py OUT.txt` summarises the file.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from pathlib import Path

import aiohttp

from qualmon.bench import receiver
from qualmon.bench.pipeline import WARMUP_SECONDS, publish_legs, wait_healthy
from qualmon.bench.procfs import free_port
from qualmon.sim.audio import speech_like_packets
from qualmon.sim.publisher import WhipPublisher


async def main(mode: str, legs: int, seconds: float, out: str) -> None:
    port, secret = free_port(), secrets.token_hex(32)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", receiver.__name__, "--serve-mode", mode, "--port", str(port),
        env={**os.environ, "QUALMON_SECRET": secret},
    )
    url = f"http://127.0.0.1:{port}"
    publishers: list[WhipPublisher] = []
    try:
        async with aiohttp.ClientSession() as http:
            await wait_healthy(http, url, proc)
            await publish_legs(http, url, secret, legs, publishers, packets=speech_like_packets())
            await asyncio.sleep(WARMUP_SECONDS)
            spy = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(proc.pid),
                "--duration", str(int(seconds)), "--rate", "100", "--format", "raw",
                "--native", "-o", out, stdout=subprocess.DEVNULL,
            )
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
