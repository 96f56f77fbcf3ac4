"""Which store `QUALMON_DB` names: a PostgreSQL URL, or else a SQLite path."""

from __future__ import annotations

from .pg_store import PgReportStore, is_postgresql, pg_label
from .sql_store import BaseReportStore
from .store import ReportStore


def open_store(
    target: str, *, prepare: bool = True, stall_seconds: float | None = None
) -> BaseReportStore:
    """The store `target` names; see ReportStore and PgReportStore for `prepare` and
    `stall_seconds` (PostgreSQL only: SQLite's waits are bounded by its busy timeout)."""
    if is_postgresql(target):
        return PgReportStore(target, prepare=prepare, stall_seconds=stall_seconds)
    return ReportStore(target, prepare=prepare)


def store_label(target: str) -> str:
    """What logs and errors may name: the SQLite path, or the PostgreSQL host only."""
    return pg_label(target) if is_postgresql(target) else target
