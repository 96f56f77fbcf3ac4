"""The SQLite report store (the embedded default): its file, connection and transactions;
what it shares with PostgreSQL's is in `sql_store`."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .sql_db import Db
from .sql_store import BUSY_TIMEOUT_SECONDS, BaseReportStore, migrations

__all__ = ["BUSY_TIMEOUT_SECONDS", "ReportStore", "migrations"]


def _statements(script: str) -> Iterator[str]:
    """Split a script into statements, so they run inside our own transaction
    (executescript would commit first)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer
            buffer = ""


class ReportStore(BaseReportStore):
    """The SQLite store: one file, WAL mode, owner-only."""

    SCHEMA_VERSION_TABLE = (
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
    )

    def __init__(self, path: str, *, prepare: bool = True) -> None:
        """Open the store; with `prepare` (the default) also switch on WAL and migrate.

        The service opens with `prepare=False` and prepares on its writer, so that a store
        that cannot be written at start (read-only, full, locked) delays only the writes.
        """
        self.path = self.label = path
        if path != ":memory:" and not os.path.exists(path):
            # Health data: readable by the service's user only (WAL/SHM files inherit this).
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = self._connect()
        if prepare:
            self.prepare()

    def _connect(self) -> sqlite3.Connection:
        """A connection; reads nothing yet, so it opens even where the file cannot be read
        (a read-only directory without WAL files)."""
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def _tune(self, db: sqlite3.Connection) -> None:
        # NORMAL is durable across a process crash in WAL mode; only power loss can drop
        # the last commits, which is what a checkpoint cadence accepts anyway.
        db.execute("PRAGMA synchronous=NORMAL")

    def prepare(self) -> int:
        """WAL mode and pending migrations (both write); returns how many migrations ran."""
        self._tune(self._db)
        self._enable_wal()
        return self.migrate()

    def _enable_wal(self) -> None:
        """Switch to WAL, waiting out other processes doing the same on a new file: SQLite
        answers this pragma "database is locked" at once, without its busy handler (seen
        with four stores opening one file together)."""
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def reopen(self) -> None:
        """A fresh connection: one opened while the file was read-only stays read-only.

        The old connection is kept if the new one cannot be opened.
        """
        fresh = self._connect()
        try:
            self._tune(fresh)
        except BaseException:
            fresh.close()
            raise
        self._db.close()
        self._db = fresh

    def set_busy_timeout(self, seconds: float) -> None:
        self._db.execute(f"PRAGMA busy_timeout={round(seconds * 1000)}")

    @contextmanager
    def _transaction(self) -> Iterator[Db]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            # SQLite has already rolled back after some errors (a full disk, an I/O error):
            # a second ROLLBACK would fail and hide the error that matters.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _reader(self) -> Db:
        return self._db

    def _lock_schema(self, db: Db) -> None:
        """BEGIN IMMEDIATE already holds the database's one write lock."""

    def _run_script(self, db: Db, script: str) -> None:
        for statement in _statements(script):
            db.execute(statement)

    def close(self) -> None:
        self._db.close()
