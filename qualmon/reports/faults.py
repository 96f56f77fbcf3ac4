"""Storage faults: what a failed store call means, when to retry, how often to say so."""

from __future__ import annotations

import errno
import os
import resource
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import psycopg

from .pending import PendingKind

StoreOp = Literal["open", "checkpoint", "final", "warning", "purge", "read", "cluster"]
STORE_OPS: tuple[StoreOp, ...] = (
    "open",
    "checkpoint",
    "final",
    "warning",
    "purge",
    "read",
    "cluster",
)
"What the store was doing when it failed: preparing at start, writing a live session's "
"checkpoint, a final report, a warning, purging, reading, or the cluster's membership "
"(heartbeats, claims)."

STORE_ERRORS = (sqlite3.Error, psycopg.Error, OSError)
"Everything a store call raises when the disk or the database refuses."
REJECTED_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.ProgrammingError,
    sqlite3.InterfaceError,
    sqlite3.DataError,
    psycopg.IntegrityError,
    psycopg.ProgrammingError,
    psycopg.DataError,
    psycopg.NotSupportedError,
)
"Errors that retrying the same write cannot cure: the write itself is refused."

STORAGE_FAULTS = (
    "locked by another process",
    "read-only",
    "disk full",
    "cannot open its files",
    "I/O error",
    "database unreachable",
)
"Reasons that pass when the disk or another process lets go: worth waiting out (any other "
"at start means the file is not a usable store)."

RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0
LOG_EVERY_SECONDS = 60.0
FREE_SPACE_MARGIN_BYTES = 1 << 20
"Less than this free (or left below the file-size limit) counts as a full disk."
STORE_LOGGER = "qualmon.reports.async_store"
"Every line about the store's faults, whichever module writes it, logs under this one name"
"(operators and the fault tests filter on it)."


class StoreUnavailable(Exception):
    """The store could not do what was asked just now; `reason` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class StoreHealth:
    """The store's state as /readyz and /metrics show it."""

    reason: str | None
    "Why writes fail ('disk full', 'read-only', …); None while they succeed."
    pending: Mapping[PendingKind, int]
    "Reports waiting in memory, by kind."
    max_pending: int
    dropped: Mapping[PendingKind, int]
    "Reports dropped unsaved since start, by kind."
    errors: Mapping[StoreOp, int]
    "Failed store calls since start, by what they were doing."

    @property
    def writable(self) -> bool:
        return self.reason is None


def retry_delay(failures: int) -> float:
    """Seconds to the next attempt after `failures` failed ones in a row: 1, 2, 4 … 30."""
    return float(min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** max(0, failures - 1)))


def describe(exc: BaseException) -> str:
    """The error's code and first line: SQLite's and PostgreSQL's primary messages carry
    no session data (PostgreSQL's DETAIL may, and is left out); psycopg's connection errors
    name the host and port, never the password."""
    name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
    sqlstate = getattr(exc, "sqlstate", None)
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{name}{f' ({sqlstate})' if sqlstate else ''}: {first}"


PG_REASONS = (
    ("08", "database unreachable"),
    ("57P", "database unreachable"),
    ("53100", "disk full"),
    ("25006", "read-only"),
    ("55P03", "locked by another process"),
    ("40", "locked by another process"),
)
"PostgreSQL SQLSTATE prefixes and what they mean here: connection lost, the server shutting "
"down or starting, its disk full, a read-only standby, a lock wait timed out, a deadlock."


def _pg_reason(exc: psycopg.Error) -> str:
    sqlstate = exc.sqlstate
    if sqlstate is None:
        # libpq's own errors (refused, timed out, closed) have no SQLSTATE.
        return "database unreachable" if isinstance(exc, psycopg.OperationalError) else "error"
    for prefix, reason in PG_REASONS:
        if sqlstate.startswith(prefix):
            return reason
    return "error"


def fault_reason(exc: BaseException, *, out_of_space: Callable[[], bool]) -> str:
    """Why a store call failed, in a few words for /readyz and the logs."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    code = exc.errno if isinstance(exc, OSError) else None
    if isinstance(exc, REJECTED_ERRORS):
        return "write refused"
    if isinstance(exc, psycopg.Error):
        return _pg_reason(exc)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return "locked by another process"
    if name.startswith(("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")) or code in (
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
    ):
        return "read-only"
    if name == "SQLITE_FULL" or code in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return "disk full"
    if name.startswith("SQLITE_CANTOPEN"):
        return "cannot open its files"
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return "database corrupt"
    if name.startswith("SQLITE_IOERR") or isinstance(exc, OSError):
        # SQLite reports a write refused for lack of space (or over the process's file-size
        # limit, EFBIG) as a plain I/O error; look at the disk to tell them apart.
        return "disk full" if out_of_space() else "I/O error"
    return "error"


def out_of_space(path: str) -> bool:
    """The store's file system is (nearly) full, or its files reached the process's
    file-size limit (RLIMIT_FSIZE)."""
    if path == ":memory:":
        return False
    try:
        stat = os.statvfs(os.path.dirname(os.path.abspath(path)))
        if stat.f_bavail * stat.f_frsize < FREE_SPACE_MARGIN_BYTES:
            return True
        limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        if limit == resource.RLIM_INFINITY:
            return False
        sizes = [
            os.path.getsize(p)
            for p in (path, path + "-wal", path + "-shm", path + "-journal")
            if os.path.exists(p)
        ]
        return max(sizes, default=0) + FREE_SPACE_MARGIN_BYTES >= limit
    except OSError:
        return False


@dataclass(frozen=True)
class FaultLine:
    """A log line is due: the first of a fault, or a reminder."""

    first: bool
    "The first line of this fault (else: it still goes on)."
    failures: int
    "Failed attempts this line stands for (since the previous line)."


class FaultLog:
    """At most one line a minute about a failing store, and one when it recovers (only
    after a fault that was told)."""

    def __init__(self, every_seconds: float = LOG_EVERY_SECONDS) -> None:
        self.every_seconds = every_seconds
        self._last_line: float | None = None
        self._untold = 0
        self._told = False

    def failed(self, now: float) -> FaultLine | None:
        """Call on every failed attempt: a line to log, or None."""
        self._untold += 1
        if self._last_line is not None and now - self._last_line < self.every_seconds:
            return None
        line = FaultLine(first=not self._told, failures=self._untold)
        self._last_line, self._untold, self._told = now, 0, True
        return line

    def recovered(self) -> bool:
        """Call when an attempt succeeds after failures: True when a line is due."""
        told, self._told, self._untold = self._told, False, 0
        return told
