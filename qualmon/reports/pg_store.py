"""The PostgreSQL report store (`QUALMON_DB=postgresql://…`): a synchronous psycopg
connection on the store's thread; what it shares with SQLite's is in `sql_store`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from .sql_db import Db, Rows
from .sql_store import BUSY_TIMEOUT_SECONDS, BaseReportStore

SCHEMES = ("postgresql://", "postgres://")
MIGRATION_LOCK = 0x716D6F6E  # "qmon": the advisory lock migrations hold
CONNECT_TIMEOUT_SECONDS = BUSY_TIMEOUT_SECONDS
"A host that drops packets must not hold the store's thread longer than a lock would."


def is_postgresql(target: str) -> bool:
    """`QUALMON_DB` names a PostgreSQL database (else it is a SQLite path)."""
    return target.startswith(SCHEMES)


def pg_label(dsn: str) -> str:
    """What logs and errors may say of the store: its host, never the URL (a password)."""
    try:
        host = conninfo_to_dict(dsn).get("host")
    except psycopg.Error:
        return "PostgreSQL"
    return f"PostgreSQL at {host}" if host else "PostgreSQL"


class _QmarkDb:
    """psycopg with the shared SQL's `?` placeholders (psycopg wants `%s`). The shared SQL
    has no literal `?` or `%`, so a plain replace is exact."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Rows:
        # No parameters, no placeholders: a migration script may hold any text.
        return self._conn.execute(sql.replace("?", "%s"), parameters or None)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]], /) -> Rows:
        cursor = self._conn.cursor()
        cursor.executemany(sql.replace("?", "%s"), seq_of_parameters)
        return cursor


class PgReportStore(BaseReportStore):
    """One connection, autocommit between explicit transactions (a read leaves no
    transaction open on the server), opened when first needed and again after it broke.

    Connecting lazily keeps SQLite's start-up behaviour: a database that is down at start
    delays only the writes (the writer retries), like a read-only SQLite file.
    """

    DIALECT = "postgresql"
    SCHEMA_VERSION_TABLE = (
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
    )

    def __init__(self, dsn: str, *, prepare: bool = True) -> None:
        try:
            conninfo_to_dict(dsn)
        except psycopg.Error:
            # Its message may quote the URL, password included.
            raise psycopg.ProgrammingError("QUALMON_DB is not a valid PostgreSQL URL") from None
        self._dsn = dsn
        self.label = pg_label(dsn)
        self._lock_timeout = float(BUSY_TIMEOUT_SECONDS)
        self._conn: psycopg.Connection[Any] | None = None
        if prepare:
            self.prepare()

    def _connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            # After a restart of the server the old connection is broken: the failed
            # attempt that found out was counted; this one connects afresh.
            self._conn = None
            if conn is not None:
                conn.close()
            conn = psycopg.connect(
                self._dsn,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name="qualmon",
            )
            self._conn = conn
            self.set_busy_timeout(self._lock_timeout)
        return conn

    def prepare(self) -> int:
        return self.migrate()

    def reopen(self) -> None:
        old, self._conn = self._conn, None
        try:
            self._connection()
        except BaseException:
            self._conn = old
            raise
        if old is not None:
            old.close()

    def set_busy_timeout(self, seconds: float) -> None:
        self._lock_timeout = seconds
        # SET takes no parameters; the value is our own number.
        self._connection().execute(f"SET lock_timeout = {round(seconds * 1000)}")

    @contextmanager
    def _transaction(self) -> Iterator[Db]:
        conn = self._connection()
        with conn.transaction():
            yield _QmarkDb(conn)

    def _reader(self) -> Db:
        return _QmarkDb(self._connection())

    def _lock_schema(self, db: Db) -> None:
        # CREATE TABLE IF NOT EXISTS races between sessions in PostgreSQL: lock first.
        db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))

    def _run_script(self, db: Db, script: str) -> None:
        # Without parameters psycopg sends the script as one simple query: every statement
        # in it runs, inside the transaction already open.
        db.execute(script)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()
