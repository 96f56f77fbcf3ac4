"""A report store of either kind, for tests that must hold for both."""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from typing import Any

import psycopg

from qualmon.reports.sql_store import BaseReportStore
from qualmon.reports.stores import open_store


@dataclass(frozen=True)
class Backend:
    name: str
    "sqlite or postgresql"
    target: str
    "What QUALMON_DB says: the SQLite path or the PostgreSQL URL."

    def open(self, *, prepare: bool = True) -> BaseReportStore:
        return open_store(self.target, prepare=prepare)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """A query (`?` placeholders) as another process would run it, outside the store."""
        if self.name == "sqlite":
            with contextlib.closing(sqlite3.connect(self.target)) as db:
                return db.execute(sql, params).fetchall()
        with psycopg.connect(self.target, autocommit=True) as conn:
            return conn.execute(sql.replace("?", "%s"), params or None).fetchall()

    def tables(self) -> set[str]:
        if self.name == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            sql = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        return {r[0] for r in self.rows(sql)}
