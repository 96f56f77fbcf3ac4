"""`qualmon bench --workers N`: legs carried by `serve --workers N` against `serve --workers 1`.

Each measurement starts a real `qualmon serve --workers K` (K = 1, then N; the order
alternates between rounds) on a fresh SQLite store in a temp dir, waits until its K
instances are in the store's `instances` table, publishes K × `--legs` legs of pre-encoded
Opus to the one public port (pipeline.publish_legs, the pipeline bench's publishers: the
same load per worker in both configurations, so their lag is compared at the same load and
their capacity extrapolated from a like point, as near the budget as `--legs` is), and
measures each worker: CPU from /proc/<pid>/stat (the workers are the supervisor's children;
with K = 1 the process itself serves), event-loop lag p99 and live legs from its own
/metrics, scraped on its internal port (`QUALMON_INTERNAL_PORT` in /proc/<pid>/environ:
/metrics on the public port would answer from whichever worker the kernel picks). After the
measured time every session is read through the public port: its owner must hold both legs.
scaling.py turns the numbers into capacities and the ratio. Nothing asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from ..service.auth import issue_token
from ..sim.audio import speech_like_packets
from ..sim.publisher import WhipPublisher
from . import scaling
from .pipeline import ROLES, WARMUP_SECONDS, publish_legs, session_of_leg, wait_healthy
from .procfs import children_of, cpu_seconds, environ_of, free_port, machine_cpu_seconds
from .scaling import ConfigResult, WorkerMetrics, WorkerSample

IDLE_SECONDS = 3.0
"Each worker's CPU with no leg, measured before publishing."
START_SECONDS = 60.0
STOP_SECONDS = 20.0
MAX_LEGS = 2000


@dataclass(frozen=True)
class Worker:
    pid: int
    url: str
    "Its own port: the internal one of a `--workers` worker, else the public one."


def worker_of(pid: int) -> Worker:
    env = environ_of(pid)
    port = env.get("QUALMON_INTERNAL_PORT") or env["QUALMON_PORT"]
    return Worker(pid, f"http://127.0.0.1:{port}")


def live_instances(db: Path) -> int:
    """Serving instances whose lease runs, as the store says (0 before it exists)."""
    if not db.exists():
        return 0
    with (
        contextlib.suppress(sqlite3.Error),
        contextlib.closing(sqlite3.connect(db, timeout=5)) as conn,
    ):
        (count,) = conn.execute(
            "SELECT count(*) FROM instances WHERE state = 'serving' AND lease_until > ?",
            (time.time(),),
        ).fetchone()
        return int(count)
    return 0


async def scrape(http: aiohttp.ClientSession, worker: Worker) -> WorkerMetrics:
    async with http.get(worker.url + "/metrics") as r:
        r.raise_for_status()
        return scaling.parse_metrics(await r.text())


async def wait_workers(
    http: aiohttp.ClientSession, proc: asyncio.subprocess.Process, count: int, db: Path
) -> list[Worker]:
    """The workers once all `count` answer on their own port and are live in the store."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"serve --workers {count} exited during start-up")
        pids = [proc.pid] if count == 1 else children_of(proc.pid)
        if len(pids) == count and live_instances(db) == count:
            workers = [worker_of(pid) for pid in pids]
            with contextlib.suppress(aiohttp.ClientError):
                for worker in workers:
                    async with http.get(worker.url + "/healthz") as r:
                        r.raise_for_status()
                return workers
        await asyncio.sleep(0.2)
    raise RuntimeError(f"serve --workers {count}: workers not up within {START_SECONDS:g} s")


def serve_env(tmp: Path, port: int, secret: str) -> dict[str, str]:
    """Like the tests' harness (tests/service/serving.py): no QUALMON_* of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUALMON_")}
    env.update(
        QUALMON_SECRET=secret,
        QUALMON_DB=str(tmp / "reports.db"),
        QUALMON_PORT=str(port),
        QUALMON_ICE_ADDRESSES="127.0.0.1",
        QUALMON_MAX_LEGS=str(MAX_LEGS),
        QUALMON_DRAIN_SECONDS="0.001",  # SIGTERM at the end: no waiting for legs
    )
    return env


async def session_owners(
    http: aiohttp.ClientSession, url: str, secret: str, sessions: list[str]
) -> tuple[dict[str, int], int]:
    """Each session's owner pid (instance id `host-pid`) as the public port answers, and how
    many sessions are split: their owner does not hold a live leg of each role."""
    headers = {"Authorization": "Bearer " + issue_token(secret, scope="admin", ttl_seconds=600)}
    owners: dict[str, int] = {}
    split = 0
    for session in sessions:
        async with http.get(f"{url}/v1/sessions/{session}", headers=headers) as r:
            doc = await r.json() if r.status == 200 else {}
        legs = doc.get("legs", {})
        if any(legs.get(role, {}).get("state") not in ("live", "stalled") for role in ROLES):
            split += 1
        instance = str(doc.get("instance", ""))
        pid = instance.rsplit("-", 1)[-1]
        owners[session] = int(pid) if pid.isdigit() else 0
    return owners, split


@contextlib.asynccontextmanager
async def serving(workers: int) -> AsyncIterator[tuple[Any, str, str, list[Worker]]]:
    """(supervisor process, public URL, token secret, workers) of a fresh `serve --workers`."""
    port, secret = free_port(), secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="qualmon-bench-serve-") as tmpdir:
        tmp = Path(tmpdir)
        # Opened once, for the child to write to: not worth a thread.
        with open(tmp / "serve.log", "wb") as log:  # noqa: ASYNC230
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "qualmon",
                "serve",
                "--workers",
                str(workers),
                env=serve_env(tmp, port, secret),
                stdout=log,
                stderr=log,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                await wait_healthy(http, url, proc)
                found = await wait_workers(http, proc, workers, tmp / "reports.db")
            yield proc, url, secret, found
        except BaseException:
            tail = (tmp / "serve.log").read_text(errors="replace").splitlines()[-20:]
            print("\n".join(["serve's last lines:", *tail]), file=sys.stderr)
            raise
        finally:
            await stop(proc)


async def measure(
    count: int,
    legs: int,
    seconds: float,
    packets: list[bytes],
    say: Callable[[str], object] = print,
) -> ConfigResult:
    """One configuration, `serve --workers count`, from start to stop."""
    publishers: list[WhipPublisher] = []
    async with serving(count) as (proc, url, secret, workers), aiohttp.ClientSession() as http:
        try:
            idle0 = {w.pid: cpu_seconds(w.pid) for w in workers}
            await asyncio.sleep(IDLE_SECONDS)
            idle = {w.pid: (cpu_seconds(w.pid) - idle0[w.pid]) / IDLE_SECONDS for w in workers}
            say(f"[workers {count}] connecting {legs} legs …")
            await publish_legs(http, url, secret, legs, publishers, packets=packets)
            await asyncio.sleep(WARMUP_SECONDS)
            before = {w.pid: await scrape(http, w) for w in workers}
            pids = [*(w.pid for w in workers), proc.pid, os.getpid()]
            cpu0, machine0, t0 = (
                {pid: cpu_seconds(pid) for pid in pids},
                machine_cpu_seconds(),
                time.monotonic(),
            )
            say(f"[workers {count}] measuring {seconds:g} s …")
            await asyncio.sleep(seconds)
            cpu1, machine1, t1 = (
                {pid: cpu_seconds(pid) for pid in pids},
                machine_cpu_seconds(),
                time.monotonic(),
            )
            after = {w.pid: await scrape(http, w) for w in workers}
            connected = sum(1 for p in publishers if p.pc.connectionState == "connected")
            sessions = sorted({session_of_leg(i) for i in range(legs)})
            owners, split = await session_owners(http, url, secret, sessions)
            for publisher in publishers:
                await publisher.stop()
        finally:
            for publisher in publishers:
                with contextlib.suppress(Exception):
                    await publisher.pc.close()
    elapsed = t1 - t0

    def rate(pid: int) -> float:
        return (cpu1[pid] - cpu0[pid]) / elapsed

    samples = []
    for w in workers:
        lag = scaling.bucket_delta(before[w.pid].lag_buckets, after[w.pid].lag_buckets)
        p99 = scaling.histogram_quantile(0.99, lag)
        samples.append(
            WorkerSample(
                pid=w.pid,
                legs=after[w.pid].legs_active,
                sessions=sum(1 for owner in owners.values() if owner == w.pid),
                cpu_rate=rate(w.pid),
                idle_cpu_rate=idle[w.pid],
                lag_p99_ms=None if p99 is None else p99 * 1000,
                lag_samples=int(lag.get(float("inf"), 0.0)),
            )
        )
    return ConfigResult(
        workers=count,
        legs=legs,
        legs_connected=connected,
        seconds=elapsed,
        per_worker=tuple(samples),
        sessions_split=split,
        supervisor_cpu_rate=0.0 if count == 1 else rate(proc.pid),
        load_generator_cpu_rate=rate(os.getpid()),
        machine_busy_cores=(machine1[0] - machine0[0]) / elapsed,
        machine_steal_cores=(machine1[1] - machine0[1]) / elapsed,
    )


async def stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM (the supervisor forwards it; drains end at once), SIGKILL if it lingers."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_SECONDS)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def run_workers_bench(args: argparse.Namespace) -> int:
    n = args.workers
    if n < 2 or args.legs < 2 or args.seconds <= 0 or args.rounds < 1 or not 0 < args.budget <= 1:
        print(
            "qualmon bench --workers: N >= 2, --legs >= 2, --seconds > 0, --rounds >= 1,"
            " 0 < --budget <= 1",
            file=sys.stderr,
        )
        return 2
    packets = speech_like_packets()
    rounds: list[dict[int, ConfigResult]] = []
    for i in range(args.rounds):
        print(f"round {i + 1}/{args.rounds}", flush=True)
        order = (1, n) if i % 2 == 0 else (n, 1)
        by_workers: dict[int, ConfigResult] = {}
        for count in order:
            by_workers[count] = await measure(count, args.legs * count, args.seconds, packets)
        rounds.append(by_workers)
    result = scaling.report(rounds, n, args.budget)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        scaling.print_table(result, rounds)
    return 0
