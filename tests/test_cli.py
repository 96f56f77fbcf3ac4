"""The `qualmon` command line, run as real subprocesses: serve, token, demo, publish."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

import aiohttp
import numpy as np
import pytest

from qualmon.service.auth import issue_token, verify_token
from qualmon.sim.demo import DEMO_SESSIONS

from .conftest import SECRET, Service, wait_for

CLI = (sys.executable, "-m", "qualmon.cli")
CHECKOUT = Path(__file__).resolve().parent.parent
"The qualmon these tests belong to (a git worktree's, not the one the venv installed)."


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The caller's environment without any QUALMON_* setting, a throwaway store, and this
    checkout's qualmon first on the path (the subprocess runs in tmp_path)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QUALMON_")}
    clean["QUALMON_DB"] = str(tmp_path / "qualmon.db")
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHECKOUT), clean.get("PYTHONPATH")]))
    return clean


def run_cli(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def free_port() -> int:
    """A TCP port nobody listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_file(cwd: Path) -> BinaryIO:
    # A local file opened once per process; not worth a thread.
    return open(cwd / "stderr.log", "wb")


@contextlib.asynccontextmanager
async def cli_process(
    *args: str, env: dict[str, str], cwd: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A running `qualmon` with stdout piped and stderr in cwd/stderr.log; killed if left."""
    with log_file(cwd) as stderr:
        proc = await asyncio.create_subprocess_exec(
            *CLI, *args, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=stderr
        )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def stderr_of(cwd: Path) -> str:
    return (cwd / "stderr.log").read_text(errors="replace")


async def answers(
    http: aiohttp.ClientSession, url: str, proc: asyncio.subprocess.Process, cwd: Path
) -> bool:
    """Whether `url` answers 200; fails at once if the process already exited."""
    if proc.returncode is not None:
        raise AssertionError(f"exited {proc.returncode} early:\n{stderr_of(cwd)}")
    try:
        async with http.get(url) as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


async def read_until(stream: asyncio.StreamReader, marker: str, timeout: float) -> str:
    """Lines from `stream` up to and including the one containing `marker`."""
    lines: list[str] = []

    async def read() -> None:
        while True:
            line = await stream.readline()
            if not line:
                raise AssertionError(f"output ended before {marker!r}:\n{''.join(lines)}")
            lines.append(line.decode())
            if marker in lines[-1]:
                return

    await asyncio.wait_for(read(), timeout)
    return "".join(lines)


def write_tone(path: Path, *, seconds: float = 1.0, rate: int = 44100) -> None:
    """A stereo 440 Hz WAV at a rate other than 48 kHz, so the publisher must resample."""
    t = np.arange(int(seconds * rate)) / rate
    mono = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(mono, 2).tobytes())


# -- serve -------------------------------------------------------------------


def test_serve_without_secret_names_it(env: dict[str, str], tmp_path: Path) -> None:
    """No QUALMON_SECRET: a non-zero exit and a message that says which variable."""
    result = run_cli("serve", "--port", str(free_port()), env=env, cwd=tmp_path)
    assert result.returncode != 0
    assert "QUALMON_SECRET" in result.stderr


def test_serve_with_short_secret_refuses(env: dict[str, str], tmp_path: Path) -> None:
    """A guessable secret is refused like a missing one."""
    env["QUALMON_SECRET"] = "short"
    result = run_cli("serve", "--port", str(free_port()), env=env, cwd=tmp_path)
    assert result.returncode != 0
    assert "QUALMON_SECRET" in result.stderr and "short" in result.stderr


async def test_serve_answers_healthz_and_exits_on_sigterm(
    env: dict[str, str], tmp_path: Path
) -> None:
    """With a secret it serves /healthz; SIGTERM ends it with exit 0 within 10 s."""
    env["QUALMON_SECRET"] = SECRET
    port = free_port()
    async with (
        cli_process("serve", "--port", str(port), env=env, cwd=tmp_path) as proc,
        aiohttp.ClientSession() as http,
    ):
        url = f"http://127.0.0.1:{port}/healthz"
        await wait_for(
            lambda: answers(http, url, proc, tmp_path), timeout=30, what="/healthz to answer"
        )
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0, stderr_of(tmp_path)


def test_serve_on_a_taken_port_says_so(env: dict[str, str], tmp_path: Path) -> None:
    """A port in use: one line naming it and the way out, exit 1, no traceback."""
    env["QUALMON_SECRET"] = SECRET
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", str(port), env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert f"qualmon serve: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port or QUALMON_PORT" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("flags", "needle"),
    [(("--max-legs", "0"), "--max-legs"), (("--port", "-1"), "--port")],
)
def test_serve_checks_flags_like_variables(
    env: dict[str, str], tmp_path: Path, flags: tuple[str, str], needle: str
) -> None:
    """A bad flag is refused before anything starts, as the same bad variable is."""
    env["QUALMON_SECRET"] = SECRET
    result = run_cli("serve", *flags, env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"qualmon: {needle} must be")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("flag", ["--port", "--max-legs"])
def test_integer_flags_take_ascii_digits_only(
    env: dict[str, str], tmp_path: Path, flag: str
) -> None:
    """Fullwidth "８０８０" is 8080 to int(), not to an operator reading the command line."""
    env["QUALMON_SECRET"] = SECRET
    result = run_cli("serve", flag, "８０８０", env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"argument {flag}: '８０８０' is not an integer in digits 0-9" in result.stderr


# -- token -------------------------------------------------------------------


def test_token_prints_a_verifiable_jwt(env: dict[str, str], tmp_path: Path) -> None:
    """The printed token carries the requested claims under QUALMON_SECRET."""
    env["QUALMON_SECRET"] = SECRET
    result = run_cli(
        "token", "--scope", "publish", "--session", "s", "--role", "client", env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.count(".") == 2
    claims = verify_token(SECRET, token)
    assert (claims.scope, claims.session, claims.role) == ("publish", "s", "client")


def test_token_publish_without_role_exits_2(env: dict[str, str], tmp_path: Path) -> None:
    """A publish token without a role is refused with a message naming --role."""
    env["QUALMON_SECRET"] = SECRET
    result = run_cli("token", "--scope", "publish", "--session", "s", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "--role" in result.stderr
    assert result.stdout == ""


def test_token_carries_a_locale_claim(env: dict[str, str], tmp_path: Path) -> None:
    """--locale: the reader's language in the token; a non-tag is refused (exit 2)."""
    env["QUALMON_SECRET"] = SECRET
    result = run_cli(
        "token", "--scope", "watch", "--session", "s", "--locale", "pt-BR", env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert verify_token(SECRET, result.stdout.strip()).locale == "pt-BR"
    bad = run_cli("token", "--scope", "admin", "--locale", "<de>", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "locale must be a language tag" in bad.stderr


def test_token_without_secret_exits_2(env: dict[str, str], tmp_path: Path) -> None:
    """No QUALMON_SECRET: exit 2 naming it."""
    result = run_cli("token", "--scope", "admin", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "QUALMON_SECRET" in result.stderr


# -- demo --------------------------------------------------------------------


@pytest.mark.realtime
async def test_demo_runs_the_sessions_and_stops_by_itself(
    env: dict[str, str], tmp_path: Path
) -> None:
    """`demo --seconds 20` prints URL and tokens, runs four live sessions, exits 0."""
    port = free_port()
    env["QUALMON_PORT"] = str(port)
    async with (
        cli_process("demo", "--seconds", "20", env=env, cwd=tmp_path) as proc,
        aiohttp.ClientSession() as http,
    ):
        assert proc.stdout is not None
        banner = await read_until(proc.stdout, "Ctrl-C to stop", timeout=30)
        base_url = f"http://127.0.0.1:{port}"
        assert f"Service       {base_url}" in banner
        admin = re.search(r"export ADMIN_TOKEN=(\S+)", banner)
        assert admin is not None, banner
        assert f'curl -H "Authorization: Bearer $ADMIN_TOKEN" {base_url}/v1/sessions' in banner
        for demo in DEMO_SESSIONS:
            assert f"{base_url}/v1/sessions/{demo.id}" in banner

        async def all_live() -> bool:
            headers = {"Authorization": f"Bearer {admin.group(1)}"}
            async with http.get(base_url + "/v1/sessions", headers=headers) as r:
                assert r.status == 200, await r.text()
                sessions = {s["id"]: s for s in (await r.json())["sessions"]}
            return all(
                d.id in sessions
                and all(
                    (leg := sessions[d.id]["legs"].get(role)) is not None
                    and leg["state"] == "live"
                    and leg["packets_received"] > 0
                    for role in ("therapist", "client")
                )
                for d in DEMO_SESSIONS
            )

        await wait_for(all_live, timeout=15, interval=0.5, what="four live demo sessions")
        assert await asyncio.wait_for(proc.wait(), 30) == 0, stderr_of(tmp_path)
        assert "stopped." in (await proc.stdout.read()).decode()
    logs = stderr_of(tmp_path)
    assert admin.group(1) not in logs and "127.0.0.1" not in logs and "a=candidate" not in logs


@pytest.mark.realtime
async def test_a_drained_demo_ends_its_sessions_and_exits(
    env: dict[str, str], tmp_path: Path
) -> None:
    """POST /v1/admin/drain to a running demo (no --seconds): its simulated sessions end
    and it exits 0, as a drained `qualmon serve` does."""
    port = free_port()
    env["QUALMON_PORT"] = str(port)
    async with (
        cli_process("demo", env=env, cwd=tmp_path) as proc,
        aiohttp.ClientSession() as http,
    ):
        assert proc.stdout is not None
        banner = await read_until(proc.stdout, "Ctrl-C to stop", timeout=30)
        admin = re.search(r"export ADMIN_TOKEN=(\S+)", banner)
        assert admin is not None, banner
        base_url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {admin.group(1)}"}

        async def some_live() -> bool:
            async with http.get(base_url + "/v1/sessions", headers=headers) as r:
                assert r.status == 200, await r.text()
                sessions = (await r.json())["sessions"]
            return any(leg["state"] == "live" for s in sessions for leg in s["legs"].values())

        await wait_for(some_live, timeout=30, interval=0.5, what="a live demo leg")
        async with http.post(base_url + "/v1/admin/drain", headers=headers) as r:
            assert r.status in (200, 202), await r.text()
        assert await asyncio.wait_for(proc.wait(), 60) == 0, stderr_of(tmp_path)
        assert "stopped." in (await proc.stdout.read()).decode()


# -- publish -----------------------------------------------------------------


@pytest.mark.realtime
async def test_publish_sends_a_file_through_loss(
    service: Service, env: dict[str, str], tmp_path: Path
) -> None:
    """A resampled WAV at 10 % loss for 4 s: exit 0, and the service counts losses."""
    wav = tmp_path / "tone.wav"
    write_tone(wav)
    token = service.token("publish", "cli-publish", "client")
    args = ("--url", service.whip_url, "--token", token, "--wav", str(wav))
    args += ("--seconds", "4", "--loss", "0.1", "--ice-addresses", "127.0.0.1")
    async with cli_process("publish", *args, env=env, cwd=tmp_path) as proc:
        assert proc.stdout is not None
        out = (await asyncio.wait_for(proc.stdout.read(), 40)).decode()
        assert await asyncio.wait_for(proc.wait(), 10) == 0, stderr_of(tmp_path)
    assert "connected" in out and "/whip/" in out
    assert re.search(r"stopping after .*\d+ packets sent, [1-9]\d* dropped", out), out
    leg = (await service.session_json("cli-publish"))["legs"]["client"]
    assert leg["packets_received"] > 100
    assert leg["packets_lost"] > 0


async def test_publish_refused_prints_the_reason(
    service: Service, env: dict[str, str], tmp_path: Path
) -> None:
    """A token the service does not accept: exit 1 with the server's 401 reason."""
    token = issue_token("another-secret-" + "y" * 24, scope="publish", session="s", role="client")
    args = ("--url", service.whip_url, "--token", token, "--ice-addresses", "127.0.0.1")
    async with cli_process("publish", *args, env=env, cwd=tmp_path) as proc:
        assert await asyncio.wait_for(proc.wait(), 40) == 1
    err = stderr_of(tmp_path)
    assert "401" in err and "invalid token" in err


def test_publish_rejects_loss_out_of_range(env: dict[str, str], tmp_path: Path) -> None:
    """--loss is a ratio: 2 exits 2 before any connection is tried."""
    result = run_cli(
        "publish",
        "--url",
        "http://127.0.0.1:9/whip",
        "--token",
        "t",
        "--loss",
        "2",
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "--loss" in result.stderr and "0..1" in result.stderr


@pytest.mark.parametrize("content", [None, b"not audio at all " * 64])
def test_publish_rejects_unusable_files(
    env: dict[str, str], tmp_path: Path, content: bytes | None
) -> None:
    """A missing or undecodable --wav exits 2 naming the file."""
    wav = tmp_path / "input.wav"
    if content is not None:
        wav.write_bytes(content)
    result = run_cli(
        "publish",
        "--url",
        "http://127.0.0.1:9/whip",
        "--token",
        "t",
        "--wav",
        str(wav),
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "--wav" in result.stderr and str(wav) in result.stderr


def test_loss_rule_bench_runs_the_shipped_rule(tmp_path: Path, env: dict[str, str]) -> None:
    """`qualmon bench --loss-rule` (offline) prints every row; heavy loss is never missed."""
    result = run_cli(
        "bench", "--loss-rule", "--legs-sim", "4", "--calm-minutes", "0.5", env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for row in ("1% loss", "2% loss", "loss 5%", "loss 10%", "loss 20%"):
        assert row in out, out
    line = next(x for x in out.splitlines() if x.startswith("loss 20%"))
    assert line.split()[6] == "0", line  # missed
