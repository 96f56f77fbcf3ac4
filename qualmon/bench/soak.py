"""`qualmon bench --soak MINUTES` and `--cycles N`: does the receiver stay flat while
sessions come and go?

`--soak` holds `--legs` live legs for MINUTES while one leg ends and a new session starts
every `--churn-seconds`, and prints the receiver's RSS, open fds, threads, asyncio tasks,
sessions held and event-loop lag each minute, then the RSS slope after warm-up.
`--cycles` runs N short sessions (1 s of audio each, 3 at a time) after a warm-up and
compares RSS, fds, threads and tasks with the baseline once every ended session has
settled. Benchmarks, not tests: nothing asserts; the goals are printed beside the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..service.auth import issue_token
from ..sim.audio import speech_like_packets
from ..sim.publisher import WhipPublisher
from .pipeline import spawn_receiver, wait_healthy
from .procfs import fd_count, free_port, rss_mb

GOAL_SLOPE_MB_PER_MINUTE = 0.2
GOAL_CYCLES_RSS_MB = 15.0
SOAK_WARMUP_MINUTES = 5.0
CYCLE_WARMUP = 30
CYCLES_AT_ONCE = 3
CYCLE_AUDIO_SECONDS = 1.0


@dataclass(frozen=True)
class ProcessSample:
    """The receiver at one moment."""

    at_minutes: float
    rss_mb: float
    fds: int
    threads: int
    tasks: int
    sessions: int
    "Sessions held whole (live, or ended and settling)."
    ended: int
    "Ended sessions held as compact snapshots."
    lag_p99_ms: float


class Receiver:
    """A qualmon receiver in its own process, and a way to publish legs to it."""

    def __init__(self) -> None:
        # A file store, as in production: an in-memory one would grow with every report
        # and read as a leak of the receiver's.
        self._dir = tempfile.TemporaryDirectory(prefix="qualmon-soak-")
        self.db_path = os.path.join(self._dir.name, "soak.db")
        self.port = free_port()
        self.secret = secrets.token_hex(32)
        self.url = f"http://127.0.0.1:{self.port}"
        self.packets = speech_like_packets()
        self.proc: Any = None
        self.started = time.monotonic()

    async def __aenter__(self) -> Receiver:
        self.proc = await spawn_receiver("qualmon", self.port, self.secret, db=self.db_path)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()
        self._dir.cleanup()

    async def publish(self, http: aiohttp.ClientSession, session: str, role: str) -> WhipPublisher:
        token = issue_token(self.secret, scope="publish", session=session, role=role)
        publisher = WhipPublisher(
            url=self.url + "/whip", token=token, packets=self.packets, http=http
        )
        await publisher.start()
        return publisher

    async def sample(self, http: aiohttp.ClientSession) -> ProcessSample:
        async with http.get(self.url + "/bench/proc") as r:
            inside = await r.json()
        async with http.get(self.url + "/bench/lag") as r:
            lag = await r.json()
        async with http.post(self.url + "/bench/lag/reset") as r:
            await r.read()
        pid = self.proc.pid
        return ProcessSample(
            at_minutes=(time.monotonic() - self.started) / 60,
            rss_mb=rss_mb(pid),
            fds=fd_count(pid),
            threads=int(inside["threads"]),
            tasks=int(inside["tasks"]),
            sessions=int(inside["sessions"]),
            ended=int(inside["ended"]),
            lag_p99_ms=float(lag["p99"]) * 1000,
        )


def slope_mb_per_minute(samples: list[ProcessSample]) -> float | None:
    """Least-squares slope of RSS over time; None with fewer than two samples."""
    if len(samples) < 2:
        return None
    xs = [s.at_minutes for s in samples]
    ys = [s.rss_mb for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def _row(s: ProcessSample) -> str:
    return (
        f"{s.at_minutes:>6.1f}{s.rss_mb:>10.1f}{s.fds:>7}{s.threads:>9}{s.tasks:>7}"
        f"{s.sessions:>10}{s.ended:>7}{s.lag_p99_ms:>11.1f}"
    )


HEADER = f"{'min':>6}{'RSS MB':>10}{'fds':>7}{'threads':>9}{'tasks':>7}{'sessions':>10}"
HEADER += f"{'ended':>7}{'lag p99 ms':>11}"


async def soak(minutes: float, legs: int, churn_seconds: float) -> int:
    """Hold `legs` legs with churn for `minutes`; print a row a minute and the slope."""
    async with Receiver() as rx, aiohttp.ClientSession() as http:
        await wait_healthy(http, rx.url, rx.proc)
        live: deque[WhipPublisher] = deque()
        for i in range(legs):
            live.append(await rx.publish(http, f"soak-{i}", "client"))
        print(f"soak: {legs} legs, one ends and a new session starts every {churn_seconds:g} s")
        print(HEADER, flush=True)
        samples: list[ProcessSample] = []
        next_sample = time.monotonic() + 60.0
        end = time.monotonic() + minutes * 60.0
        started = legs
        failures = 0
        while time.monotonic() < end:
            await asyncio.sleep(churn_seconds)
            await live.popleft().stop()
            try:
                live.append(await rx.publish(http, f"soak-{started}", "client"))
            except Exception as exc:  # a failed start is a finding, not a crash of the bench
                failures += 1
                print(f"  a new leg failed to start: {type(exc).__name__}", flush=True)
            started += 1
            if time.monotonic() >= next_sample:
                next_sample += 60.0
                samples.append(await rx.sample(http))
                print(_row(samples[-1]), flush=True)
        for publisher in live:
            with contextlib.suppress(Exception):
                await publisher.stop()
    after = [s for s in samples if s.at_minutes >= SOAK_WARMUP_MINUTES]
    slope = slope_mb_per_minute(after)
    shown = "n/a (run longer than the warm-up)" if slope is None else f"{slope:.3f} MB/min"
    print(f"sessions started: {started}, failed starts: {failures}")
    print(
        f"RSS slope after {SOAK_WARMUP_MINUTES:g} min: {shown} "
        f"(goal <= {GOAL_SLOPE_MB_PER_MINUTE} MB/min)"
    )
    return 0


async def cycles(count: int, settle_seconds: float = 5.0) -> int:
    """`count` short sessions after a warm-up; RSS, fds, threads, tasks against baseline."""
    async with Receiver() as rx, aiohttp.ClientSession() as http:
        await wait_healthy(http, rx.url, rx.proc)

        async def one(n: int) -> None:
            publisher = await rx.publish(http, f"cycle-{n}", "client")
            await asyncio.sleep(CYCLE_AUDIO_SECONDS)
            await publisher.stop()

        async def run(first: int, n: int) -> None:
            for batch in range(first, first + n, CYCLES_AT_ONCE):
                ids = range(batch, min(batch + CYCLES_AT_ONCE, first + n))
                await asyncio.gather(*(one(i) for i in ids))

        async def settled() -> ProcessSample:
            # Ended sessions are compacted once their legs closed; wait for that.
            deadline = time.monotonic() + 60.0
            sample = await rx.sample(http)
            while sample.sessions and time.monotonic() < deadline:
                await asyncio.sleep(settle_seconds)
                sample = await rx.sample(http)
            return sample

        await run(0, CYCLE_WARMUP)
        base = await settled()
        print(f"after {CYCLE_WARMUP} warm-up cycles: " + _row(base).strip())
        t0 = time.monotonic()
        await run(CYCLE_WARMUP, count)
        after = await settled()
        print(f"after {count} more cycles ({time.monotonic() - t0:.0f} s): " + _row(after).strip())
    growth = after.rss_mb - base.rss_mb
    print(
        f"RSS {growth:+.1f} MB (goal <= +{GOAL_CYCLES_RSS_MB:g}); fds {after.fds - base.fds:+d}, "
        f"threads {after.threads - base.threads:+d}, tasks {after.tasks - base.tasks:+d} "
        f"(goal: +0 each); {after.ended} ended sessions held, "
        f"{1024 * growth / max(1, count):.1f} KB per ended session"
    )
    return 0


async def run_soak(args: argparse.Namespace) -> int:
    if args.cycles:
        return await cycles(args.cycles)
    return await soak(args.soak, args.legs, args.churn_seconds)
