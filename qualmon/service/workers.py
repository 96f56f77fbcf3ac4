"""`qualmon serve --workers N`: N serving processes behind one port, kept running.

Each worker is `python -m qualmon serve` listening on the public port with SO_REUSEPORT (the
kernel spreads new connections over them) and on an internal port of its own, which it
advertises to the other instances for relayed requests. They share the report store (SQLite
in WAL mode is enough on one host). SIGTERM/SIGINT to the supervisor is forwarded to every
worker, which drains (a second one ends the drains now); a drain asked of one worker through
the API drains all (SIGUSR1 from that worker); the supervisor exits when all have exited.
A worker that fails (exits non-zero or is killed) while no stop was asked for is restarted
after a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..config import Settings
from ..config.flags import MAX_WORKERS as MAX_WORKERS

log = logging.getLogger(__name__)

CLEAN_EXITS = (0, -signal.SIGTERM, -signal.SIGINT)
"0, or ended by the forwarded signal before it could install its handlers (still starting,"
" so nothing to save)."
CONFIG_ERROR_EXIT = 2
"`qualmon` exits 2 on a ConfigError (cli.main)."
DRAIN_ALL_SIGNAL = signal.SIGUSR1
"What a worker drained through the API sends the supervisor: drain every worker."
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
HEALTHY_AFTER_SECONDS = 60.0
"A worker that ran this long before exiting starts its backoff afresh."


def backoff_seconds(failures: int) -> float:
    """The wait before the restart that follows `failures` quick exits in a row (1, 2, …)."""
    return min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2.0 ** max(0, failures - 1))


def _family(host: str) -> socket.AddressFamily:
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).version == 6:
            return socket.AF_INET6
    return socket.AF_INET


def hold_public_port(host: str, port: int) -> socket.socket:
    """A bound, never listening SO_REUSEPORT socket on host:port, held while the supervisor
    runs: port 0 becomes one port for all workers, a port taken by another program is an
    error before any worker starts, and nobody else takes it between worker restarts.
    Only listening sockets receive connections, so this one takes none."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def free_port(host: str) -> int:
    """A port nobody listens on now (a worker that loses a race for it exits and is
    restarted with another)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def reachable_host(host: str) -> str:
    """The address siblings reach a worker at: loopback for a wildcard listener."""
    with contextlib.suppress(ValueError):
        address = ipaddress.ip_address(host)
        if address.is_unspecified:
            return "::1" if address.version == 6 else "127.0.0.1"
        return f"[{address}]" if address.version == 6 else str(address)
    return host


def worker_env(settings: Settings, base: Mapping[str, str], *, port: int) -> dict[str, str]:
    """The environment of one worker: the resolved settings (flags included) as variables,
    not as arguments, so a PostgreSQL URL's password never shows in `ps`."""
    internal = free_port(settings.host)
    env = dict(base)
    env.update(
        QUALMON_HOST=settings.host,
        QUALMON_PORT=str(port),
        QUALMON_MAX_LEGS=str(settings.max_legs),
        QUALMON_DB=settings.db_path,
        QUALMON_REUSE_PORT="on",
        QUALMON_INTERNAL_PORT=str(internal),
        QUALMON_ADVERTISE_URL=f"http://{reachable_host(settings.host)}:{internal}",
    )
    if settings.ice_addresses is not None:
        env["QUALMON_ICE_ADDRESSES"] = ",".join(settings.ice_addresses)
    return env


@dataclass
class Supervisor:
    """Starts `count` workers with `command(slot)` (argv, env) and keeps them running."""

    count: int
    command: Callable[[int], tuple[Sequence[str], Mapping[str, str]]]
    backoff: Callable[[int], float] = backoff_seconds
    stopping: bool = False
    config_error: bool = False
    codes: dict[int, int] = field(default_factory=dict)
    "Each slot's last exit code."
    _procs: dict[int, asyncio.subprocess.Process] = field(default_factory=dict)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs.values() if p.returncode is None]

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Forward `signum` to every worker (each drains; a second one ends the drains)."""
        if not self.stopping:
            log.info("stopping: %s to %d workers", signal.Signals(signum).name, len(self.pids))
        self.stopping = True
        self._stop.set()
        for proc in self._procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signum)

    def drain_all(self) -> None:
        """A worker began draining on request: drain them all, once (workers share one
        address, so one of them cannot be taken out of a load balancer alone)."""
        if not self.stopping:
            self.stop(signal.SIGTERM)

    async def run(self) -> int:
        """0 when every worker exited cleanly, else 1."""
        await asyncio.gather(*(self._keep(slot) for slot in range(self.count)))
        if self.config_error:
            return CONFIG_ERROR_EXIT
        return 0 if all(code in CLEAN_EXITS for code in self.codes.values()) else 1

    async def _keep(self, slot: int) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while not self.stopping:
            argv, env = self.command(slot)
            # Its own session: a terminal's Ctrl-C reaches the supervisor only, which
            # forwards it once (a second signal to a worker would cut its drain short).
            proc = await asyncio.create_subprocess_exec(*argv, env=env, start_new_session=True)
            self._procs[slot] = proc
            if self.stopping:  # a signal came while it started
                proc.send_signal(signal.SIGTERM)
            started = loop.time()
            code = self.codes[slot] = await proc.wait()
            if self.stopping:
                break
            if code == CONFIG_ERROR_EXIT:
                # The same settings would fail the same way on every restart.
                log.error("worker %d exited with a configuration error: stopping", slot)
                self.config_error = True
                self.stop()
                break
            if code == 0:
                # Only a drain ends a worker with 0, and a drain asked of one worker
                # drains all (SIGUSR1 may still be on its way): not a crash.
                log.info("worker %d (pid %d) drained and exited", slot, proc.pid)
                break
            lived = loop.time() - started
            failures = 1 if lived >= HEALTHY_AFTER_SECONDS else failures + 1
            delay = self.backoff(failures)
            log.warning(
                "worker %d (pid %d) exited with %s after %.0f s; restarting in %.1f s",
                slot,
                proc.pid,
                _exit_text(code),
                lived,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)


def _exit_text(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
    return f"code {code}"


async def supervise(settings: Settings, count: int, *, verbose: bool = False) -> int:
    """Run `count` workers of `settings` until a signal; the exit code."""
    try:
        holder = hold_public_port(settings.host, settings.port)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        print(
            f"qualmon serve: cannot listen on {settings.host}:{settings.port} ({reason}); "
            "choose another with --port or QUALMON_PORT",
            file=sys.stderr,
            flush=True,
        )
        return 1
    with holder:
        port = int(holder.getsockname()[1])
        argv = [sys.executable, "-m", "qualmon", "serve", "--worker-of", str(os.getpid())]
        if verbose:
            argv.append("--verbose")
        supervisor = Supervisor(
            count, lambda slot: (argv, worker_env(settings, os.environ, port=port))
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, supervisor.stop, signum)
        loop.add_signal_handler(DRAIN_ALL_SIGNAL, supervisor.drain_all)
        print(f"Running on http://{settings.host}:{port} with {count} workers", flush=True)
        code = await supervisor.run()
    log.info("all workers exited")
    return code
