"""The SQL that writes a report: a checkpoint's rows and a warning's row, inside a
transaction the caller holds. One text for SQLite and PostgreSQL (see `sql_db.Db`)."""

from __future__ import annotations

import json

from .model import Checkpoint, WarningRecord
from .sql_db import Db

LEG_COLUMNS = (
    "packets_received, packets_lost, loss_ratio, jitter_p50_seconds, jitter_p95_seconds, "
    "rtt_p50_seconds, rtt_p95_seconds, mos_min, mos_mean, dropouts, dropout_seconds, "
    "dropouts_in_speech, dropout_in_speech_seconds, speech_seconds, reconnects, end_reason"
)
"Columns of `legs` after (report_id, role), in LegAggregate's field order (reads use it too)."
POINT_COLUMNS = (
    "t_seconds, recent_loss_ratio, jitter_seconds, rtt_seconds, mos, speaking, stalled, dropouts,"
    " video_fps_min, video_frozen"
)
"Columns of `timeline` after (report_id, role), in TimelinePoint's field order."


def _replace(columns: str) -> str:
    """`a = excluded.a, …`: an upsert that replaces the row (SQLite's INSERT OR REPLACE,
    which PostgreSQL lacks)."""
    return ", ".join(f"{c} = excluded.{c}" for c in columns.split(", "))


def save_checkpoint(db: Db, cp: Checkpoint) -> int:
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
        f"INSERT INTO legs (report_id, role, {LEG_COLUMNS}) VALUES ({', '.join('?' * 18)})"
        f" ON CONFLICT (report_id, role) DO UPDATE SET {_replace(LEG_COLUMNS)}",
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
        f"INSERT INTO timeline (report_id, role, {POINT_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        f" ON CONFLICT (report_id, role, t_seconds) DO UPDATE SET {_replace(POINT_COLUMNS)}",
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
                p.video_fps_min,
                p.video_frozen,
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
        "INSERT INTO speech VALUES (?, ?, ?, ?, ?) ON CONFLICT (report_id, role, idx)"
        " DO UPDATE SET start_seconds = excluded.start_seconds, end_seconds = excluded.end_seconds",
        [(report_id, s.role, s.index, s.start_seconds, s.end_seconds) for s in cp.speech],
    )
    db.execute("DELETE FROM dropouts WHERE report_id = ?", (report_id,))
    db.executemany(
        "INSERT INTO dropouts VALUES (?, ?, ?, ?, ?)",
        [(report_id, d.role, d.t_seconds, d.duration_seconds, d.in_speech) for d in cp.dropouts],
    )
    return int(report_id)


def record_warning(
    db: Db, session_id: str, session_started_at: float, warning: WarningRecord
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
