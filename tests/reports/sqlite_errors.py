"""Real SQLite errors of the storage faults the service meets, made on demand."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path


def error_of(db: sqlite3.Connection, sql: str, *args: object) -> sqlite3.Error:
    try:
        db.execute(sql, args)
    except sqlite3.Error as exc:
        return exc
    raise AssertionError(f"{sql} did not fail")


def full_disk_error() -> sqlite3.Error:
    """SQLITE_FULL, as a full disk gives it: a database capped at two pages."""
    with contextlib.closing(sqlite3.connect(":memory:", isolation_level=None)) as db:
        db.execute("CREATE TABLE x (v)")
        db.execute("PRAGMA max_page_count=2")
        return error_of(db, "INSERT INTO x VALUES (?)", b"x" * 100_000)


def read_only_error(path: Path) -> sqlite3.Error:
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("CREATE TABLE IF NOT EXISTS x (v)")
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as ro:
        return error_of(ro, "INSERT INTO x VALUES (1)")


def locked_error(path: Path) -> sqlite3.Error:
    """SQLITE_BUSY: another connection holds BEGIN EXCLUSIVE (no waiting for it here)."""
    with (
        contextlib.closing(sqlite3.connect(path, isolation_level=None)) as holder,
        contextlib.closing(sqlite3.connect(path, isolation_level=None, timeout=0)) as writer,
    ):
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("CREATE TABLE IF NOT EXISTS x (v)")
        holder.execute("BEGIN EXCLUSIVE")
        return error_of(writer, "INSERT INTO x VALUES (1)")


def io_error() -> sqlite3.Error:
    """What a write over the file-size limit (EFBIG) gives: a plain I/O error."""
    exc = sqlite3.OperationalError("disk I/O error")
    exc.sqlite_errorname = "SQLITE_IOERR_WRITE"
    return exc
