"""What every report store does the same way, whatever its database: migrations under a
lock, the transactions of writes, the reads. `store.ReportStore` (SQLite) and
`pg_store.PgReportStore` (PostgreSQL) supply the connection."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable
from contextlib import AbstractContextManager
from importlib import resources

from ..core.ascii_digits import parse_ascii_int
from . import sql_cluster, sql_reads, sql_writes
from .model import Checkpoint, ReportListing, SessionReport, WarningRecord
from .sql_cluster import InstanceRecord, Reconciled
from .sql_db import Db

BUSY_TIMEOUT_SECONDS = 5
"How long a write waits for another process's lock (a `qualmon purge`, a backup)."


def migrations(dialect: str = "") -> list[tuple[int, str]]:
    """(version, SQL) of every file in qualmon/reports/migrations (SQLite) or its
    `dialect` subfolder, oldest first."""
    folder = resources.files("qualmon.reports") / "migrations"
    if dialect:
        folder = folder / dialect
    found = []
    for entry in folder.iterdir():
        name = entry.name
        version = parse_ascii_int(name[:4], max_digits=4)
        if name.endswith(".sql") and version is not None:
            found.append((version, entry.read_text(encoding="utf-8")))
    return sorted(found)


class BaseReportStore(ABC):
    """Blocking access to a store; one instance per thread (the service runs it in one)."""

    DIALECT = ""
    "The migrations' subfolder ('' for SQLite's, the first)."
    SCHEMA_VERSION_TABLE = ""
    "`CREATE TABLE IF NOT EXISTS schema_version …` in the dialect."

    label: str
    "What logs and errors may name: the SQLite path, or the PostgreSQL host (never the URL)."

    # -- what a database supplies -------------------------------------------------

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Db]:
        """A write transaction that holds the write lock from its start."""

    @abstractmethod
    def _reader(self) -> Db:
        """The connection reads use."""

    @abstractmethod
    def _run_script(self, db: Db, script: str) -> None:
        """Run a migration's statements inside the transaction `db` is in."""

    @abstractmethod
    def _lock_schema(self, db: Db) -> None:
        """Serialise migrations between processes, inside the transaction."""

    @abstractmethod
    def prepare(self) -> int:
        """Set the store up for writing and migrate; returns how many migrations ran."""

    @abstractmethod
    def reopen(self) -> None:
        """A fresh connection (the old one is kept if the new one cannot be opened)."""

    @abstractmethod
    def set_busy_timeout(self, seconds: float) -> None:
        """How long a write waits for another process's lock before failing."""

    @abstractmethod
    def close(self) -> None: ...

    # -- schema --------------------------------------------------------------------

    def schema_version(self) -> int:
        row = self._reader().execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def migrate(self) -> int:
        """Apply pending migrations, each in one transaction; returns how many ran."""
        applied = 0
        for version, script in migrations(self.DIALECT):
            with self._transaction() as db:
                self._lock_schema(db)
                db.execute(self.SCHEMA_VERSION_TABLE)
                # Checked inside the lock: two processes starting together apply once.
                (current,) = db.execute("SELECT max(version) FROM schema_version").fetchone()
                if version <= (current or 0):
                    continue
                self._run_script(db, script)
                db.execute("INSERT INTO schema_version VALUES (?, ?)", (version, time.time()))
                applied += 1
        return applied

    # -- writing -------------------------------------------------------------------

    def save(self, cp: Checkpoint) -> int:
        """Write a checkpoint (or the final state) of one session; returns its report id."""
        with self._transaction() as db:
            return sql_writes.save_checkpoint(db, cp)

    def record_warning(
        self, session_id: str, session_started_at: float, warning: WarningRecord
    ) -> None:
        """Insert a warning, or update it (same kind, role and raised_at) when it clears."""
        with self._transaction() as db:
            sql_writes.record_warning(db, session_id, session_started_at, warning)

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
                sql_writes.save_checkpoint(db, checkpoint)
            for warning in warnings:
                sql_writes.record_warning(db, session_id, started_at, warning)
        return self.degraded_ratio(session_id, started_at) if final else None

    def mark_interrupted(self, *, now: float, starting_instance: str = "") -> int:
        """Reports left open by a process that died: end them at their last checkpoint.
        Only those no live instance claims (see `sql_cluster.mark_interrupted`)."""
        with self._transaction() as db:
            return sql_cluster.mark_interrupted(db, now, starting_instance=starting_instance)

    def purge(self, before: float) -> int:
        """Delete reports of sessions that ended before `before` (epoch seconds)."""
        with self._transaction() as db:
            return db.execute(
                "DELETE FROM reports WHERE ended_at IS NOT NULL AND ended_at < ?", (before,)
            ).rowcount

    # -- reading -------------------------------------------------------------------

    def load(self, session_id: str, started_at: float | None = None) -> SessionReport | None:
        """The newest report of `session_id` (or the one that started at `started_at`)."""
        return sql_reads.load_report(self._reader(), session_id, started_at)

    def degraded_ratio(self, session_id: str, started_at: float) -> float:
        """Share of the session with a warning active, from the warning table."""
        return sql_reads.report_degraded_ratio(self._reader(), session_id, started_at)

    def list_reports(
        self, *, since: float | None = None, until: float | None = None, limit: int = 100
    ) -> list[ReportListing]:
        """Reports whose session started in [since, until), newest first."""
        return sql_reads.list_reports(self._reader(), since=since, until=until, limit=limit)

    # -- the cluster (sql_cluster) ---------------------------------------------------

    def heartbeat(
        self, record: InstanceRecord, *, local_sessions: Collection[str], now: float
    ) -> tuple[list[InstanceRecord], Reconciled]:
        """Refresh this instance's row and make its claims match its live sessions, in one
        transaction; returns the live instances (this one included) and what changed."""
        with self._transaction() as db:
            sql_cluster.upsert_instance(db, record)
            reconciled = sql_cluster.reconcile(db, record.instance_id, local_sessions, now)
            return sql_cluster.live_instances(db, now), reconciled

    def live_instances(self, now: float) -> list[InstanceRecord]:
        """Instances whose lease runs past `now`."""
        return sql_cluster.live_instances(self._reader(), now)

    def session_owner(self, session_id: str, *, now: float, claim: bool) -> InstanceRecord | None:
        """The live owner of the session; with `claim`, claimed atomically for the
        rendezvous choice when it has none (or its claim was released). Without `claim`, a
        released claim still names its owner (it holds the ended session in memory)."""
        if not claim:
            found = sql_cluster.live_owner(self._reader(), session_id, now)
            return None if found is None else found[0]
        with self._transaction() as db:
            return sql_cluster.claim(db, session_id, now)

    def remove_instance(self, instance_id: str) -> None:
        """A clean exit: the instance row and its claims are deleted."""
        with self._transaction() as db:
            sql_cluster.remove_instance(db, instance_id)

    def sweep(self, now: float) -> int:
        """Housekeeping any live instance does now and then: forget stale cluster rows,
        mark reports interrupted that no live instance answers for (how many)."""
        with self._transaction() as db:
            sql_cluster.forget_stale(db, now)
            return sql_cluster.mark_interrupted(db, now)
