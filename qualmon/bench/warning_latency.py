"""`qualmon bench --warnings`: how fast and how calmly warnings follow scripted impairments.

Runs the real path in one process (service, WHIP publishers, impairment) and reports
detection latency (onset → raised), clear latency (recovery → cleared), flaps on clean
runs and false alarms on clean and 1 %-loss runs. Benchmarks are not tests: nothing here
asserts; goals are printed beside the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import statistics
import sys
import time
from dataclasses import replace
from typing import Any

import aiohttp
from aiohttp import web

from ..config import settings_from_env
from ..core.quantiles import percentile
from ..core.warnings import WarningEvent
from ..service.app import create_app
from ..service.auth import issue_token
from ..service.keys import sessions_key, warnings_key
from ..sim.audio import EncodedAudioTrack, speech_like_packets
from ..sim.impairment import Impairment, ImpairmentConfig
from ..sim.publisher import WhipPublisher
from ..warnings.runtime import WarningObserver

GOAL_RAISE_P95_SECONDS = 2.0
GOAL_CLEAR_SECONDS = 5.0


class Recorder(WarningObserver):
    """Warning events as they happen, on the monotonic clock."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, str, str, str | None]] = []

    def on_warning(self, session_id: str, event: WarningEvent) -> None:
        self.events.append((time.monotonic(), session_id, event.type, event.kind, event.role))

    def first(self, session: str, typ: str, kind: str, after: float) -> float | None:
        for at, sid, t, k, _ in self.events:
            if sid == session and t == typ and k == kind and at >= after:
                return at
        return None


def _latencies(
    recorder: Recorder, session: str, kind: str, onset: float, recovered: float
) -> tuple[float | None, float | None]:
    """(onset → raised, recovery → cleared) in seconds; None when it never happened."""
    raised = recorder.first(session, "raised", kind, onset)
    cleared = recorder.first(session, "cleared", kind, recovered)
    return (raised - onset if raised else None, cleared - recovered if cleared else None)


async def _publish(
    url: str,
    secret: str,
    session: str,
    role: str,
    packets: list[bytes],
    http: aiohttp.ClientSession,
    impairment: ImpairmentConfig | None,
) -> WhipPublisher:
    token = issue_token(secret, scope="publish", session=session, role=role)
    publisher = WhipPublisher(
        url=url,
        token=token,
        packets=packets,
        http=http,
        impairment=impairment or ImpairmentConfig(),
    )
    await publisher.start()
    return publisher


async def _client(ctx: dict[str, Any], session: str, impairment: ImpairmentConfig) -> WhipPublisher:
    """A client leg for one trial, remembered for the teardown."""
    publisher = await _publish(
        ctx["url"], ctx["secret"], session, "client", ctx["packets"], ctx["http"], impairment
    )
    ctx["publishers"].append(publisher)
    return publisher


def _seconds(value: float | None) -> str:
    return f"{value:.2f} s" if value is not None else "–"


def _impairment_of(publisher: WhipPublisher) -> Impairment:
    """The impairment a started publisher put in place (each trial's client is given one)."""
    if publisher.impairment is None:
        raise RuntimeError("the trial's publisher started without its impairment")
    return publisher.impairment


async def _loss_trial(
    ctx: dict[str, Any], session: str, loss: float, *, hold: float
) -> tuple[float | None, float | None]:
    publisher = await _client(ctx, session, ImpairmentConfig(seed=hash(session) & 0xFFFF))
    impairment = _impairment_of(publisher)
    await asyncio.sleep(5.0)
    clean = impairment.config
    impairment.config = replace(clean, loss_ratio=loss)
    onset = time.monotonic()
    await asyncio.sleep(hold)
    impairment.config = clean
    recovered = time.monotonic()
    await asyncio.sleep(15.0)
    return _latencies(ctx["recorder"], session, "high_loss", onset, recovered)


async def _stop_trial(
    ctx: dict[str, Any], session: str, *, outage: bool
) -> tuple[float | None, float | None]:
    """A publisher that stops sending (track paused) or an outage on the network (3 s)."""
    publisher = await _client(ctx, session, ImpairmentConfig())
    impairment = _impairment_of(publisher)
    await asyncio.sleep(5.0)
    onset = time.monotonic()
    if outage:
        impairment.config = replace(
            impairment.config,
            # installed_at is set: the publisher's start() installed the impairment.
            outages=((onset - impairment.installed_at, 3.0),),  # type: ignore[operator]
        )
        await asyncio.sleep(3.0)
    else:
        track = publisher.track
        if not isinstance(track, EncodedAudioTrack):
            raise RuntimeError("the trial's publisher sends no EncodedAudioTrack to pause")
        track.pause()
        await asyncio.sleep(4.0)
        track.resume()
    recovered = time.monotonic()
    await asyncio.sleep(8.0)
    return _latencies(ctx["recorder"], session, "media_stopped", onset, recovered)


async def _calm_run(
    ctx: dict[str, Any], session: str, loss: float, seconds: float
) -> tuple[int, int, dict[str, int]]:
    """(false alarms, flaps) over a run with only `loss` random loss on both roles.

    The publishers run as `qualmon publish` processes: sharing the monitor's event loop,
    their own scheduling stalls would reach the monitor as late audio and count as alarms.
    """
    start = time.monotonic()
    procs = []
    for role in ("therapist", "client"):
        token = issue_token(ctx["secret"], scope="publish", session=session, role=role)
        procs.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "qualmon.cli",
                "publish",
                "--url",
                ctx["url"],
                "--token",
                token,
                "--seconds",
                f"{seconds + 5:g}",
                "--loss",
                f"{loss:g}",
                "--ice-addresses",
                "127.0.0.1",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        )
    try:
        await asyncio.sleep(seconds)
        session_state = ctx["app"][sessions_key].sessions.get(session)
        legs = [slot.leg for slot in session_state.slots.values()] if session_state else []
        ctx.setdefault("calm_packets", {})[session] = sum(
            leg.stats.packets_received for leg in legs if leg is not None
        )
    finally:
        for proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
    events = [e for e in ctx["recorder"].events if e[1] == session and e[0] >= start]
    raised = [e for e in events if e[2] == "raised"]
    flaps = sum(1 for e in events if e[2] == "cleared")
    kinds: dict[str, int] = {}
    for event in raised:
        kinds[event[3]] = kinds.get(event[3], 0) + 1
    return len(raised), flaps, kinds


async def run_warning_bench(args: argparse.Namespace) -> int:
    secret = secrets.token_hex(32)
    # The rules the service would run with here (QUALMON_WARNING_RULES applies).
    rules_env = {k: v for k, v in os.environ.items() if k == "QUALMON_WARNING_RULES"}
    settings = settings_from_env(
        rules_env,
        secret=secret,
        port=0,
        max_legs=1000,
        ice_addresses=("127.0.0.1",),
        db_path=":memory:",
    )
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    # Private, as in tests/conftest.py: aiohttp does not expose a TCPSite's bound port;
    # _server is set once start() has returned.
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    recorder = Recorder()
    app[warnings_key].add_observer(recorder)
    calm_seconds = args.calm_minutes * 60
    try:
        async with aiohttp.ClientSession() as http:
            ctx: dict[str, Any] = {
                "url": f"http://127.0.0.1:{port}/whip",
                "secret": secret,
                "http": http,
                "packets": speech_like_packets(),
                "recorder": recorder,
                "app": app,
                "publishers": [],
            }
            trials = args.trials
            print(f"running {trials} loss/stop/outage trials of each kind at once …", flush=True)
            jobs: list[Any] = []
            # 20 s of loss: 5 % takes up to ~10 s to tell from 1 % (see the high_loss rule).
            jobs += [_loss_trial(ctx, f"loss5-{i}", 0.05, hold=20.0) for i in range(trials)]
            jobs += [_loss_trial(ctx, f"loss10-{i}", 0.10, hold=20.0) for i in range(trials)]
            jobs += [_loss_trial(ctx, f"loss20-{i}", 0.20, hold=20.0) for i in range(trials)]
            jobs += [_stop_trial(ctx, f"stop-{i}", outage=False) for i in range(trials)]
            jobs += [_stop_trial(ctx, f"outage-{i}", outage=True) for i in range(trials)]
            results: list[Any] = list(await asyncio.gather(*jobs))
            for publisher in ctx["publishers"]:
                with contextlib.suppress(Exception):
                    await publisher.stop()
            ctx["publishers"].clear()
            # The calm runs come after the trials: an overloaded monitor (dozens of legs in
            # one process with their publishers) would count its own lag as alarms.
            print(f"running a {args.calm_minutes:g}-minute clean and 1 %-loss run …", flush=True)
            results += list(
                await asyncio.gather(
                    _calm_run(ctx, "clean", 0.0, calm_seconds),
                    _calm_run(ctx, "loss1", 0.01, calm_seconds),
                )
            )
            for publisher in ctx["publishers"]:
                with contextlib.suppress(Exception):
                    await publisher.stop()
        # Print before cleaning up: a hang in teardown must not cost the results.
        rows = {
            "loss 5 %": results[0:trials],
            "loss 10 %": results[trials : 2 * trials],
            "loss 20 %": results[2 * trials : 3 * trials],
            "media stopped": results[3 * trials : 4 * trials],
            "outage 3 s": results[4 * trials : 5 * trials],
        }
        print()
        print(
            f"{'scenario':<15}{'trials':>7}{'raised p50':>12}{'raised p95':>12}"
            f"{'missed':>8}{'cleared p50':>13}{'cleared max':>13}"
        )
        for name, trial_results in rows.items():
            raised = [r for r, _ in trial_results if r is not None]
            cleared = [c for _, c in trial_results if c is not None]
            missed = sum(1 for r, _ in trial_results if r is None)
            print(
                f"{name:<15}{len(trial_results):>7}"
                f"{_seconds(statistics.median(raised) if raised else None):>12}"
                f"{_seconds(percentile(raised, 0.95) if raised else None):>12}{missed:>8}"
                f"{_seconds(statistics.median(cleared) if cleared else None):>13}"
                f"{_seconds(max(cleared) if cleared else None):>13}"
            )
        (clean_alarms, clean_flaps, clean_kinds) = results[-2]
        (loss1_alarms, loss1_flaps, loss1_kinds) = results[-1]
        print()
        print(
            f"clean run, {args.calm_minutes:g} min, 2 legs: {clean_alarms} false alarms, "
            f"{clean_flaps} flaps (goal 0/0) {clean_kinds or ''} "
            f"[{ctx['calm_packets'].get('clean', 0)} packets received]"
        )
        print(
            f"1 % loss run, {args.calm_minutes:g} min, 2 legs: {loss1_alarms} false alarms, "
            f"{loss1_flaps} flaps (goal 0/0) {loss1_kinds or ''} "
            f"[{ctx['calm_packets'].get('loss1', 0)} packets received]"
        )
        print(
            f"goals: raised p95 <= {GOAL_RAISE_P95_SECONDS:g} s for loss >= 5 %, media stopped "
            f"and outages; cleared <= {GOAL_CLEAR_SECONDS:g} s after recovery"
        )
    finally:
        try:
            await asyncio.wait_for(runner.cleanup(), 30.0)
        except TimeoutError:
            print("warning: service cleanup took over 30 s", file=sys.stderr)
    return 0
