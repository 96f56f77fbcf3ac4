"""The PostgreSQL report store (`QUALMON_DB=postgresql://…`): a synchronous psycopg
connection on the store's thread; what it shares with SQLite's is in `sql_store`."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from .sql_db import Db, Rows
from .sql_store import BaseReportStore

SCHEMES = ("postgresql://", "postgres://")
MIGRATION_LOCK = 0x716D6F6E  # "qmon": the advisory lock migrations hold
CONNECT_TIMEOUT_SECONDS = 3
"A host that drops packets must not hold the store's thread for long (libpq's least is 2)."
MAX_LOCK_WAIT_SECONDS = 2.0
"A write waits at most this long for another session's lock, whatever the writer asks "
"(SQLite waits 5 s for a whole-file lock; here a purge locks only the rows it deletes), "
"so that a frozen server costs a shutdown at most this, the stall allowance and a connect."
DEAD_PEER_SECONDS = 10
"Sent data unacknowledged this long: the connection is dead (TCP_USER_TIMEOUT)."


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


def _cut(conn: psycopg.Connection[Any]) -> None:
    """Shut the connection's socket down from another thread: the call blocked on it
    returns at once with an OperationalError (the connection is then `broken`)."""
    with contextlib.suppress(OSError, psycopg.Error):
        with socket.socket(fileno=os.dup(conn.fileno())) as sock:
            sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def _deadline(conn: psycopg.Connection[Any], seconds: float | None) -> Iterator[None]:
    """Cut `conn` if the block takes longer than `seconds` (None: never).

    A server that is frozen (stopped, swapping, a hung disk) but whose host still answers
    TCP never times out on its own: statement_timeout needs the server to run, keepalives
    a dead host. Without this a call would hold the store's thread, and with it every
    read and the writes at shutdown, for as long as the server stays frozen.
    """
    if seconds is None:
        yield
        return
    timer = threading.Timer(seconds, _cut, (conn,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        # Should the timer fire between the block's end and here, the next call finds the
        # connection broken and reconnects: one failed attempt, retried like any other.
        timer.cancel()


class _QmarkDb:
    """psycopg with the shared SQL's `?` placeholders (psycopg wants `%s`). The shared SQL
    has no literal `?` or `%`, so a plain replace is exact. With `deadline`, each statement
    is cut after that long (reads; a transaction's deadline covers all of it)."""

    def __init__(self, conn: psycopg.Connection[Any], deadline: float | None = None) -> None:
        self._conn = conn
        self._deadline = deadline

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Rows:
        # No parameters, no placeholders: a migration script may hold any text.
        with _deadline(self._conn, self._deadline):
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

    def __init__(
        self, dsn: str, *, prepare: bool = True, stall_seconds: float | None = None
    ) -> None:
        """With `stall_seconds` (the service's), a call that has not finished that long
        after its lock wait could have ended is cut and fails as `database unreachable`;
        without (the CLI: a first purge of a big backlog may take minutes), calls wait."""
        self._stall_seconds = stall_seconds
        try:
            conninfo_to_dict(dsn)
        except psycopg.Error:
            # Its message may quote the URL, password included.
            raise psycopg.ProgrammingError("QUALMON_DB is not a valid PostgreSQL URL") from None
        self._dsn = dsn
        self.label = pg_label(dsn)
        self._lock_timeout = MAX_LOCK_WAIT_SECONDS
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
                # A host that vanishes (power, network) sends no reset: without these a
                # write would wait on it for the kernel's ~15 minutes, holding the thread.
                keepalives=1,
                keepalives_idle=10,
                keepalives_interval=5,
                keepalives_count=2,
                tcp_user_timeout=DEAD_PEER_SECONDS * 1000,
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
        self._lock_timeout = seconds = min(seconds, MAX_LOCK_WAIT_SECONDS)
        # SET takes no parameters; the value is our own number.
        self._reader().execute(f"SET lock_timeout = {round(seconds * 1000)}")

    def _call_deadline(self) -> float | None:
        stall = self._stall_seconds
        return None if stall is None else self._lock_timeout + stall

    @contextmanager
    def _transaction(self) -> Iterator[Db]:
        conn = self._connection()
        with _deadline(conn, self._call_deadline()), conn.transaction():
            yield _QmarkDb(conn)

    def _reader(self) -> Db:
        return _QmarkDb(self._connection(), self._call_deadline())

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
