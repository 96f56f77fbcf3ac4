"""`qualmon demo`: the service on loopback with looping simulated therapy sessions."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from ..config import Settings, server_overrides, settings_from_env
from ..service.app import PrivateAccessLogger, create_app, start_site
from ..service.auth import issue_token
from ..service.keys import drain_key
from .audio import speech_like_packets
from .impairment import ImpairmentConfig
from .publisher import WhipError, WhipPublisher, describe_failure

log = logging.getLogger(__name__)

RUN_SECONDS = 300.0
"Each simulated session lasts this long, then ends and starts again under the same id."
PAUSE_SECONDS = 5.0
"Gap between runs, long enough to see the session as ended."
RETRY_SECONDS = 5.0
"Wait after a publisher failed before trying that session again."
STOP_TIMEOUT_SECONDS = 8.0
"Stopping a publisher (DELETE, peer close) may hang on a broken server; give up after this."
TOKEN_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class DemoSession:
    """One simulated session: a clean therapist and a client through `impairment`."""

    id: str
    impairment: ImpairmentConfig | None
    description: str


DEMO_SESSIONS: tuple[DemoSession, ...] = (
    DemoSession("demo-clean", None, "no impairment"),
    DemoSession(
        "demo-loss5",
        ImpairmentConfig(loss_ratio=0.05, keep_records=False),
        "client: 5 % packet loss",
    ),
    DemoSession(
        "demo-delay",
        ImpairmentConfig(delay_seconds=0.150, jitter_seconds=0.030, keep_records=False),
        "client: 150 ms delay each way, ±30 ms jitter",
    ),
    DemoSession(
        "demo-outage",
        ImpairmentConfig(outage_every_seconds=20, outage_seconds=0.5, keep_records=False),
        "client: 0.5 s outage every 20 s",
    ),
)


def demo_settings(args: argparse.Namespace, secret: str) -> Settings:
    """Server flags and QUALMON_* as for `serve`, but ICE on loopback unless told otherwise."""
    overrides = server_overrides(args)
    # aioice leaves loopback out by default, and the simulated publishers live on this host.
    overrides["ice_addresses"] = overrides["ice_addresses"] or ("127.0.0.1",)
    return settings_from_env(None, secret=secret, **overrides)


def _client_host(host: str) -> str:
    """Where a local client reaches a server listening on `host`."""
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


async def _stop_quietly(publisher: WhipPublisher) -> None:
    try:
        await asyncio.wait_for(publisher.stop(), STOP_TIMEOUT_SECONDS)
    except Exception as exc:
        log.warning("stopping a demo publisher failed: %s", describe_failure(exc))


async def _sleep_or_stop(stop: asyncio.Event, seconds: float | None) -> None:
    """Wait `seconds` (None: for ever) or until `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def loop_session(
    demo: DemoSession,
    *,
    whip_url: str,
    secret: str,
    packets: Sequence[bytes],
    http: aiohttp.ClientSession,
    stop: asyncio.Event,
    run_seconds: float = RUN_SECONDS,
    pause_seconds: float = PAUSE_SECONDS,
    retry_seconds: float = RETRY_SECONDS,
) -> None:
    """Run `demo` again and again until `stop` is set; failures are logged and retried."""
    while not stop.is_set():
        publishers: list[WhipPublisher] = []
        try:
            for role, impairment in (("therapist", None), ("client", demo.impairment)):
                token = issue_token(
                    secret,
                    scope="publish",
                    session=demo.id,
                    role=role,
                    ttl_seconds=int(run_seconds) + 3600,  # the closing DELETE needs it too
                )
                publishers.append(
                    WhipPublisher(
                        url=whip_url, token=token, packets=packets, impairment=impairment, http=http
                    )
                )
            for publisher in publishers:
                await publisher.start()
            log.info("demo session %s: started", demo.id)
            await _run_while_connected(publishers, stop, run_seconds)
            wait = pause_seconds
            if not stop.is_set():
                log.info("demo session %s: ended; next run in %g s", demo.id, wait)
        except Exception as exc:
            # The demo outlives any one publisher: report, then try again shortly.
            log.warning(
                "demo session %s: publisher failed (%s); retrying in %g s",
                demo.id,
                describe_failure(exc),
                retry_seconds,
            )
            wait = retry_seconds
        finally:
            # Also on cancellation: leave no peer connection or WHIP resource behind.
            await asyncio.gather(*(_stop_quietly(p) for p in publishers))
        await _sleep_or_stop(stop, wait)


async def _run_while_connected(
    publishers: Sequence[WhipPublisher], stop: asyncio.Event, seconds: float
) -> None:
    """Let the run go on for `seconds`; end it early on `stop` or if a connection broke."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not stop.is_set():
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return
        broken = [p for p in publishers if p.pc.connectionState in ("failed", "closed")]
        if broken:
            raise WhipError(f"connection {broken[0].pc.connectionState} during the run")
        # Polling once a second is cheap and needs no per-connection callbacks.
        await _sleep_or_stop(stop, min(1.0, remaining))


def banner(base_url: str, secret: str, *, generated_secret: bool) -> str:
    """What a newcomer needs: where things are, tokens for them, and commands to try."""
    ttl = TOKEN_TTL_SECONDS
    admin = issue_token(secret, scope="admin", ttl_seconds=ttl)
    width = max(len(d.id) for d in DEMO_SESSIONS)
    lines = [
        "",
        "qualmon demo is running.",
        "",
        f"  Service       {base_url}",
        f"  Metrics       {base_url}/metrics   (Prometheus text, no token)",
        f"  Health        {base_url}/healthz",
        f"  All sessions  {base_url}/v1/sessions   (admin token)",
        "",
        f"Simulated sessions (therapist + client; each restarts every {RUN_SECONDS / 60:g} min):",
    ]
    for d in DEMO_SESSIONS:
        lines.append(f"  {d.id:<{width}}  {base_url}/v1/sessions/{d.id}   {d.description}")
    lines += [
        "",
        f"Tokens, valid {ttl // 3600} h (paste these lines into a shell):",
        f"  export ADMIN_TOKEN={admin}",
    ]
    for d in DEMO_SESSIONS:
        watch = issue_token(secret, scope="watch", session=d.id, ttl_seconds=ttl)
        lines.append(f"  export {_variable(d.id)}={watch}   # watch {d.id} only")
    publish = issue_token(
        secret, scope="publish", session="demo-yours", role="client", ttl_seconds=ttl
    )
    first = DEMO_SESSIONS[0]
    lossy = DEMO_SESSIONS[1]
    lossy_watch = issue_token(secret, scope="watch", session=lossy.id, ttl_seconds=ttl)
    lines += [
        f"  export PUBLISH_TOKEN={publish}   # publish to session demo-yours as client",
        "",
        "Open in a browser:",
        f"  therapist widget  {base_url}/widget?token={lossy_watch}",
        f"  session report    {base_url}/v1/sessions/{lossy.id}/report.html?token={lossy_watch}",
        "  (either in another language: add &lang=de, fr, es, pt-BR or nl)",
        "",
        "Try:",
        f'  curl -H "Authorization: Bearer $ADMIN_TOKEN" {base_url}/v1/sessions',
        f'  curl -H "Authorization: Bearer ${_variable(first.id)}" '
        f"{base_url}/v1/sessions/{first.id}",
        f"  curl {base_url}/metrics",
        f'  qualmon publish --url {base_url}/whip --token "$PUBLISH_TOKEN" --wav your.wav '
        "--loss 0.02 --ice-addresses 127.0.0.1",
        "",
    ]
    if generated_secret:
        lines += [
            "The signing secret was generated for this run: these tokens stop working when the",
            "demo stops. Set QUALMON_SECRET to keep them (and to mint more with `qualmon token`).",
            "",
        ]
    lines += ["Ctrl-C to stop.", ""]
    return "\n".join(lines)


def _variable(session_id: str) -> str:
    return "WATCH_" + session_id.upper().replace("-", "_")


async def run_demo(args: argparse.Namespace) -> int:
    """Serve, print the banner, loop the sessions; stop on a signal or after --seconds."""
    env_secret = os.environ.get("QUALMON_SECRET", "")
    secret = env_secret or secrets.token_hex(32)
    settings = demo_settings(args, secret)
    packets = speech_like_packets()  # encoded once, replayed by every publisher

    app = create_app(settings)
    runner = web.AppRunner(app, access_log_class=PrivateAccessLogger, shutdown_timeout=8.0)
    await runner.setup()
    problem = await start_site(runner, settings.host, settings.port)
    if problem is not None:
        print(f"qualmon demo: {problem}", file=sys.stderr, flush=True)
        return 1
    port = runner.addresses[0][1]  # the real one, should --port be 0
    base_url = f"http://{_client_host(settings.host)}:{port}"
    print(banner(base_url, secret, generated_secret=not env_secret), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = (signal.SIGINT, signal.SIGTERM)
    for signum in handled:
        loop.add_signal_handler(signum, stop.set)
    http = aiohttp.ClientSession()
    tasks = [
        asyncio.create_task(
            loop_session(
                d, whip_url=base_url + "/whip", secret=secret, packets=packets, http=http, stop=stop
            ),
            name=f"qualmon-demo-{d.id}",
        )
        for d in DEMO_SESSIONS
    ]

    async def stop_when_drained() -> None:
        # A drain asked of the demo (`qualmon drain`, POST /v1/admin/drain) ends its
        # simulated sessions, so their legs end and the demo exits, as a served one does.
        await app[drain_key].started.wait()
        stop.set()

    draining = asyncio.create_task(stop_when_drained(), name="qualmon-demo-drain")
    try:
        await _sleep_or_stop(stop, args.seconds)
    finally:
        print("stopping…", flush=True)
        stop.set()
        draining.cancel()
        # Running sessions see `stop` and end with a DELETE. Cancelling them at once could
        # cut those DELETEs short, so only a session still connecting after the grace is.
        _, connecting = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_SECONDS)
        for task in connecting:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await http.close()
        await runner.cleanup()
        for signum in handled:
            loop.remove_signal_handler(signum)
    print("stopped.", flush=True)
    return 0
