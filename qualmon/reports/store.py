"""The SQLite report store: its connection, migrations and transactions, with the SQL of
writes and reads in `sqlite_writes` and `sqlite_reads`."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib import resources

from ..core.ascii_digits import parse_ascii_int
from . import sqlite_reads, sqlite_writes
from .model import Checkpoint, ReportListing, SessionReport, WarningRecord

BUSY_TIMEOUT_SECONDS = 5
"How long a write waits for another process's write lock (a `qualmon purge`, a backup)."


def migrations() -> list[tuple[int, str]]:
    """(version, SQL) of every file in qualmon/reports/migrations, oldest first."""
    folder = resources.files("qualmon.reports") / "migrations"
    found = []
    for entry in folder.iterdir():
        name = entry.name
        version = parse_ascii_int(name[:4], max_digits=4)
        if name.endswith(".sql") and version is not None:
            found.append((version, entry.read_text(encoding="utf-8")))
    return sorted(found)


def _statements(script: str) -> Iterator[str]:
    """Split a script into statements, so they run inside our own transaction
    (executescript would commit first)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer
            buffer = ""


class ReportStore:
    """Blocking access to the store; one instance per thread (the service runs it in one)."""

    def __init__(self, path: str, *, prepare: bool = True) -> None:
        """Open the store; with `prepare` (the default) also switch on WAL and migrate.

        The service opens with `prepare=False` and prepares on its writer, so that a store
        that cannot be written at start (read-only, full, locked) delays only the writes.
        """
        self.path = path
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
        self._db.execute("PRAGMA journal_mode=WAL")
        return self.migrate()

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
        """How long a write waits for another process's lock before failing with BUSY."""
        self._db.execute(f"PRAGMA busy_timeout={round(seconds * 1000)}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
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

    def schema_version(self) -> int:
        row = self._db.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def migrate(self) -> int:
        """Apply pending migrations, each in one transaction; returns how many ran."""
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        applied = 0
        for version, script in migrations():
            with self._transaction() as db:
                # Checked inside the write lock: two processes starting together apply once.
                if version <= self.schema_version():
                    continue
                for statement in _statements(script):
                    db.execute(statement)
                db.execute("INSERT INTO schema_version VALUES (?, ?)", (version, time.time()))
                applied += 1
        return applied

    def close(self) -> None:
        self._db.close()

    # -- writing ---------------------------------------------------------------

    def save(self, cp: Checkpoint) -> int:
        """Write a checkpoint (or the final state) of one session; returns its report id."""
        with self._transaction() as db:
            return sqlite_writes.save_checkpoint(db, cp)

    def record_warning(
        self, session_id: str, session_started_at: float, warning: WarningRecord
    ) -> None:
        """Insert a warning, or update it (same kind, role and raised_at) when it clears."""
        with self._transaction() as db:
            sqlite_writes.record_warning(db, session_id, session_started_at, warning)

    def write_session(
        self,
        session_id: str,
        started_at: float,
        *,
        checkpoint: Checkpoint | None,
        warnings: Iterable[WarningRecord],
        final: bool,
    ) -> float | None:
        """A checkpoint and warnings of one session in one transaction (the service's writer);
        for a final report, returns the share of the session with a warning active."""
        with self._transaction() as db:
            if checkpoint is not None:
                sqlite_writes.save_checkpoint(db, checkpoint)
            for warning in warnings:
                sqlite_writes.record_warning(db, session_id, started_at, warning)
        return self.degraded_ratio(session_id, started_at) if final else None

    def mark_interrupted(self) -> int:
        """Reports left open by a process that died: end them at their last checkpoint."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE reports SET end_reason = 'interrupted', ended_at = checkpoint_at"
                " WHERE ended_at IS NULL"
            )
            return cursor.rowcount

    def purge(self, before: float) -> int:
        """Delete reports of sessions that ended before `before` (epoch seconds)."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM reports WHERE ended_at IS NOT NULL AND ended_at < ?", (before,)
            )
            return cursor.rowcount

    # -- reading ---------------------------------------------------------------

    def load(self, session_id: str, started_at: float | None = None) -> SessionReport | None:
        """The newest report of `session_id` (or the one that started at `started_at`)."""
        return sqlite_reads.load_report(self._db, session_id, started_at)

    def degraded_ratio(self, session_id: str, started_at: float) -> float:
        """Share of the session with a warning active, from the warning table."""
        return sqlite_reads.report_degraded_ratio(self._db, session_id, started_at)

    def list_reports(
        self, *, since: float | None = None, until: float | None = None, limit: int = 100
    ) -> list[ReportListing]:
        """Reports whose session started in [since, until), newest first."""
        return sqlite_reads.list_reports(self._db, since=since, until=until, limit=limit)
