"""A throwaway PostgreSQL cluster for tests: made with initdb in a temp dir, as a non-root
user (initdb refuses root), on a free loopback port, with a password (so tests can check
that it never reaches a log); stopped and removed at the end."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
"Debian's `postgresql` (15); the Makefile installs it as root."
OS_USER = "nobody"
"Who runs the cluster when the tests run as root."
DB_USER = "qualmon"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    root: Path
    port: int
    password: str
    as_user: tuple[str, ...]
    "The command prefix that runs PostgreSQL's tools as the cluster's owner."

    @property
    def data(self) -> Path:
        return self.root / "data"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{DB_USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        # fsync off: a test cluster need not survive a power cut, and the disk is shared.
        options = f"-k {self.root} -p {self.port} -h 127.0.0.1 -c fsync=off"
        self._ctl("-l", str(self.root / "log"), "-w", "-o", options, "start")

    def stop(self) -> None:
        """Down at once, as a crashed or unreachable server would be."""
        self._ctl("-m", "immediate", "-w", "stop")

    def _pids(self) -> list[int]:
        """The postmaster (from its pid file) and its children."""
        main = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(
            ["pgrep", "-P", str(main)], capture_output=True, text=True, timeout=10
        ).stdout.split()
        return [main, *map(int, children)]

    def freeze(self) -> None:
        """SIGSTOP every process of the cluster: its host still answers TCP, the server
        answers nothing (a hung disk, a swapping machine)."""
        for pid in self._pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._pids():
            os.kill(pid, signal.SIGCONT)

    def create_database(self, name: str) -> str:
        """A fresh database; its URL."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def remove(self) -> None:
        try:
            self._ctl("-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass  # already down
        shutil.rmtree(self.root, ignore_errors=True)


def make_cluster() -> Cluster | str:
    """A running cluster, or why there cannot be one here (a skip reason)."""
    if not (PG_BIN / "initdb").exists():
        return "PostgreSQL 15 is not installed (Debian package `postgresql`)"
    as_user: tuple[str, ...] = ()
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            return "running as root without runuser: initdb refuses root"
        as_user = (runuser, "-u", OS_USER, "--")
    root = Path(tempfile.mkdtemp(prefix="qualmon-pg-"))
    password = secrets.token_hex(16)
    (root / "pw").write_text(password)
    if as_user:
        shutil.chown(root, OS_USER)
        shutil.chown(root / "pw", OS_USER)
    cluster = Cluster(root, _free_port(), password, as_user)
    try:
        subprocess.run(
            [
                *as_user,
                str(PG_BIN / "initdb"),
                "-D",
                str(cluster.data),
                "-U",
                DB_USER,
                f"--pwfile={root / 'pw'}",
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        cluster.start()
    except (subprocess.SubprocessError, OSError) as exc:
        cluster.remove()
        return f"cannot run a PostgreSQL cluster here: {exc}"
    return cluster


@contextmanager
def cluster_or_skip() -> Iterator[Cluster]:
    """A running cluster for a fixture, removed after; the test skipped (with the reason)
    where PostgreSQL cannot be installed or run."""
    cluster = make_cluster()
    if isinstance(cluster, str):
        pytest.skip(cluster)
    try:
        yield cluster
    finally:
        cluster.remove()
