"""The receiver `qualmon bench` measures: a child process, bare aiortc or qualmon itself.

Run as `python -m qualmon.bench.receiver --serve-mode MODE --port N` with the token secret in
QUALMON_SECRET (not in argv, where ps shows it); pipeline.py starts one per measurement, so
the CPU time and RSS of this process are the receiver's own. Every mode also serves its
event-loop lag (`/bench/lag`), and the qualmon modes how many speech frames they classified.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import statistics
import sys
import threading
import tracemalloc
from typing import Any

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from ..media.ice import use_host_addresses
from .procfs import rss_mb

_last_snapshot_key = web.AppKey("last_snapshot", tracemalloc.Snapshot)
MODES = ("bare", "network", "qualmon")
"bare: aiortc, tracks drained; network: qualmon with speech activity off; qualmon: as shipped."


class LagSampler:
    """Timer lateness of the event loop, sampled every 20 ms."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    async def run(self, interval: float = 0.02) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(interval)
            self.samples.append(max(0.0, loop.time() - before - interval))


def _lag_routes(app: web.Application, sampler: LagSampler) -> None:
    async def lag(request: web.Request) -> web.Response:
        samples = sorted(sampler.samples) or [0.0]
        p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
        return web.json_response(
            {"p50": statistics.median(samples), "p99": p99, "n": len(sampler.samples)}
        )

    async def reset(request: web.Request) -> web.Response:
        sampler.samples.clear()
        return web.Response(text="ok")

    app.router.add_get("/bench/lag", lag)
    app.router.add_post("/bench/lag/reset", reset)


def _bare_app() -> web.Application:
    """The least a receiver can do: answer, receive, drain every track."""
    pcs: dict[str, Any] = {}
    tasks: set[asyncio.Task[None]] = set()

    async def drain(track: Any) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()

    async def whip(request: web.Request) -> web.Response:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))

        @pc.on("track")
        def on_track(track: Any) -> None:
            task = asyncio.ensure_future(drain(track))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        await pc.setRemoteDescription(RTCSessionDescription(await request.text(), "offer"))
        for transceiver in pc.getTransceivers():
            transceiver.direction = "recvonly"
        await pc.setLocalDescription(await pc.createAnswer())
        resource = secrets.token_urlsafe(16)
        pcs[resource] = pc
        return web.Response(
            status=201,
            text=pc.localDescription.sdp,
            content_type="application/sdp",
            headers={"Location": f"/whip/{resource}"},
        )

    async def delete(request: web.Request) -> web.Response:
        pc = pcs.pop(request.match_info["resource"], None)
        if pc is not None:
            await pc.close()
        return web.Response(text="ok")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def on_shutdown(app: web.Application) -> None:
        await asyncio.gather(*(pc.close() for pc in pcs.values()), return_exceptions=True)

    app = web.Application()
    app.router.add_post("/whip", whip)
    app.router.add_delete("/whip/{resource}", delete)
    app.router.add_get("/healthz", healthz)
    app.on_shutdown.append(on_shutdown)
    return app


def _qualmon_app(mode: str, port: int, secret: str, db_path: str) -> web.Application:
    """qualmon's service, speech activity on only in mode "qualmon"; counts its VAD frames."""
    # Imported here, not at the top: the bare receiver runs this module too, and its CPU and
    # RSS must be bare aiortc's, without qualmon's service loaded.
    from ..config import settings_from_env
    from ..service.app import create_app
    from ..service.keys import sessions_key

    settings = settings_from_env(
        # Only the switch the README's before/after runs flip (`QUALMON_FAST_RTP=off`).
        {k: v for k, v in os.environ.items() if k == "QUALMON_FAST_RTP"},
        secret=secret,
        port=port,
        max_legs=10_000,
        ice_addresses=("127.0.0.1",),
        speech_enabled=mode == "qualmon",
        # Bench sessions are not real reports: keep them out of any qualmon.db here,
        # while still paying for recording them.
        db_path=db_path,
    )
    app = create_app(settings)

    async def vad_frames(request: web.Request) -> web.Response:
        # Proof the speech path ran on every leg, not just that CPU was low.
        legs = request.app[sessions_key].legs_by_resource.values()
        return web.json_response({"vad_frames": sum(leg.vad_frames for leg in legs)})

    async def proc(request: web.Request) -> web.Response:
        # What only the process itself can tell (RSS and fds the driver reads from /proc).
        registry = request.app[sessions_key]
        return web.json_response(
            {
                "tasks": len(asyncio.all_tasks()),
                "threads": threading.active_count(),
                # aiortc names its per-receiver decoder threads "audio-decoder"/"video-decoder".
                "decoder_threads": sorted(
                    t.name for t in threading.enumerate() if t.name.endswith("-decoder")
                ),
                "sessions": len(registry.sessions),
                "ended": len(registry.ended),
            }
        )

    async def memory(request: web.Request) -> web.Response:
        # QUALMON_BENCH_TRACEMALLOC=1: where Python memory grew since the previous call.
        if not tracemalloc.is_tracing():
            raise web.HTTPNotFound(text="start the receiver with QUALMON_BENCH_TRACEMALLOC=1\n")
        snapshot = tracemalloc.take_snapshot()
        previous = request.app.get(_last_snapshot_key)
        request.app[_last_snapshot_key] = snapshot
        if previous is None:
            return web.json_response([])
        top = snapshot.compare_to(previous, "traceback")[:15]
        return web.json_response(
            [
                {
                    "kib": s.size_diff / 1024,
                    "count": s.count_diff,
                    "where": s.traceback.format()[-6:],
                }
                for s in top
            ]
        )

    async def trim(request: web.Request) -> web.Response:
        # How much of the RSS is free memory glibc keeps: RSS before and after malloc_trim.
        pid = os.getpid()
        before = rss_mb(pid)
        from ..service.memory_trim import malloc_trim  # the bare receiver never loads it

        trimmed = malloc_trim()
        return web.json_response(
            {"rss_mb_before": before, "rss_mb_after": rss_mb(pid), "ok": trimmed}
        )

    app.router.add_post("/bench/trim", trim)
    app.router.add_get("/bench/vad", vad_frames)
    app.router.add_get("/bench/proc", proc)
    app.router.add_get("/bench/memory", memory)
    if os.environ.get("QUALMON_BENCH_TRACEMALLOC") == "1":
        tracemalloc.start(12)
    if os.environ.get("QUALMON_BENCH_TIME_CALLS") == "1":
        from . import stalls  # the bare receiver never loads qualmon's classes

        stalls.start_timing()
        stalls.add_routes(app)
    return app


def serve_receiver(mode: str, port: int, secret: str, db_path: str = ":memory:") -> None:
    """Child-process entry: run one receiver until terminated."""
    logging.basicConfig(level=logging.WARNING)
    use_host_addresses(["127.0.0.1"])
    sampler = LagSampler()
    app = _bare_app() if mode == "bare" else _qualmon_app(mode, port, secret, db_path)
    parent = os.getppid()

    async def orphan_watch() -> None:
        # A receiver whose driver died (Ctrl-C, timeout) must not linger and skew the
        # next run's numbers.
        while os.getppid() == parent:
            await asyncio.sleep(1.0)
        os._exit(0)

    def dump_tasks() -> None:
        # `kill -USR1 PID`: where every task waits, for a receiver that stopped answering.
        for task in asyncio.all_tasks():
            task.print_stack(limit=12, file=sys.stderr)

    async def lag_task(app: web.Application) -> Any:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks)
        if mode != "bare":
            from ..service.memory_trim import freeze_startup_heap

            freeze_startup_heap()  # as `qualmon serve` does
        tasks = [asyncio.create_task(sampler.run()), asyncio.create_task(orphan_watch())]
        yield
        for task in tasks:
            task.cancel()

    app.cleanup_ctx.append(lag_task)
    _lag_routes(app, sampler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m qualmon.bench.receiver")
    parser.add_argument("--serve-mode", choices=MODES, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--db",
        default=":memory:",
        help="report store (default in memory: bench sessions are no real reports)",
    )
    args = parser.parse_args()
    serve_receiver(args.serve_mode, args.port, os.environ.get("QUALMON_SECRET", ""), args.db)


if __name__ == "__main__":
    main()
