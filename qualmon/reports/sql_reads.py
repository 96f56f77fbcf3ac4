"""The SQL that reads reports back: one session's report, its degraded ratio, a listing
(one text for SQLite and PostgreSQL, see `sql_db.Db`)."""

from __future__ import annotations

import json
from typing import cast

from .model import (
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
from .sql_db import Db
from .sql_writes import LEG_COLUMNS, POINT_COLUMNS


def load_report(db: Db, session_id: str, started_at: float | None = None) -> SessionReport | None:
    """The newest report of `session_id` (or the one that started at `started_at`)."""
    select = (
        "SELECT report_id, started_at, checkpoint_at, ended_at, end_reason, roles, turns"
        " FROM reports WHERE session_id = ?"
    )
    # Two texts, not `? IS NULL`: PostgreSQL cannot type a parameter that is only NULL.
    row = (
        db.execute(select + " ORDER BY started_at DESC LIMIT 1", (session_id,))
        if started_at is None
        else db.execute(select + " AND started_at = ?", (session_id, started_at))
    ).fetchone()
    if row is None:
        return None
    report_id = row[0]
    legs = tuple(
        LegAggregate(r[0], *r[1:])
        for r in db.execute(
            f"SELECT role, {LEG_COLUMNS} FROM legs WHERE report_id = ? ORDER BY role DESC",
            (report_id,),
        )
    )
    points = tuple(
        TimelinePoint(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            bool(r[6]),
            bool(r[7]),
            r[8],
            r[9],
            None if r[10] is None else bool(r[10]),
        )
        for r in db.execute(
            f"SELECT role, {POINT_COLUMNS} FROM timeline WHERE report_id = ?"
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
    warnings = _warnings(db, report_id)
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


def report_degraded_ratio(db: Db, session_id: str, started_at: float) -> float:
    """Share of the session with a warning active, from the warning table."""
    row = db.execute(
        "SELECT report_id, started_at, coalesce(ended_at, checkpoint_at) FROM reports"
        " WHERE session_id = ? AND started_at = ?",
        (session_id, started_at),
    ).fetchone()
    if row is None:
        return 0.0
    return degraded_ratio(_warnings(db, row[0]), row[1], row[2])


def _warnings(db: Db, report_id: int) -> tuple[WarningRecord, ...]:
    return tuple(
        WarningRecord(r[0], r[1], r[2] or None, *r[3:])
        for r in db.execute(
            "SELECT kind, severity, role, raised_at, cleared_at, value, threshold"
            " FROM warnings WHERE report_id = ? ORDER BY raised_at",
            (report_id,),
        )
    )


def list_reports(
    db: Db, *, since: float | None, until: float | None, limit: int
) -> list[ReportListing]:
    """Reports whose session started in [since, until), newest first."""
    rows = db.execute(
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
