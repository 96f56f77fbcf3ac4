"""`qualmon bench --metrics-scale`: /metrics and the session list with 500 live sessions of
1,000 WHIP legs across `serve --workers N` (issue 17).

A real `qualmon serve --workers N` (default 2; workers.py starts it the same way) on a fresh
SQLite store. First, with no session: `--scrapes` scrapes of each worker's /metrics on its
internal port and of the public port (whichever worker the kernel picks), timed and sized,
and the session list. Then two load processes (load.py) bring `--sessions` sessions of two
legs each live through the public port, each leg sending Opus DTX (one packet every 400 ms:
a silent participant), and the same is measured again, with each worker's CPU, event-loop
lag (its own histogram over the measured time), live legs and RSS, so a slow scrape can be
told from a busy machine. The session list is walked page by page (`?limit=`, default 100,
then `next`) through the public port, every page merged from both workers, and one page of
the largest limit (1000) is timed too. Nothing asserts; the goals are printed beside.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from ..service.auth import issue_token
from ..service.paging import MAX_LIMIT
from . import scaling
from .api_goals import Spread, metric_sum, server_timing_seconds
from .load import LoadProcess, start_load
from .metrics_report import print_result
from .procfs import cpu_seconds, rss_mb
from .workers import Worker, serving

SETTLE_SECONDS = 5.0
MEASURED_SECONDS = 10.0
"Each worker's CPU and lag are taken over this long, scrapes excluded."
LOAD_PROCESSES = 2


@dataclass(frozen=True)
class Scrapes:
    """`--scrapes` GETs of one URL, one after another."""

    where: str
    time: Spread
    "As this process saw it: the network, the wait for the loop and the work."
    server: Spread | None
    "The work alone (Server-Timing `app`)."
    size_bytes: int
    "The body of the last one."


@dataclass(frozen=True)
class WorkerState:
    pid: int
    legs: int
    "Its qualmon_legs_active."
    cores: float
    lag_p99_ms: float | None
    rss_mb: float
    offer_p95_ms: float | None
    "From its qualmon_whip_offer_seconds histogram (bucket-interpolated)."
    offers: int


@dataclass(frozen=True)
class Pages:
    """A walk of the session list through the public port."""

    limit: int
    pages: int
    sessions: int
    "Sessions listed, over all pages."
    distinct: int
    time: Spread
    server: Spread | None
    "Server-Timing `app` of the answering instance (its fan-out included)."
    largest_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class Snapshot:
    sessions: int
    "Live sessions the load processes hold (0: before any)."
    legs: int
    load_cores: float
    "CPU of the load processes over the measured time, in cores."
    scrapes: tuple[Scrapes, ...]
    workers: tuple[WorkerState, ...]
    pages: Pages
    one_big_page: Pages


async def timed_get(
    http: aiohttp.ClientSession, url: str, server: list[float], **kw: Any
) -> tuple[float, bytes]:
    """(seconds, body) of a GET; its Server-Timing `app` appended to `server`."""
    started = time.perf_counter()
    async with http.get(url, **kw) as r:
        body = await r.read()
        r.raise_for_status()
        own = server_timing_seconds(r.headers.get("Server-Timing"), "app")
    if own is not None:
        server.append(own)
    return time.perf_counter() - started, body


async def scrapes(http: aiohttp.ClientSession, where: str, url: str, count: int) -> Scrapes:
    times: list[float] = []
    server: list[float] = []
    body = b""
    for _ in range(count):
        seconds, body = await timed_get(http, url + "/metrics", server)
        times.append(seconds)
    spread = Spread.of(times)
    if spread is None:
        raise ValueError("--scrapes must be >= 1")
    return Scrapes(where, spread, Spread.of(server), len(body))


async def walk_pages(http: aiohttp.ClientSession, url: str, admin: str, limit: int) -> Pages:
    headers = {"Authorization": "Bearer " + admin}
    times: list[float] = []
    server: list[float] = []
    sizes: list[int] = []
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        seconds, body = await timed_get(
            http, url + "/v1/sessions", server, params=params, headers=headers
        )
        doc = json.loads(body)
        times.append(seconds)
        sizes.append(len(body))
        ids += [s["id"] for s in doc["sessions"]]
        cursor = doc["next"]
        if cursor is None or len(times) > 10_000:
            break
    spread = Spread.of(times)
    if spread is None:
        raise RuntimeError("no page")
    return Pages(
        limit,
        len(times),
        len(ids),
        len(set(ids)),
        spread,
        Spread.of(server),
        max(sizes),
        sum(sizes),
    )


async def worker_metrics(http: aiohttp.ClientSession, worker: Worker) -> str:
    async with http.get(worker.url + "/metrics") as r:
        return await r.text()


def offer_buckets(text: str) -> dict[float, float]:
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("qualmon_whip_offer_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(le)] = float(line.split()[-1])
    return buckets


async def snapshot(
    http: aiohttp.ClientSession,
    url: str,
    workers: list[Worker],
    admin: str,
    count: int,
    sessions: int,
    loads: list[LoadProcess],
) -> Snapshot:
    before = {w.pid: await worker_metrics(http, w) for w in workers}
    pids = [w.pid for w in workers] + [lp.proc.pid for lp in loads]
    cpu0, t0 = {pid: cpu_seconds(pid) for pid in pids}, time.monotonic()
    await asyncio.sleep(MEASURED_SECONDS)
    cpu1, elapsed = {pid: cpu_seconds(pid) for pid in pids}, time.monotonic() - t0
    after = {w.pid: await worker_metrics(http, w) for w in workers}
    states = []
    for w in workers:
        parsed_before = scaling.parse_metrics(before[w.pid])
        parsed_after = scaling.parse_metrics(after[w.pid])
        lag = scaling.bucket_delta(parsed_before.lag_buckets, parsed_after.lag_buckets)
        p99 = scaling.histogram_quantile(0.99, lag)
        offers = offer_buckets(after[w.pid])
        offer_p95 = scaling.histogram_quantile(0.95, offers) if offers else None
        states.append(
            WorkerState(
                pid=w.pid,
                legs=parsed_after.legs_active,
                cores=(cpu1[w.pid] - cpu0[w.pid]) / elapsed,
                lag_p99_ms=None if p99 is None else p99 * 1000,
                rss_mb=rss_mb(w.pid),
                offer_p95_ms=None if offer_p95 is None else offer_p95 * 1000,
                offers=int(metric_sum(after[w.pid], "qualmon_whip_offer_seconds_count")),
            )
        )
    measured = [await scrapes(http, f"worker {w.pid}", w.url, count) for w in workers]
    measured.append(await scrapes(http, "public port", url, count))
    pages = await walk_pages(http, url, admin, 100)
    big = await walk_pages(http, url, admin, MAX_LIMIT)
    legs = sum(s.legs for s in states)
    load_cores = sum(cpu1[lp.proc.pid] - cpu0[lp.proc.pid] for lp in loads) / elapsed
    return Snapshot(sessions, legs, load_cores, tuple(measured), tuple(states), pages, big)


async def add_load(
    url: str, secret: str, legs: list[int], prefix: str, into: list[LoadProcess]
) -> None:
    """One load process per entry of `legs` (legs each), started together; each appended to
    `into` once up, so the caller stops every started one should another fail."""
    results = await asyncio.gather(
        *(start_load(url, secret, n, f"{prefix}{i}") for i, n in enumerate(legs) if n),
        return_exceptions=True,
    )
    into.extend(r for r in results if isinstance(r, LoadProcess))
    for r in results:
        if isinstance(r, BaseException):
            raise r


async def measure(workers: int, sessions: int, count: int) -> dict[str, Any]:
    """No session, a tenth of `sessions`, then all of them (sizes must not follow)."""
    loads: list[LoadProcess] = []
    few = max(1, sessions // 10)
    async with serving(workers) as (_, url, secret, found):
        admin = issue_token(secret, scope="admin", ttl_seconds=3600)
        async with aiohttp.ClientSession() as http:
            try:
                print(f"serve --workers {workers}: no session, measuring …", flush=True)
                empty = await snapshot(http, url, found, admin, count, 0, [])
                print(f"connecting {few * 2} legs in {few} sessions (Opus DTX) …", flush=True)
                await add_load(url, secret, [few * 2], "few", loads)
                await asyncio.sleep(SETTLE_SECONDS)
                print("measuring …", flush=True)
                some = await snapshot(http, url, found, admin, count, few, loads)
                rest = sessions - few
                print(f"connecting {rest * 2} more legs …", flush=True)
                started = time.monotonic()
                # Whole sessions per load process: both legs of one from the same process.
                shares = [
                    2 * (rest // LOAD_PROCESSES + (i < rest % LOAD_PROCESSES))
                    for i in range(LOAD_PROCESSES)
                ]
                await add_load(url, secret, shares, "all", loads)
                connect_seconds = time.monotonic() - started
                await asyncio.sleep(SETTLE_SECONDS)
                print("measuring …", flush=True)
                full = await snapshot(http, url, found, admin, count, sessions, loads)
            finally:
                for lp in loads:
                    await lp.stop()
    return {
        "workers": workers,
        "legs_asked": sessions * 2,
        "legs_connected": sum(lp.connected for lp in loads),
        "legs_failed": sum(lp.failed for lp in loads),
        "connect_seconds": connect_seconds,
        "snapshots": [asdict(empty), asdict(some), asdict(full)],
    }


async def run_metrics_scale_bench(args: argparse.Namespace) -> int:
    workers = args.workers or 2
    if args.sessions < 1 or args.scrapes < 1:
        print("qualmon bench --metrics-scale: --sessions and --scrapes >= 1", file=sys.stderr)
        return 2
    result = await measure(workers, args.sessions, args.scrapes)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_result(result)
    return 0
