"""`qualmon bench --connect`: how fast a WHIP offer is answered and a leg connects while many
legs are live in one qualmon process (issue 17).

A qualmon receiver as shipped runs in its own process (receiver.py, as the pipeline bench
starts it); a load process (load.py) brings `--legs` legs live on it, each sending Opus DTX
(one packet every 400 ms, a silent participant). Then this process connects `--connects`
more legs of the same kind one at a time, `--gap` seconds apart, each ended (WHIP DELETE)
before the next so that every one meets the same live legs, and takes for each: the
server's own time to answer (the 201's Server-Timing, which qualmon_whip_offer_seconds also
observes), the POST's round trip, the time to ICE `completed` and the whole connect from
sending the POST to `connected` (answer applied, ICE and DTLS done; candidates on 127.0.0.1
only, so no network time). Printed beside the goals with the receiver's CPU and event-loop
lag while holding the live legs and while answering, and how long its fleet-wide periodic
calls and garbage collections held the loop (stalls.py), so a reader can tell a slow answer
from a busy machine.
`--profile FILE` records the receiver with py-spy while the connects run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from ..media.ice import use_host_addresses
from ..sim.publisher import WhipError, WhipPublisher
from .api_goals import (
    GOAL_CONNECT_P95_SECONDS,
    GOAL_WHIP_SERVER_P95_SECONDS,
    Spread,
    goal_line,
    metric_sum,
    server_timing_seconds,
)
from .load import dtx_publisher, start_load
from .pipeline import ROLES, spawn_receiver, wait_healthy
from .procfs import cpu_seconds, free_port, machine_cpu_seconds, rss_mb

SETTLE_SECONDS = 3.0
HOLD_SECONDS = 5.0
"The receiver's CPU and lag with the live legs alone are measured over this long."


@dataclass(frozen=True)
class Window:
    """The receiver (and the load process) over one stretch of time."""

    seconds: float
    receiver_cores: float
    load_cores: float
    bench_cores: float
    lag_p50_ms: float
    lag_p99_ms: float
    calls: tuple[dict[str, Any], ...]
    "The receiver's fleet-wide periodic calls over the window (stalls.summary())."
    others_cores: float
    "Cores busy with none of the three (other work on the machine: not ~0, a noisy window)."


@dataclass(frozen=True)
class ConnectResult:
    live_legs: int
    live_failed: int
    live_connect_seconds: float
    connects: int
    failed: int
    server: Spread | None
    "Server-Timing of each 201."
    answer: Spread | None
    "The POST's round trip, as the client saw it."
    ice: Spread | None
    "POST to ICE `completed`."
    connect: Spread | None
    "POST to `connected`."
    hold: Window
    measuring: Window
    rss_mb: float
    legs_after_hold: dict[str, float]
    "The receiver's own count of its legs after the hold: active, stalled, ended."
    legs_at_end: dict[str, float]
    "The same at the end, and offers timed by qualmon_whip_offer_seconds."


@contextlib.asynccontextmanager
async def qualmon_receiver(http: aiohttp.ClientSession) -> AsyncIterator[tuple[Any, str, str]]:
    """(process, url, token secret) of a fresh qualmon receiver as shipped."""
    port, secret = free_port(), secrets.token_hex(32)
    # The receiver times its fleet-wide periodic calls (stalls.py).
    proc = await spawn_receiver("qualmon", port, secret, env={"QUALMON_BENCH_TIME_CALLS": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(http, url, proc)
        yield proc, url, secret
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def lag(http: aiohttp.ClientSession, url: str, *, reset: bool = False) -> tuple[float, float]:
    """The receiver's event-loop lag p50/p99 in ms since the last reset (then resets)."""
    async with http.get(url + "/bench/lag") as r:
        doc = await r.json()
    if reset:
        async with http.post(url + "/bench/lag/reset") as r:
            await r.read()
    return doc["p50"] * 1000, doc["p99"] * 1000


class Meter:
    """CPU of the receiver, the load process and this one between start() and stop()."""

    def __init__(self, receiver_pid: int, load_pid: int) -> None:
        self._pids = (receiver_pid, load_pid, os.getpid())
        self._cpu0: tuple[float, ...] = ()
        self._machine0 = 0.0
        self._t0 = 0.0

    async def start(self, http: aiohttp.ClientSession, url: str) -> None:
        await lag(http, url, reset=True)
        async with http.post(url + "/bench/calls/reset") as r:
            await r.read()
        self._cpu0 = tuple(cpu_seconds(pid) for pid in self._pids)
        self._machine0 = machine_cpu_seconds()[0]
        self._t0 = time.monotonic()

    async def stop(self, http: aiohttp.ClientSession, url: str) -> Window:
        cpu1 = tuple(cpu_seconds(pid) for pid in self._pids)
        machine = (machine_cpu_seconds()[0] - self._machine0) / (time.monotonic() - self._t0)
        elapsed = time.monotonic() - self._t0
        p50, p99 = await lag(http, url)
        async with http.get(url + "/bench/calls") as r:
            calls = tuple(await r.json())
        rates = [(b - a) / elapsed for a, b in zip(self._cpu0, cpu1, strict=True)]
        others = machine - sum(rates)
        return Window(elapsed, rates[0], rates[1], rates[2], p50, p99, calls, others)


async def legs_seen(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """What the receiver's /metrics says of its legs: active, stalled, ended, offers timed."""
    async with http.get(url + "/metrics") as r:
        text = await r.text()
    names = {
        "active": "qualmon_legs_active",
        "stalled": "qualmon_legs_stalled",
        "ended": "qualmon_legs_ended_total",
        "offers_timed": "qualmon_whip_offer_seconds_count",
    }
    return {key: metric_sum(text, name) for key, name in names.items()}


def py_spy_path() -> str | None:
    """py-spy on PATH, or beside this Python (a venv's bin/)."""
    beside = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return shutil.which("py-spy") or (beside if os.path.exists(beside) else None)


async def py_spy(pid: int, path: str, seconds: float) -> asyncio.subprocess.Process | None:
    exe = py_spy_path()
    if exe is None:
        print("qualmon bench --connect: py-spy not found, no profile", file=sys.stderr)
        return None
    return await asyncio.create_subprocess_exec(
        exe,
        "record",
        "--pid",
        str(pid),
        "--output",
        path,
        "--format",
        "raw" if path.endswith(".txt") else "flamegraph",
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "250",
        "--nonblocking",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def measure(legs: int, connects: int, gap: float, profile: str | None) -> ConnectResult:
    use_host_addresses(["127.0.0.1"])
    joined: list[WhipPublisher] = []
    server: list[float] = []
    answer: list[float] = []
    ice: list[float] = []
    connect: list[float] = []
    failed = 0
    async with aiohttp.ClientSession() as http, qualmon_receiver(http) as (proc, url, secret):
        print(f"connecting {legs} live legs (Opus DTX, a packet every 400 ms) …", flush=True)
        load = await start_load(url, secret, legs, "live")
        try:
            await asyncio.sleep(SETTLE_SECONDS)
            meter = Meter(proc.pid, load.proc.pid)
            await meter.start(http, url)
            await asyncio.sleep(HOLD_SECONDS)
            hold = await meter.stop(http, url)
            after_hold = await legs_seen(http, url)
            print(
                f"{load.connected} live; connecting {connects} more, {gap:g} s apart …", flush=True
            )
            spy = await py_spy(proc.pid, profile, connects * (gap + 0.1)) if profile else None
            await meter.start(http, url)
            for j in range(connects):
                publisher = dtx_publisher(url, secret, f"join-{j // 2}", ROLES[j % 2], http)
                joined.append(publisher)
                try:
                    await publisher.start(timeout_seconds=30.0)
                except (WhipError, aiohttp.ClientError, OSError):
                    failed += 1
                else:
                    timing = server_timing_seconds(publisher.server_timing)
                    if timing is not None:
                        server.append(timing)
                    if publisher.answer_seconds is not None:
                        answer.append(publisher.answer_seconds)
                    if publisher.ice_seconds is not None:
                        ice.append(publisher.ice_seconds)
                    if publisher.connect_seconds is not None:
                        connect.append(publisher.connect_seconds)
                # Ended before the next, so every connect meets the same `legs` live ones.
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    await publisher.stop()
                await asyncio.sleep(gap)
            measuring = await meter.stop(http, url)
            if spy is not None:
                await spy.wait()
            at_end = await legs_seen(http, url)
            rss = rss_mb(proc.pid)
        finally:
            await asyncio.gather(*(p.pc.close() for p in joined), return_exceptions=True)
            await load.stop()
    return ConnectResult(
        live_legs=load.connected,
        live_failed=load.failed,
        live_connect_seconds=load.connect_seconds,
        connects=connects,
        failed=failed,
        server=Spread.of(server),
        answer=Spread.of(answer),
        ice=Spread.of(ice),
        connect=Spread.of(connect),
        hold=hold,
        measuring=measuring,
        rss_mb=rss,
        legs_after_hold=after_hold,
        legs_at_end=at_end,
    )


def print_result(r: ConnectResult) -> None:
    def spread(s: Spread | None) -> str:
        return "–" if s is None else s.ms()

    print()
    print(
        f"live legs: {r.live_legs} (Opus DTX: one 3-byte packet of silence every 400 ms;"
        f" {r.live_failed} failed; connected in {r.live_connect_seconds:.0f} s, 4 at a time)"
    )
    print(
        f"measured connects: {r.connects - r.failed} of {r.connects} (same kind of leg, each"
        " ended before the next)"
    )
    print(f"{'':<36}{'p50 / p95 / max':>28}")
    print(f"{'server: POST /whip → 201':<36}{spread(r.server):>28}")
    print(f"{'client: POST round trip':<36}{spread(r.answer):>28}")
    print(f"{'client: POST → ICE completed':<36}{spread(r.ice):>28}")
    print(f"{'client: POST → connected (ICE+DTLS)':<36}{spread(r.connect):>28}")
    print()
    print(
        f"{'':<22}{'receiver cores':>15}{'lag p50':>9}{'lag p99':>9}{'load proc':>10}{'bench':>7}"
        f"{'others':>8}"
    )
    for name, w in (("live legs only", r.hold), ("while connecting", r.measuring)):
        print(
            f"{name:<22}{w.receiver_cores:>15.2f}{w.lag_p50_ms:>7.1f}ms{w.lag_p99_ms:>7.1f}ms"
            f"{w.load_cores:>10.2f}{w.bench_cores:>7.2f}{w.others_cores:>8.2f}"
        )
    print("(cores: CPU seconds per second; others: the machine's busy cores less these three)")
    print()
    print("the receiver's fleet-wide periodic calls while connecting (each runs to its end")
    print("before the loop takes anything else, a WHIP answer or a DTLS datagram included):")
    print(f"{'':<58}{'n':>5}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}{'cores':>7}")
    for call in r.measuring.calls:
        print(
            f"{call['call']:<58}{call['n']:>5}{call['p50_ms']:>8.1f}{call['p95_ms']:>8.1f}"
            f"{call['max_ms']:>8.1f}{call['total_seconds'] / r.measuring.seconds:>7.3f}"
        )
    print()
    for when, seen in (("after the hold", r.legs_after_hold), ("at the end", r.legs_at_end)):
        print(
            f"receiver's legs {when}: {seen['active']:.0f} active, {seen['stalled']:.0f}"
            f" stalled, {seen['ended']:.0f} ended"
        )
    print(
        f"receiver RSS at the end: {r.rss_mb:.0f} MB; offers in qualmon_whip_offer_seconds:"
        f" {r.legs_at_end['offers_timed']:.0f}"
    )
    print()
    live = f"with {r.live_legs} legs live"
    print(
        goal_line(
            f"POST /whip → 201 p95, server-side, {live}",
            _p95(r.server),
            GOAL_WHIP_SERVER_P95_SECONDS,
        )
    )
    print(
        goal_line(
            f"whole connect p95 (POST, ICE, DTLS), {live}",
            _p95(r.connect),
            GOAL_CONNECT_P95_SECONDS,
        )
    )


def _p95(s: Spread | None) -> float | None:
    return None if s is None else s.p95


async def run_connect_bench(args: argparse.Namespace) -> int:
    legs = 250 if args.legs is None else args.legs
    if legs < 0 or args.connects < 1 or args.gap < 0:
        print("qualmon bench --connect: --legs >= 0, --connects >= 1, --gap >= 0", file=sys.stderr)
        return 2
    result = await measure(legs, args.connects, args.gap, args.profile)
    if args.json:
        print(json.dumps(asdict(result), indent=2))
    else:
        print_result(result)
    return 0
