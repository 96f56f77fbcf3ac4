"""The SQLite report store: migrations, checkpoints, loading, listing, retention."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib import resources
from typing import cast

from ..core.ascii_digits import parse_ascii_int
from .model import (
    Checkpoint,
    DropoutMark,
    LegAggregate,
    ReportEndReason,
    ReportListing,
    SessionReport,
    SpeechSpan,
    TimelinePoint,
    WarningRecord,
    degraded_ratio,
)

BUSY_TIMEOUT_SECONDS = 5
"How long a write waits for another process's write lock (a `qualmon purge`, a backup)."
_LEG_COLUMNS = (
    "packets_received, packets_lost, loss_ratio, jitter_p50_seconds, jitter_p95_seconds, "
    "rtt_p50_seconds, rtt_p95_seconds, mos_min, mos_mean, dropouts, dropout_seconds, "
    "dropouts_in_speech, dropout_in_speech_seconds, speech_seconds, reconnects, end_reason"
)
_POINT_COLUMNS = (
    "t_seconds, recent_loss_ratio, jitter_seconds, rtt_seconds, mos, speaking, stalled, dropouts"
)


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
            return _save(db, cp)

    def record_warning(
        self, session_id: str, session_started_at: float, warning: WarningRecord
    ) -> None:
        """Insert a warning, or update it (same kind, role and raised_at) when it clears."""
        with self._transaction() as db:
            _record_warning(db, session_id, session_started_at, warning)

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
                _save(db, checkpoint)
            for warning in warnings:
                _record_warning(db, session_id, started_at, warning)
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
        db = self._db
        row = db.execute(
            "SELECT report_id, started_at, checkpoint_at, ended_at, end_reason, roles, turns"
            " FROM reports WHERE session_id = ? AND (? IS NULL OR started_at = ?)"
            " ORDER BY started_at DESC LIMIT 1",
            (session_id, started_at, started_at),
        ).fetchone()
        if row is None:
            return None
        report_id = row[0]
        legs = tuple(
            LegAggregate(r[0], *r[1:])
            for r in db.execute(
                f"SELECT role, {_LEG_COLUMNS} FROM legs WHERE report_id = ? ORDER BY role DESC",
                (report_id,),
            )
        )
        points = tuple(
            TimelinePoint(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), bool(r[7]), r[8])
            for r in db.execute(
                f"SELECT role, {_POINT_COLUMNS} FROM timeline WHERE report_id = ?"
                " ORDER BY role, t_seconds",
                (report_id,),
            )
        )
        speech = tuple(
            SpeechSpan(*r)
            for r in db.execute(
                "SELECT role, idx, start_seconds, end_seconds FROM speech WHERE report_id = ?"
                " ORDER BY role, idx",
                (report_id,),
            )
        )
        dropouts = tuple(
            DropoutMark(r[0], r[1], r[2], None if r[3] is None else bool(r[3]))
            for r in db.execute(
                "SELECT role, t_seconds, duration_seconds, in_speech FROM dropouts"
                " WHERE report_id = ? ORDER BY t_seconds",
                (report_id,),
            )
        )
        warnings = self._warnings(report_id)
        return SessionReport(
            session_id=session_id,
            started_at=row[1],
            checkpoint_at=row[2],
            ended_at=row[3],
            end_reason=cast(ReportEndReason | None, row[4]),
            roles=tuple(json.loads(row[5])),
            legs=legs,
            turns=json.loads(row[6]),
            points=points,
            speech=speech,
            dropouts=dropouts,
            warnings=warnings,
        )

    def degraded_ratio(self, session_id: str, started_at: float) -> float:
        """Share of the session with a warning active, from the warning table."""
        row = self._db.execute(
            "SELECT report_id, started_at, coalesce(ended_at, checkpoint_at) FROM reports"
            " WHERE session_id = ? AND started_at = ?",
            (session_id, started_at),
        ).fetchone()
        if row is None:
            return 0.0
        return degraded_ratio(self._warnings(row[0]), row[1], row[2])

    def _warnings(self, report_id: int) -> tuple[WarningRecord, ...]:
        return tuple(
            WarningRecord(r[0], r[1], r[2] or None, *r[3:])
            for r in self._db.execute(
                "SELECT kind, severity, role, raised_at, cleared_at, value, threshold"
                " FROM warnings WHERE report_id = ? ORDER BY raised_at",
                (report_id,),
            )
        )

    def list_reports(
        self, *, since: float | None = None, until: float | None = None, limit: int = 100
    ) -> list[ReportListing]:
        """Reports whose session started in [since, until), newest first."""
        rows = self._db.execute(
            "SELECT session_id, started_at, ended_at, end_reason, roles, checkpoint_at"
            " FROM reports WHERE started_at >= ? AND started_at < ?"
            " ORDER BY started_at DESC LIMIT ?",
            (
                since if since is not None else float("-inf"),
                until if until is not None else float("inf"),
                limit,
            ),
        )
        return [ReportListing(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), r[5]) for r in rows]


def _save(db: sqlite3.Connection, cp: Checkpoint) -> int:
    """Write a checkpoint (or the final state) of one session inside a transaction."""
    (report_id,) = db.execute(
        "INSERT INTO reports (session_id, started_at, checkpoint_at, ended_at,"
        " end_reason, roles, turns) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (session_id, started_at) DO UPDATE SET"
        " checkpoint_at = excluded.checkpoint_at, ended_at = excluded.ended_at,"
        " end_reason = excluded.end_reason, roles = excluded.roles,"
        " turns = excluded.turns RETURNING report_id",
        (
            cp.session_id,
            cp.started_at,
            cp.checkpoint_at,
            cp.ended_at,
            cp.end_reason,
            json.dumps(list(cp.roles)),
            json.dumps(cp.turns),
        ),
    ).fetchone()
    db.executemany(
        f"INSERT OR REPLACE INTO legs (report_id, role, {_LEG_COLUMNS})"
        f" VALUES ({', '.join('?' * 18)})",
        [
            (
                report_id,
                leg.role,
                leg.packets_received,
                leg.packets_lost,
                leg.loss_ratio,
                leg.jitter_p50_seconds,
                leg.jitter_p95_seconds,
                leg.rtt_p50_seconds,
                leg.rtt_p95_seconds,
                leg.mos_min,
                leg.mos_mean,
                leg.dropouts,
                leg.dropout_seconds,
                leg.dropouts_in_speech,
                leg.dropout_in_speech_seconds,
                leg.speech_seconds,
                leg.reconnects,
                leg.end_reason,
            )
            for leg in cp.legs
        ],
    )
    db.executemany(
        f"INSERT OR REPLACE INTO timeline (report_id, role, {_POINT_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                report_id,
                p.role,
                p.t_seconds,
                p.recent_loss_ratio,
                p.jitter_seconds,
                p.rtt_seconds,
                p.mos,
                p.speaking,
                p.stalled,
                p.dropouts,
            )
            for p in cp.points
        ],
    )
    for role, index in cp.speech_from:
        db.execute(
            "DELETE FROM speech WHERE report_id = ? AND role = ? AND idx >= ?",
            (report_id, role, index),
        )
    db.executemany(
        "INSERT OR REPLACE INTO speech VALUES (?, ?, ?, ?, ?)",
        [(report_id, s.role, s.index, s.start_seconds, s.end_seconds) for s in cp.speech],
    )
    db.execute("DELETE FROM dropouts WHERE report_id = ?", (report_id,))
    db.executemany(
        "INSERT INTO dropouts VALUES (?, ?, ?, ?, ?)",
        [(report_id, d.role, d.t_seconds, d.duration_seconds, d.in_speech) for d in cp.dropouts],
    )
    return int(report_id)


def _record_warning(
    db: sqlite3.Connection, session_id: str, session_started_at: float, warning: WarningRecord
) -> None:
    """Insert a warning, or update it (same kind, role and raised_at) when it clears."""
    row = db.execute(
        "SELECT report_id FROM reports WHERE session_id = ? AND started_at = ?",
        (session_id, session_started_at),
    ).fetchone()
    if row is None:
        # Raised before the session's first checkpoint: start its report now.
        row = db.execute(
            "INSERT INTO reports (session_id, started_at, checkpoint_at, roles, turns)"
            " VALUES (?, ?, ?, '[]', '{}') RETURNING report_id",
            (session_id, session_started_at, warning.raised_at),
        ).fetchone()
    db.execute(
        "INSERT INTO warnings VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (report_id, kind, role, raised_at) DO UPDATE SET"
        " severity = excluded.severity, cleared_at = excluded.cleared_at,"
        " value = excluded.value, threshold = excluded.threshold",
        (
            row[0],
            warning.kind,
            warning.severity,
            warning.role or "",
            warning.raised_at,
            warning.cleared_at,
            warning.value,
            warning.threshold,
        ),
    )
